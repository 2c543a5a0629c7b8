"""Hierarchical rollups on PostgreSQL: open 5 min windows merged per collection, closed ones folded upwards.

Per collection only `rollups_open` is touched: its 5 min rows are merged by one upsert (HOT updates: the table is
small, has fillfactor 25 and no index but its key). When a collection starts a new 5 min window, the earlier
windows close and move to `metric_rollups` (one statement); when that closes an hour, the hour's row is computed
from its twelve 5 min rows, and when it closes a day, the day's row from its hours (one set-based statement each,
sketches merged in SQL). `rollup_state.open_from` says how far closing has gone; the hours and days before it are
folded. A late collection (a retry after an outage) whose window has closed is merged straight into every level
already computed. Every step runs under the state row's lock, so aggregations are serialised and never race a fold.

Invariants a reader relies on (`read`): a 5 min window is stored iff it starts before `open_from`, else open; a
1 h (24 h) window has a stored row iff it starts before the hour (day) of `open_from`, else it is the merge of
its finer windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vsmmon.aggregator import BASE_WINDOW_S, aggregate, combine, fold, window_start
from vsmmon.models import ROLLUP_WINDOWS_S, Rollup, Sample
from vsmmon.sketch import Sketch

HOUR_S, DAY_S = ROLLUP_WINDOWS_S[1], ROLLUP_WINDOWS_S[2]
_COLUMNS = "count, min, max, sum, last, last_ts, q_keys, q_counts"
# A collection's rollup has one sample, so one sketch bucket: sent as two integers (dumping arrays row by row
# costs more than the rest of the row); a rollup with more buckets is sent as arrays instead.
_OPEN_IN = """
CREATE TEMP TABLE IF NOT EXISTS open_in (
    agent_id text, metric text, window_start timestamptz, count bigint, min float8, max float8, sum float8,
    last float8, last_ts timestamptz, q_key int4, q_count int4, q_keys int4[], q_counts int4[]
) ON COMMIT DELETE ROWS
"""
_OPEN_TYPES = ["text", "text", "timestamptz", "int8", "float8", "float8", "float8", "float8", "timestamptz",
               "int4", "int4", "int4[]", "int4[]"]  # fmt: skip
# One new sample per series per collection: when its bucket is already there, add to its count (array ops in C,
# no subquery), else append the pair; a stored sketch may hold a key twice, `Sketch.from_pairs` sums them.
_POS = "array_position(r.q_keys, excluded.q_keys[1])"
_ONE_KNOWN = "cardinality(excluded.q_keys) = 1 AND excluded.q_keys[1] = ANY(r.q_keys)"
_OPEN_MERGE_SET = f"""
ON CONFLICT (agent_id, metric, window_start) DO UPDATE SET
    count = r.count + excluded.count,
    min = LEAST(r.min, excluded.min),
    max = GREATEST(r.max, excluded.max),
    sum = r.sum + excluded.sum,
    last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
    last_ts = GREATEST(r.last_ts, excluded.last_ts),
    q_keys = CASE WHEN {_ONE_KNOWN} THEN r.q_keys ELSE r.q_keys || excluded.q_keys END,
    q_counts = CASE WHEN {_ONE_KNOWN}
        THEN r.q_counts[1:{_POS} - 1] || (r.q_counts[{_POS}] + excluded.q_counts[1]) || r.q_counts[{_POS} + 1:]
        ELSE r.q_counts || excluded.q_counts END
"""
_MERGE_OPEN = f"""
INSERT INTO rollups_open AS r
SELECT agent_id, metric, window_start, count, min, max, sum, last, last_ts,
       COALESCE(q_keys, ARRAY[q_key]), COALESCE(q_counts, ARRAY[q_count])
FROM open_in
{_OPEN_MERGE_SET}"""
# vsm_sketch_key (migration 0005) is `vsmmon.sketch.key_of` in SQL, same constants and operations. A collection
# holds one sample per series, so its rows need no grouping; one that repeats a series (PostgreSQL refuses to
# update a row twice in one statement: cardinality_violation) is grouped instead.
_MERGE_SAMPLES = f"""
INSERT INTO rollups_open AS r
SELECT agent_id, metric, :start, 1, value, value, value, value, ts, ARRAY[vsm_sketch_key(value)], ARRAY[1]
FROM metric_samples WHERE ts = :ts AND collection_id = :cid
{_OPEN_MERGE_SET}"""
_MERGE_SAMPLES_GROUPED = f"""
INSERT INTO rollups_open AS r
SELECT agent_id, metric, :start, count(*), min(value), max(value), sum(value), (array_agg(value))[1], :ts,
       array_agg(vsm_sketch_key(value)), array_fill(1, ARRAY[count(*)::int])
FROM metric_samples WHERE ts = :ts AND collection_id = :cid
GROUP BY agent_id, metric
{_OPEN_MERGE_SET}"""
_MOVE_CLOSED = f"""
WITH closing AS (DELETE FROM rollups_open WHERE window_start < :cutoff RETURNING *)
INSERT INTO metric_rollups AS r (agent_id, metric, window_s, window_start, {_COLUMNS})
SELECT agent_id, metric, {BASE_WINDOW_S}, window_start, {_COLUMNS} FROM closing
ON CONFLICT (agent_id, metric, window_s, window_start) DO UPDATE SET
    count = r.count + excluded.count, min = LEAST(r.min, excluded.min), max = GREATEST(r.max, excluded.max),
    sum = r.sum + excluded.sum,
    last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
    last_ts = GREATEST(r.last_ts, excluded.last_ts),
    q_keys = r.q_keys || excluded.q_keys, q_counts = r.q_counts || excluded.q_counts
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
_CARDINALITY_VIOLATION = "21000"
_SAMPLES_OF = "SELECT agent_id, metric, value FROM metric_samples WHERE ts = :ts AND collection_id = :cid"
_CLOSED_IN = """
CREATE TEMP TABLE IF NOT EXISTS closed_in (
    agent_id text, metric text, window_s integer, window_start timestamptz, count bigint, min float8, max float8,
    sum float8, last float8, last_ts timestamptz, q_keys int4[], q_counts int4[]
) ON COMMIT DELETE ROWS
"""
_CLOSED_TYPES = ["text", "text", "int4", *_OPEN_TYPES[2:9], "int4[]", "int4[]"]
_REPLACE_CLOSED = f"""
INSERT INTO metric_rollups (agent_id, metric, window_s, window_start, {_COLUMNS})
SELECT * FROM closed_in
ON CONFLICT (agent_id, metric, window_s, window_start) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", "))}
"""
_STORED_FOR = f"""
SELECT r.agent_id, r.metric, r.window_s, r.window_start, {", ".join("r." + c for c in _COLUMNS.split(", "))}
FROM metric_rollups r
JOIN unnest(%s::text[], %s::text[], %s::int4[], %s::timestamptz[]) AS k(agent_id, metric, window_s, window_start)
  ON r.agent_id = k.agent_id AND r.metric = k.metric AND r.window_s = k.window_s AND r.window_start = k.window_start
"""


@dataclass(frozen=True, slots=True)
class State:
    open_from: datetime | None  # 5 min windows starting before this are closed (stored, folded into 1 h)
    days_from: datetime | None  # 1 h windows starting before this are folded into 24 h


def lock_state(conn: Connection) -> State:
    """The fold state, locked until the transaction ends (every rollup write goes through here)."""
    query = sa.text("SELECT open_from, days_from FROM rollup_state WHERE id = 1 FOR UPDATE")
    row = conn.execute(query).first()
    if row is None:  # emptied (tests truncate it): nothing folded yet
        conn.execute(sa.text("INSERT INTO rollup_state VALUES (1, NULL, NULL) ON CONFLICT DO NOTHING"))
        row = conn.execute(query).one()
    return State(row.open_from, row.days_from)


def read_state(conn: Connection) -> State:
    row = conn.execute(sa.text("SELECT open_from, days_from FROM rollup_state WHERE id = 1")).first()
    return State(None, None) if row is None else State(row.open_from, row.days_from)


def merge_collection(conn: Connection, rollups: Sequence[Rollup], started_at: datetime) -> None:
    """Merge one collection's 5 min rollups, then fold every window its start closes. Raises: ValueError."""
    if any(r.window_s != BASE_WINDOW_S for r in rollups):
        raise ValueError(f"a collection is merged as {BASE_WINDOW_S} s rollups; coarser ones are folded from them")
    state = lock_state(conn)
    late = [r for r in rollups if state.open_from is not None and r.window_start < state.open_from]
    fresh = [r for r in rollups if state.open_from is None or r.window_start >= state.open_from]
    if fresh:
        _merge_open(conn, fresh)
    _merge_late(conn, late, state)
    _close_before(conn, started_at, state)


def merge_stored(conn: Connection, collection_id: UUID, started_at: datetime) -> None:
    """`merge_collection` of a stored collection's samples, computed where they are (no row leaves the database)."""
    # The common case, a collection of the open window, is one INSERT ... SELECT ... ON CONFLICT: at 1,000 agents
    # x 20 metrics that is ~20,000 rows no Python code touches. A late one goes through `merge_collection`'s path.
    state = lock_state(conn)
    start = window_start(started_at, BASE_WINDOW_S)
    params = {"cid": collection_id, "ts": started_at, "start": start}
    if state.open_from is None or start >= state.open_from:
        try:
            with conn.begin_nested():
                conn.execute(sa.text(_MERGE_SAMPLES), params)
        except sa.exc.ProgrammingError as e:
            if getattr(e.orig, "sqlstate", None) != _CARDINALITY_VIOLATION:
                raise
            conn.execute(sa.text(_MERGE_SAMPLES_GROUPED), params)
    else:
        rows = conn.execute(sa.text(_SAMPLES_OF), params).all()
        _merge_late(conn, aggregate(Sample(started_at, r.agent_id, r.metric, r.value) for r in rows), state)
    _close_before(conn, started_at, state)


def _merge_late(conn: Connection, late: Sequence[Rollup], state: State) -> None:
    """Rollups of 5 min windows already closed, into every level their windows were already folded into."""
    if late and state.open_from is not None:
        hours = [r for r in late if r.window_start < window_start(state.open_from, HOUR_S)]
        days = [r for r in late if r.window_start < window_start(state.open_from, DAY_S)]
        _merge_closed(conn, [*late, *fold(hours, HOUR_S), *fold(days, DAY_S)])


def _close_before(conn: Connection, started_at: datetime, state: State) -> None:
    cutoff = window_start(started_at, BASE_WINDOW_S)
    if state.open_from is None or cutoff > state.open_from:
        _close(conn, cutoff, state)


def _merge_open(conn: Connection, rollups: Sequence[Rollup]) -> None:
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor:
        cursor.execute(_OPEN_IN)
        with cursor.copy("COPY open_in FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_OPEN_TYPES)
            write = copy.write_row
            for r in rollups:
                keys, counts = r.sketch.keys, r.sketch.counts
                one = len(keys) == 1
                write((r.agent_id, r.metric, r.window_start, r.count, r.min, r.max, r.sum, r.last, r.last_ts,
                       keys[0] if one else None, counts[0] if one else None,
                       None if one else list(keys), None if one else list(counts)))  # fmt: skip
        cursor.execute(_MERGE_OPEN)
        cursor.execute("TRUNCATE open_in")


def _close(conn: Connection, cutoff: datetime, state: State) -> None:
    """Store the 5 min windows starting before `cutoff`; compute the hours and days that this closes."""
    params = {"cutoff": cutoff}
    first = conn.execute(sa.text("SELECT min(window_start) FROM rollups_open WHERE window_start < :cutoff"), params)
    earliest = first.scalar_one() or cutoff
    conn.execute(sa.text(_MOVE_CLOSED), params)
    since = state.open_from or earliest  # the first close: nothing stored before its earliest window
    for fine, coarse in ((BASE_WINDOW_S, HOUR_S), (HOUR_S, DAY_S)):
        done, until = window_start(since, coarse), window_start(cutoff, coarse)
        if until > done:
            conn.execute(sa.text(_FOLD), {"fine": fine, "coarse": coarse, "since": done, "until": until})
    conn.execute(
        sa.text("UPDATE rollup_state SET open_from = :cutoff, days_from = :days_from WHERE id = 1"),
        {"cutoff": cutoff, "days_from": window_start(cutoff, DAY_S)},
    )


def _merge_closed(conn: Connection, rollups: Sequence[Rollup]) -> None:
    """Merge rollups into the stored rows of their windows: read, merge exactly (sketches too), write back."""
    if not rollups:
        return
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    merged = {(r.agent_id, r.metric, r.window_s, r.window_start): r for r in combine(rollups)}
    with raw.cursor() as cursor:
        keys = list(merged)
        cursor.execute(_STORED_FOR, [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                                     [k[3] for k in keys]])  # fmt: skip
        for a, m, w, start, count, low, high, total, last, last_ts, q_keys, q_counts in cursor.fetchall():
            sketch = Sketch.from_pairs(q_keys, q_counts)
            stored = Rollup(a, m, w, start, count, low, high, total, last, last_ts, sketch)
            key = (a, m, w, start)
            merged[key] = stored.merge(merged[key])
        cursor.execute(_CLOSED_IN)
        with cursor.copy("COPY closed_in FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_CLOSED_TYPES)
            for r in merged.values():
                copy.write_row((r.agent_id, r.metric, r.window_s, r.window_start, r.count, r.min, r.max, r.sum,
                                r.last, r.last_ts, list(r.sketch.keys), list(r.sketch.counts)))  # fmt: skip
        cursor.execute(_REPLACE_CLOSED)
        cursor.execute("TRUNCATE closed_in")


def _rollup(agent_id: str, metric: str, window_s: int, row: Any) -> Rollup:
    return Rollup(agent_id, metric, window_s, row.window_start, row.count, row.min, row.max, row.sum, row.last,
                  row.last_ts, Sketch.from_pairs(row.q_keys, row.q_counts))  # fmt: skip


def read(conn: Connection, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
    """One series' rollups of one window length, each window as it stands now (open parts included)."""
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
    open_rows = conn.execute(
        sa.text(f"SELECT window_start, {_COLUMNS} FROM rollups_open WHERE agent_id = :a AND metric = :m"),
        {"a": agent_id, "m": metric},
    ).all()
    by_level: dict[int, list[Rollup]] = {w: [] for w in ROLLUP_WINDOWS_S}
    for r in stored:
        by_level[r.window_s].append(_rollup(agent_id, metric, r.window_s, r))
    opened = [_rollup(agent_id, metric, BASE_WINDOW_S, r) for r in open_rows]
    if window_s == BASE_WINDOW_S:
        return combine([*by_level[BASE_WINDOW_S], *opened])

    def unfolded(level: int, coarse: int) -> list[Rollup]:  # stored, not yet part of a stored coarse window
        since = None if state.open_from is None else window_start(state.open_from, coarse)
        return [r for r in by_level[level] if since is None or r.window_start >= since]

    finer = [*opened, *unfolded(BASE_WINDOW_S, HOUR_S)]
    if window_s == HOUR_S:
        return combine([*by_level[HOUR_S], *fold(finer, HOUR_S)])
    return combine([*by_level[DAY_S], *fold(unfolded(HOUR_S, DAY_S), DAY_S), *fold(finer, DAY_S)])
