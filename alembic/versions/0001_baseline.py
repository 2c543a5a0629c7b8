"""Baseline: agents, collections, partitioned metric samples, metric rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Text, nullable=False, server_default=""),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="online"),
    )
    op.create_table(
        "collections",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("agent_count", sa.Integer, nullable=False),
        sa.Column("sample_count", sa.Integer, nullable=False),
        sa.Column("unreachable", postgresql.JSONB, nullable=False),
        sa.Column("persisted_at", TS, nullable=False),
        sa.Column("aggregated_at", TS, nullable=True),
    )
    op.create_index("ix_collections_started_at", "collections", ["started_at"])
    # Partitioned by time; hourly partitions are created ahead by the maintenance task and dropped
    # past retention. The default partition catches anything outside them, so no write is lost.
    op.execute(
        """
        CREATE TABLE metric_samples (
            ts timestamptz NOT NULL,
            collection_id uuid NOT NULL,
            agent_id text NOT NULL,
            metric text NOT NULL,
            value double precision NOT NULL
        ) PARTITION BY RANGE (ts)
        """
    )
    op.execute("CREATE TABLE metric_samples_default PARTITION OF metric_samples DEFAULT")
    op.execute("CREATE INDEX ix_metric_samples_agent_metric_ts ON metric_samples (agent_id, metric, ts)")
    op.create_table(
        "metric_rollups",
        sa.Column("agent_id", sa.Text, primary_key=True),
        sa.Column("metric", sa.Text, primary_key=True),
        sa.Column("window_s", sa.Integer, primary_key=True),
        sa.Column("window_start", TS, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sa.Column("last_ts", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_rollups")
    op.execute("DROP TABLE metric_samples")  # drops its partitions with it
    op.drop_index("ix_collections_started_at", table_name="collections")
    op.drop_table("collections")
    op.drop_table("agents")
