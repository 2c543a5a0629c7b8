"""Samples: a BRIN index on time instead of a btree on (agent, metric, time).

The btree halved COPY throughput (about 300k against 680k rows/s on 2 cores). Per-agent history
is read from rollups and the real-time window; the raw samples are scanned by time range only,
which BRIN serves at almost no write cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_metric_samples_agent_metric_ts")
    op.execute("CREATE INDEX ix_metric_samples_ts_brin ON metric_samples USING brin (ts)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_metric_samples_ts_brin")
    op.execute("CREATE INDEX ix_metric_samples_agent_metric_ts ON metric_samples (agent_id, metric, ts)")
