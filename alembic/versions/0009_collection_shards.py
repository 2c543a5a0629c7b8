"""Each collection records its part of the cycle: `collections.shard` of `collections.shards`.

A cycle's work is split into shards (`vsmmon.collect.shards`), one collection each; a cycle's summary sums them
and counts it aggregated once every shard is. Rows stored before this revision are the one shard of theirs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE collections ADD COLUMN shard smallint NOT NULL DEFAULT 0, "
        "ADD COLUMN shards smallint NOT NULL DEFAULT 1"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE collections DROP COLUMN shard, DROP COLUMN shards")
