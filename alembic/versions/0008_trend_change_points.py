"""Store the trend stage's change point: `trends.change_at`, the first sample at a new level within the window.

The change point was computed by every analysis and dropped; rows stored before this revision have none (NULL).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE trends ADD COLUMN change_at timestamptz")  # the partitioned parent: every partition


def downgrade() -> None:
    op.execute("ALTER TABLE trends DROP COLUMN change_at")
