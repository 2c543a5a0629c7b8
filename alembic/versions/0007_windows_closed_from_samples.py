"""Close each 5 min window once, from its stored samples, instead of merging every collection into it.

Until now every aggregated collection was upserted into `rollups_open` (~20,000 row updates every 5 s at 1,000
agents x 20 metrics). Now aggregating a collection only claims it (`aggregated_at`); a window is computed from
the samples of its claimed collections when it closes, and `collections.rolled_up_at` says which collections are
in the stored rollups. The open windows read as their pending samples.

Upgrade: every collection already aggregated is in the rollups (open or stored), so it counts as rolled up; the
open windows' rows are stored as they stand, and the close cutoff moves past them (a later collection of one of
those windows is merged into it as a late one).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = "count, min, max, sum, last, last_ts, q_keys, q_counts"


def upgrade() -> None:
    op.execute("ALTER TABLE collections ADD COLUMN rolled_up_at timestamptz")
    op.execute("UPDATE collections SET rolled_up_at = aggregated_at WHERE aggregated_at IS NOT NULL")
    # the collections a close takes, and the pending ones a reader adds: a handful of rows, found at once
    op.execute(
        "CREATE INDEX ix_collections_pending ON collections (started_at) "
        "WHERE aggregated_at IS NOT NULL AND rolled_up_at IS NULL"
    )
    op.execute(
        f"""
        INSERT INTO metric_rollups AS r (agent_id, metric, window_s, window_start, {_COLUMNS})
        SELECT agent_id, metric, 300, window_start, {_COLUMNS} FROM rollups_open
        ON CONFLICT (agent_id, metric, window_s, window_start) DO UPDATE SET
            count = r.count + excluded.count, min = LEAST(r.min, excluded.min), max = GREATEST(r.max, excluded.max),
            sum = r.sum + excluded.sum,
            last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
            last_ts = GREATEST(r.last_ts, excluded.last_ts),
            q_keys = r.q_keys || excluded.q_keys, q_counts = r.q_counts || excluded.q_counts
        """
    )
    op.execute("SET LOCAL TIME ZONE 'UTC'")
    op.execute(
        """
        UPDATE rollup_state SET
            open_from = GREATEST(open_from, (SELECT max(window_start) + interval '5 minutes' FROM rollups_open)),
            days_from = date_trunc('day', GREATEST(open_from,
                                                   (SELECT max(window_start) + interval '5 minutes' FROM rollups_open)))
        WHERE EXISTS (SELECT 1 FROM rollups_open)
        """
    )
    op.execute("DROP TABLE rollups_open")


def downgrade() -> None:
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
    # the open windows as 0006 keeps them: the pending collections' samples, aggregated (a pending collection of a
    # window already closed, a late one, is not carried back: its samples stay, its rollups do not count it)
    op.execute(
        """
        INSERT INTO rollups_open (agent_id, metric, window_start, count, min, max, sum, last, last_ts, q_keys, q_counts)
        SELECT agent_id, metric, ws, sum(c), min(mn), max(mx), sum(sm), (max(lp))[2], max(lts),
               array_agg(k ORDER BY k), array_agg(c ORDER BY k)
        FROM (
            SELECT s.agent_id, s.metric, date_bin('5 minutes', s.ts, TIMESTAMPTZ 'epoch') AS ws,
                   vsm_sketch_key(s.value) AS k, count(*)::int AS c, min(s.value) AS mn, max(s.value) AS mx,
                   sum(s.value) AS sm, max(ARRAY[date_part('epoch', s.ts), s.value]) AS lp, max(s.ts) AS lts
            FROM metric_samples s JOIN collections c ON c.id = s.collection_id AND c.started_at = s.ts
            WHERE c.aggregated_at IS NOT NULL AND c.rolled_up_at IS NULL
              AND c.started_at >= COALESCE((SELECT open_from FROM rollup_state), '-infinity')
            GROUP BY 1, 2, 3, 4
        ) buckets
        GROUP BY agent_id, metric, ws
        """
    )
    op.execute("DROP INDEX ix_collections_pending")
    op.execute("ALTER TABLE collections DROP COLUMN rolled_up_at")
