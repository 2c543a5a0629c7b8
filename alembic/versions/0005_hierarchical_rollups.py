"""Hierarchical rollups with quantile sketches; forecasts scored against what happened.

- `rollups_open`: the 5 min windows still open, merged at every collection (fillfactor 25, so the updates stay
  HOT as the sketches grow: ~20,000 rows a cycle at 1,000 agents x 20 metrics). A closed window moves to `metric_rollups`; a closed
  1 h window is computed from its 5 min windows, a closed 24 h window from its hours (`rollup_state` says how far).
- `metric_rollups.q_keys` / `q_counts`: the bucket counts of `vsmmon.sketch` (p50/p95/p99 within 1 %).
- `forecasts.actual`: the value observed when a forecast fell due, for forecast accuracy (sMAPE).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE metric_rollups ADD COLUMN q_keys integer[] NOT NULL DEFAULT '{}', "
        "ADD COLUMN q_counts integer[] NOT NULL DEFAULT '{}'"
    )
    op.execute("CREATE INDEX ix_metric_rollups_window ON metric_rollups (window_s, window_start)")
    op.execute(
        """
        CREATE TABLE rollups_open (
            agent_id text NOT NULL, metric text NOT NULL, window_start timestamptz NOT NULL,
            count bigint NOT NULL, min double precision NOT NULL, max double precision NOT NULL,
            sum double precision NOT NULL, last double precision NOT NULL, last_ts timestamptz NOT NULL,
            q_keys integer[] NOT NULL, q_counts integer[] NOT NULL,
            PRIMARY KEY (agent_id, metric, window_start)
        ) WITH (fillfactor = 25)
        """
    )
    # no index but the key: every other index would have to follow each non-HOT update (closing scans the table)
    op.execute(
        """
        CREATE TABLE rollup_state (
            id smallint PRIMARY KEY CHECK (id = 1),
            open_from timestamptz,   -- 5 min windows starting before this are closed (hours and days before it done)
            days_from timestamptz    -- the day of open_from
        )
        """
    )
    op.execute("INSERT INTO rollup_state VALUES (1, NULL, NULL)")
    # vsmmon.sketch.key_of in SQL, so the aggregation of a stored collection runs where its samples are: the
    # same constants (ALPHA 0.01: log(gamma) as Python's repr of it, K_MIN -1036, MIN_ABS, MAX_ABS), the same
    # IEEE operations (ln is C's log, as Python's math.log); a test compares the two on edge values
    op.execute(
        """
        CREATE FUNCTION vsm_sketch_key(v double precision) RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$  -- not STRICT: so the planner inlines it
            SELECT CASE WHEN abs(v) < '1e-9'::float8 THEN 0
                        ELSE (sign(v) * (1 + ceil(ln(least(abs(v), '1e300'::float8))
                                                  / '0.020000666706669435'::float8) + 1036))::integer END
        $$
        """
    )
    # Rollups written before this revision were merged into every level at once. Declare the current 5 min window
    # closed (later samples of it are merged as late ones into the levels already computed); the rows of the hour
    # and the day still open are dropped: until they close, they read as the merge of their stored finer windows,
    # and they are computed from them when they close.
    op.execute("SET LOCAL TIME ZONE 'UTC'")
    op.execute(
        """
        UPDATE rollup_state
        SET open_from = date_bin('5 minutes', now(), TIMESTAMPTZ 'epoch') + interval '5 minutes',
            days_from = date_trunc('day', date_bin('5 minutes', now(), TIMESTAMPTZ 'epoch') + interval '5 minutes')
        WHERE EXISTS (SELECT 1 FROM metric_rollups)
        """
    )
    for window_s, unit in ((3600, "hour"), (86400, "day")):
        op.execute(
            f"""
            DELETE FROM metric_rollups
            WHERE window_s = {window_s} AND window_start = date_trunc('{unit}', now())
              AND date_trunc('{unit}', (SELECT open_from FROM rollup_state)) = date_trunc('{unit}', now())
            """
        )
    op.execute("ALTER TABLE forecasts ADD COLUMN actual double precision")
    op.execute("CREATE INDEX ix_forecasts_at ON forecasts (at)")  # forecasts falling due, accuracy over an hour


def downgrade() -> None:
    # the open 5 min windows go back to metric_rollups as they are; their 1 h / 24 h parts are not rebuilt
    op.execute(
        "INSERT INTO metric_rollups (agent_id, metric, window_s, window_start, count, min, max, sum, last, last_ts) "
        "SELECT agent_id, metric, 300, window_start, count, min, max, sum, last, last_ts FROM rollups_open "
        "ON CONFLICT DO NOTHING"
    )
    op.execute("DROP INDEX ix_forecasts_at")
    op.execute("ALTER TABLE forecasts DROP COLUMN actual")
    op.execute("DROP TABLE rollup_state")
    op.execute("DROP FUNCTION vsm_sketch_key(double precision)")
    op.execute("DROP TABLE rollups_open")
    op.execute("DROP INDEX ix_metric_rollups_window")
    op.execute("ALTER TABLE metric_rollups DROP COLUMN q_keys, DROP COLUMN q_counts")
