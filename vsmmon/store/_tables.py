"""SQLAlchemy tables, every one of them (Alembic compares this metadata with the database). The schema
itself is created by Alembic migrations (`alembic/versions`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

TS = DateTime(timezone=True)

agents = Table(
    "agents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("host", Text, nullable=False, server_default=""),
    Column("version", Text, nullable=False, server_default=""),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("status", Text, nullable=False, server_default="online"),
    Column("interval_s", Float, nullable=False, server_default="5"),
    Column("config_hash", Text, nullable=False, server_default=""),
    Column("queues", JSONB, nullable=False, server_default="[]"),
    Column("last_metrics", JSONB, nullable=False, server_default="{}"),
    Column("last_errors", JSONB, nullable=False, server_default="{}"),
    Column("status_since", TS, nullable=False),
)

agent_transitions = Table(
    "agent_transitions",
    metadata,
    Column("agent_id", Text, primary_key=True),
    Column("at", TS, primary_key=True),
    Column("to_status", Text, primary_key=True),
    Column("from_status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_agent_transitions_at", "at"),
)

collections = Table(
    "collections",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("started_at", TS, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("agent_count", Integer, nullable=False),
    Column("sample_count", Integer, nullable=False),
    Column("unreachable", JSONB, nullable=False),
    Column("persisted_at", TS, nullable=False),
    Column("aggregated_at", TS, nullable=True),  # claimed by the aggregate task: its samples count in the rollups
    Column("rolled_up_at", TS, nullable=True),  # in the stored rollups (its window closed), see storage/rollups.py
    Column("shard", SmallInteger, nullable=False, server_default="0"),  # its part of the cycle (collect/shards.py)
    Column("shards", SmallInteger, nullable=False, server_default="1"),
    Index("ix_collections_started_at", "started_at"),
)

# Range-partitioned by `ts` (hourly partitions plus a default one, see the baseline migration):
# retention drops whole partitions instead of deleting rows.
metric_samples = Table(
    "metric_samples",
    metadata,
    Column("ts", TS, nullable=False),
    Column("collection_id", UUID(as_uuid=True), nullable=False),
    Column("agent_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("value", Float, nullable=False),
    postgresql_partition_by="RANGE (ts)",
)

metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("agent_id", Text, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("window_s", Integer, primary_key=True),
    Column("window_start", TS, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("sum", Float, nullable=False),
    Column("last", Float, nullable=False),
    Column("last_ts", TS, nullable=False),
    Column("q_keys", ARRAY(Integer), nullable=False, server_default="{}"),  # vsmmon.sketch buckets
    Column("q_counts", ARRAY(Integer), nullable=False, server_default="{}"),
)

rollup_state = Table(
    "rollup_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("open_from", TS, nullable=True),
    Column("days_from", TS, nullable=True),
)

health_assessments = Table(
    "health_assessments",
    metadata,
    Column("at", TS, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("score", Float, nullable=True),
    Column("status", Text, nullable=False),
    Column("inputs", JSONB, nullable=False),
    Column("check_id", UUID(as_uuid=True), nullable=True),
    postgresql_partition_by="RANGE (at)",
)

trends = Table(
    "trends",
    metadata,
    Column("at", TS, primary_key=True),
    Column("agent_id", Text, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("window_s", Integer, primary_key=True),
    Column("slope", Float),
    Column("slope_stderr", Float),
    Column("direction", Text, nullable=False),
    Column("level", Float),
    Column("trend", Float),
    Column("anomaly", Float),
    Column("change_at", TS),  # the first sample at a new level, when the window's mean shifted (None: no change)
    postgresql_partition_by="RANGE (at)",
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("at", TS, primary_key=True),
    Column("agent_id", Text, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("horizon_s", Integer, primary_key=True),
    Column("value", Float, nullable=False),
    Column("lower", Float),
    Column("upper", Float),
    Column("actual", Float),  # observed when the forecast fell due
    postgresql_partition_by="RANGE (at)",
)

recommendations = Table(
    "recommendations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("fingerprint", Text, nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("kind", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("action", JSONB, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("confidence", Float, nullable=False),
)

# the alert manager's, S3's and S5's history (migration 0004; `vsmmon.store.alert_records`)
alerts = Table(
    "alerts", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True), Column("fingerprint", Text, nullable=False),
    Column("type", Text, nullable=False), Column("severity", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("labels", JSONB, nullable=False), Column("status", Text, nullable=False),
    Column("escalation_level", Integer, nullable=False), Column("summary", Text, nullable=False),
    Column("started_at", TS, nullable=False), Column("updated_at", TS, nullable=False), Column("resolved_at", TS),
    Column("acknowledged_by", Text),
)  # fmt: skip
alert_events = Table(
    "alert_events", metadata,
    Column("at", TS, primary_key=True), Column("alert_id", UUID(as_uuid=True), primary_key=True),
    Column("event", Text, primary_key=True), Column("detail", JSONB, nullable=False),
)  # fmt: skip
control_actions = Table(
    "control_actions", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True), Column("at", TS, nullable=False),
    Column("target", Text, nullable=False), Column("action", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("reason", Text, nullable=False), Column("alert_id", UUID(as_uuid=True)),
    Column("dry_run", Boolean, nullable=False),
    Column("before", JSONB, nullable=False), Column("after", JSONB, nullable=False),
    Column("verified_at", TS), Column("effective", Boolean),
)  # fmt: skip
policy_decisions = Table(
    "policy_decisions", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True), Column("at", TS, nullable=False),
    Column("alert_id", UUID(as_uuid=True)), Column("decision", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
)  # fmt: skip

# indexes the migrations create (declared so that Alembic's autogenerate compares like with like)
Index("ix_metric_samples_ts_brin", metric_samples.c.ts, postgresql_using="brin")
Index("ix_collections_pending", collections.c.started_at,
      postgresql_where=sa.text("aggregated_at IS NOT NULL AND rolled_up_at IS NULL"))  # fmt: skip
Index("ix_metric_rollups_window", metric_rollups.c.window_s, metric_rollups.c.window_start)
Index("ix_health_assessments_at", health_assessments.c.at, postgresql_using="brin")
Index("ix_forecasts_at", forecasts.c.at)
Index("ix_alerts_updated_at", alerts.c.updated_at)
Index("ux_alerts_open_fingerprint", alerts.c.fingerprint, unique=True, postgresql_where=sa.text("status <> 'resolved'"))
Index("ix_control_actions_at", control_actions.c.at)
Index("ix_policy_decisions_at", policy_decisions.c.at)


def is_partition(name: str) -> bool:
    """A partition of one of the partitioned tables (made at run time by maintenance, not by migrations)."""
    return any(name.startswith(parent.name + "_") for parent in metadata.tables.values()
               if "postgresql_partition_by" in parent.dialect_kwargs)  # fmt: skip
