"""Hierarchical rollups on PostgreSQL: each 5 min window computed once from its samples, then folded upwards.

Aggregating a collection only claims it (`collections.aggregated_at`): its samples are stored already, and until
its window closes a reader aggregates them where they are (`read`). Closing (`close`: a task of its own, due when
a collection of a new window is aggregated) takes every claimed collection not yet rolled up that started before
the cutoff, computes the 5 min rows of their windows from their samples (one set-based statement a window, sketch
buckets included: `vsm_sketch_key`) and marks them rolled up (`rolled_up_at`); when that closes an hour, the
hour's row is computed from its twelve 5 min rows, and when it closes a day, the day's row from its hours.
`rollup_state.open_from` is the last cutoff. A collection that started before it (a retry after an outage) is
late: its samples are merged into the stored 5 min rows of its window, and every hour and day already stored
that holds the window is computed again. Closes take the state row's lock, so two never race; a claim never
waits for one.

Invariants a reader relies on (`read`, in one snapshot): a collection's samples are in the stored rows iff it is
rolled up; a 1 h (24 h) window has a stored row iff it starts before the hour (day) of `open_from`, and that row
is the merge of the window's stored finer rows; otherwise the window reads as the merge of its finer windows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vsmmon.models import ROLLUP_WINDOWS_S, Rollup, RollupProgress, Sample, WindowsClosed
from vsmmon.sketch import Sketch
from vsmmon.store.aggregator import BASE_WINDOW_S, aggregate, combine, fold, window_start

HOUR_S, DAY_S = ROLLUP_WINDOWS_S[1], ROLLUP_WINDOWS_S[2]
_COLUMNS = "count, min, max, sum, last, last_ts, q_keys, q_counts"
_MERGE_SET = """
    count = r.count + excluded.count, min = LEAST(r.min, excluded.min), max = GREATEST(r.max, excluded.max),
    sum = r.sum + excluded.sum,
    last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
    last_ts = GREATEST(r.last_ts, excluded.last_ts),
    q_keys = r.q_keys || excluded.q_keys, q_counts = r.q_counts || excluded.q_counts
"""
# One window's rows from its collections' samples, grouped twice, both times by hashing: per sketch bucket first
# (its count, extremes, sum and latest (time, value) pair), then per series, where the buckets become the sketch
# (sorted, each key once). ~1.2 M samples (1,000 agents x 20 metrics x 60 cycles) take about 2 s on 2 cores. A
# window already stored (late collections) gets them merged in; a stored sketch may then hold a key twice,
# `Sketch.from_pairs` sums them and the next fold normalises them.
_ROLL_WINDOW = f"""
INSERT INTO metric_rollups AS r (agent_id, metric, window_s, window_start, {_COLUMNS})
SELECT agent_id, metric, {BASE_WINDOW_S}, :start, sum(c), min(mn), max(mx), sum(sm), (max(lp))[2], max(lts),
       array_agg(k ORDER BY k), array_agg(c ORDER BY k)
FROM (
    SELECT agent_id, metric, vsm_sketch_key(value) AS k, count(*)::int AS c, min(value) AS mn, max(value) AS mx,
           sum(value) AS sm, max(ARRAY[date_part('epoch', ts), value]) AS lp, max(ts) AS lts
    FROM metric_samples WHERE ts >= :start AND ts < :end AND collection_id = ANY(:ids)
    GROUP BY agent_id, metric, k
) buckets
GROUP BY agent_id, metric
ON CONFLICT (agent_id, metric, window_s, window_start) DO UPDATE SET {_MERGE_SET}
"""
_IS_PENDING = "aggregated_at IS NOT NULL AND rolled_up_at IS NULL"  # counted in the rollups, in no stored row yet
_TAKE_DUE = (
    f"UPDATE collections SET rolled_up_at = :now WHERE {_IS_PENDING} AND started_at < :cutoff RETURNING id, started_at"
)
_PENDING = f"SELECT id, started_at FROM collections WHERE {_IS_PENDING}"
_PROGRESS = f"""
SELECT (SELECT open_from FROM rollup_state WHERE id = 1) AS closed_to, count(*) AS pending, min(started_at) AS oldest
FROM collections WHERE {_IS_PENDING}
"""
_PENDING_SAMPLES = """
SELECT ts, value FROM metric_samples
WHERE agent_id = :a AND metric = :m AND ts >= :lo AND ts <= :hi AND collection_id = ANY(:ids)
"""
# A coarse window computed from all its finer stored windows (so computing it again gives the same row): counts
# summed, extremes kept, the newest last, and the sketches' buckets added up (normalised: sorted, each key once).
_FOLD = f"""
WITH parts AS (
    SELECT agent_id, metric, date_bin(make_interval(secs => :coarse), window_start, TIMESTAMPTZ 'epoch') AS ws,
           {_COLUMNS}
    FROM metric_rollups WHERE window_s = :fine AND window_start >= :since AND window_start < :until
), figures AS (
    SELECT agent_id, metric, ws, sum(count) AS count, min(min) AS min, max(max) AS max, sum(sum) AS sum,
           (array_agg(last ORDER BY last_ts DESC))[1] AS last, max(last_ts) AS last_ts
    FROM parts GROUP BY agent_id, metric, ws
), buckets AS (
    SELECT agent_id, metric, ws, k, sum(c)::int AS c
    FROM parts, unnest(q_keys, q_counts) AS u(k, c) GROUP BY agent_id, metric, ws, k
), sketches AS (
    SELECT agent_id, metric, ws, array_agg(k ORDER BY k) AS q_keys, array_agg(c ORDER BY k) AS q_counts
    FROM buckets GROUP BY agent_id, metric, ws
)
INSERT INTO metric_rollups (agent_id, metric, window_s, window_start, {_COLUMNS})
SELECT f.agent_id, f.metric, :coarse, f.ws, f.count, f.min, f.max, f.sum, f.last, f.last_ts,
       COALESCE(s.q_keys, '{{}}'), COALESCE(s.q_counts, '{{}}')
FROM figures f LEFT JOIN sketches s USING (agent_id, metric, ws)
ON CONFLICT (agent_id, metric, window_s, window_start) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", "))}
"""


@dataclass(frozen=True, slots=True)
class State:
    open_from: datetime | None  # 5 min windows starting before this are closed (stored, folded into 1 h and 24 h)


def lock_state(conn: Connection) -> State:
    """The fold state, locked until the transaction ends (every close goes through here)."""
    query = sa.text("SELECT open_from FROM rollup_state WHERE id = 1 FOR UPDATE")
    row = conn.execute(query).first()
    if row is None:  # emptied (tests truncate it): nothing folded yet
        conn.execute(sa.text("INSERT INTO rollup_state VALUES (1, NULL, NULL) ON CONFLICT DO NOTHING"))
        row = conn.execute(query).one()
    return State(row.open_from)


def read_state(conn: Connection) -> State:
    row = conn.execute(sa.text("SELECT open_from FROM rollup_state WHERE id = 1")).first()
    return State(None if row is None else row.open_from)


def close_due(conn: Connection, started_at: datetime) -> datetime | None:
    """The cutoff to close to once a collection started at `started_at` is claimed; None when its window is open.

    Its window's start when that is a new window (the ones before it have ended), the last cutoff when it is late
    (its window closed before: merge it), None when it belongs to the window still open.
    """
    open_from, start = read_state(conn).open_from, window_start(started_at, BASE_WINDOW_S)
    if open_from is None or start > open_from:
        return start
    return open_from if start < open_from else None


def progress(conn: Connection) -> RollupProgress:
    row = conn.execute(sa.text(_PROGRESS)).one()
    return RollupProgress(row.closed_to, int(row.pending), row.oldest)


def close(conn: Connection, cutoff: datetime, now: datetime) -> WindowsClosed:
    """Roll every claimed collection that started before `cutoff` into the stored windows; fold what that closes."""
    state = lock_state(conn)
    cutoff = max(cutoff, state.open_from) if state.open_from is not None else cutoff
    by_window: dict[datetime, list[UUID]] = defaultdict(list)
    for row in conn.execute(sa.text(_TAKE_DUE), {"now": now, "cutoff": cutoff}):
        by_window[window_start(row.started_at, BASE_WINDOW_S)].append(row.id)
    for start, ids in sorted(by_window.items()):
        end = start + timedelta(seconds=BASE_WINDOW_S)
        conn.execute(sa.text(_ROLL_WINDOW), {"start": start, "end": end, "ids": ids})
    opened = state.open_from
    late = [w for w in by_window if opened is not None and w < opened]
    hours = {window_start(w, HOUR_S) for w in late if opened and w < window_start(opened, HOUR_S)}
    days = {window_start(w, DAY_S) for w in late if opened and w < window_start(opened, DAY_S)}
    for fine, coarse, starts in ((BASE_WINDOW_S, HOUR_S, hours), (HOUR_S, DAY_S, days)):
        for since in sorted(starts):  # stored already: computed again with the late samples
            _fold(conn, fine, coarse, since, since + timedelta(seconds=coarse))
    closing = state.open_from is None or cutoff > state.open_from
    if closing:
        since = state.open_from or min(by_window, default=cutoff)  # the first close: nothing stored before
        for fine, coarse in ((BASE_WINDOW_S, HOUR_S), (HOUR_S, DAY_S)):
            done, until = window_start(since, coarse), window_start(cutoff, coarse)
            if until > done:
                _fold(conn, fine, coarse, done, until)
                (hours if coarse == HOUR_S else days).update(_starts(done, until, coarse))
        conn.execute(
            sa.text("UPDATE rollup_state SET open_from = :cutoff, days_from = :days_from WHERE id = 1"),
            {"cutoff": cutoff, "days_from": window_start(cutoff, DAY_S)},
        )
    return WindowsClosed(cutoff, sum(len(ids) for ids in by_window.values()), len(by_window), len(late),
                         len(hours), len(days))  # fmt: skip


def _fold(conn: Connection, fine: int, coarse: int, since: datetime, until: datetime) -> None:
    conn.execute(sa.text(_FOLD), {"fine": fine, "coarse": coarse, "since": since, "until": until})


def _starts(since: datetime, until: datetime, window_s: int) -> list[datetime]:
    count = int((until - since).total_seconds()) // window_s
    return [since + timedelta(seconds=window_s * i) for i in range(count)]


def _rollup(agent_id: str, metric: str, window_s: int, row: Any) -> Rollup:
    return Rollup(agent_id, metric, window_s, row.window_start, row.count, row.min, row.max, row.sum, row.last,
                  row.last_ts, Sketch.from_pairs(row.q_keys, row.q_counts))  # fmt: skip


def pending(conn: Connection, agent_id: str, metric: str) -> list[Rollup]:
    """The 5 min rollups of one series' samples claimed but not yet rolled up (the open windows, late ones)."""
    collections = conn.execute(sa.text(_PENDING)).all()
    if not collections:
        return []
    starts = [c.started_at for c in collections]
    rows = conn.execute(sa.text(_PENDING_SAMPLES), {"a": agent_id, "m": metric, "lo": min(starts), "hi": max(starts),
                                                   "ids": [c.id for c in collections]})  # fmt: skip
    return aggregate(Sample(r.ts, agent_id, metric, r.value) for r in rows)


def read(conn: Connection, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
    """One series' rollups of one window length, each window as it stands now (pending samples included).

    Run it in one snapshot (REPEATABLE READ): a close committing between its queries would count samples twice.
    """
    if window_s not in ROLLUP_WINDOWS_S:
        return []
    state = read_state(conn)
    levels = [w for w in ROLLUP_WINDOWS_S if w <= window_s]
    stored = conn.execute(
        sa.text(
            f"SELECT window_s, window_start, {_COLUMNS} FROM metric_rollups "
            "WHERE agent_id = :a AND metric = :m AND window_s = ANY(:levels)"
        ),
        {"a": agent_id, "m": metric, "levels": levels},
    ).all()
    by_level: dict[int, list[Rollup]] = {w: [] for w in ROLLUP_WINDOWS_S}
    for r in stored:
        by_level[r.window_s].append(_rollup(agent_id, metric, r.window_s, r))
    fresh = pending(conn, agent_id, metric)  # in no stored row, at any level
    if window_s == BASE_WINDOW_S:
        return combine([*by_level[BASE_WINDOW_S], *fresh])

    def unfolded(level: int, coarse: int) -> list[Rollup]:  # stored, not yet part of a stored coarse window
        since = None if state.open_from is None else window_start(state.open_from, coarse)
        return [r for r in by_level[level] if since is None or r.window_start >= since]

    finer = [*fresh, *unfolded(BASE_WINDOW_S, HOUR_S)]
    if window_s == HOUR_S:
        return combine([*by_level[HOUR_S], *fold(finer, HOUR_S)])
    return combine([*by_level[DAY_S], *fold(unfolded(HOUR_S, DAY_S), DAY_S), *fold(finer, DAY_S)])
