"""Agent registry: interval, configuration, queues, latest metrics, status history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("agents", sa.Column("interval_s", sa.Float, nullable=False, server_default="5"))
    op.add_column("agents", sa.Column("config_hash", sa.Text, nullable=False, server_default=""))
    op.add_column("agents", sa.Column("queues", postgresql.JSONB, nullable=False, server_default="[]"))
    op.add_column("agents", sa.Column("last_metrics", postgresql.JSONB, nullable=False, server_default="{}"))
    op.add_column("agents", sa.Column("last_errors", postgresql.JSONB, nullable=False, server_default="{}"))
    op.add_column("agents", sa.Column("status_since", TS, nullable=True))
    op.execute("UPDATE agents SET status_since = last_seen")
    op.alter_column("agents", "status_since", nullable=False)
    op.create_table(
        "agent_transitions",
        sa.Column("agent_id", sa.Text, primary_key=True),
        sa.Column("at", TS, primary_key=True),
        sa.Column("to_status", sa.Text, primary_key=True),
        sa.Column("from_status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_agent_transitions_at", "agent_transitions", ["at"])


def downgrade() -> None:
    op.drop_index("ix_agent_transitions_at", table_name="agent_transitions")
    op.drop_table("agent_transitions")
    for column in ("status_since", "last_errors", "last_metrics", "queues", "config_hash", "interval_s"):
        op.drop_column("agents", column)
