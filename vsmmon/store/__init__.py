"""Storage: the `Store` protocol (`base`), its PostgreSQL (`postgres`) and in-memory (`memory`)
implementations, the real-time window in Redis (`realtime`), retention plans (`retention`), rollup
arithmetic (`aggregator`), the alerting history (`alert_records`) and migrations (`migrations`).

Private: `_tables` (SQLAlchemy tables, only here), `_rollups` (window closes in SQL), `_partitions`,
`_registry` (the agent registry's upsert), `_reads` (the dashboard's and `/metrics`' queries).
"""

from vsmmon.store.base import Store

__all__ = ["Store"]
