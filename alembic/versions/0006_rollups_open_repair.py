"""Bring databases migrated by an early draft of revision 0005 to what 0005 creates now.

0005 changed after some development databases had applied it: `vsm_sketch_key` (the SQL twin of
`vsmmon.sketch.key_of`), the index on `forecasts (at)`, and `rollups_open` with fillfactor 25 and no secondary
index. Every statement here is idempotent, so on a database 0005 created as it is now this changes nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION vsm_sketch_key(v double precision) RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$  -- not STRICT: so the planner inlines it
            SELECT CASE WHEN abs(v) < '1e-9'::float8 THEN 0
                        ELSE (sign(v) * (1 + ceil(ln(least(abs(v), '1e300'::float8))
                                                  / '0.020000666706669435'::float8) + 1036))::integer END
        $$
        """
    )
    op.execute("DROP INDEX IF EXISTS ix_forecasts_unscored")
    op.execute("CREATE INDEX IF NOT EXISTS ix_forecasts_at ON forecasts (at)")
    op.execute("DROP INDEX IF EXISTS ix_rollups_open_window")
    op.execute("ALTER TABLE rollups_open SET (fillfactor = 25)")


def downgrade() -> None:
    pass  # 0005 as it is now: nothing to undo
