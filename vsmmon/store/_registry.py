"""The agent registry's writes: each collection's reports merged into `agents` in one statement, and the status
transitions the registry judged applied in one more."""

from __future__ import annotations

from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection

from vsmmon.collect.registry import Transition
from vsmmon.models import Collection

_AGENTS_IN = """
CREATE TEMP TABLE IF NOT EXISTS agents_in (
    id text, kind text, host text, version text, seen timestamptz, interval_s float8,
    config_hash text, queues jsonb, last_metrics jsonb, last_errors jsonb
) ON COMMIT DELETE ROWS
"""
_AGENTS_IN_TYPES = ["text", "text", "text", "text", "timestamptz", "float8", "text", "jsonb", "jsonb", "jsonb"]
# a late retry of an old collection must not roll the registry back: only newer reports replace fields
_MERGE_AGENTS = """
INSERT INTO agents AS a (id, kind, host, version, first_seen, last_seen, status, status_since,
                         interval_s, config_hash, queues, last_metrics, last_errors)
SELECT id, kind, host, version, seen, seen, 'online', seen, interval_s, config_hash, queues, last_metrics, last_errors
FROM agents_in
ORDER BY id  -- every writer locks rows in the same order: two retries merging at once cannot deadlock
ON CONFLICT (id) DO UPDATE SET
    kind = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.kind ELSE a.kind END,
    host = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.host ELSE a.host END,
    version = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.version ELSE a.version END,
    interval_s = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.interval_s ELSE a.interval_s END,
    config_hash = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.config_hash ELSE a.config_hash END,
    queues = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.queues ELSE a.queues END,
    last_metrics = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.last_metrics ELSE a.last_metrics END,
    last_errors = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.last_errors ELSE a.last_errors END,
    last_seen = GREATEST(a.last_seen, excluded.last_seen)
"""


def upsert_agents(conn: Connection, collection: Collection) -> None:
    """Registry rows through COPY into a temporary table and one merge: a statement with thousands of
    parameters per cycle would cost more than the samples themselves."""
    if not collection.reports:
        return
    at, default_interval_s = collection.started_at, collection.interval_s
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor:
        cursor.execute(_AGENTS_IN)
        with cursor.copy("COPY agents_in FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_AGENTS_IN_TYPES)
            for r in collection.reports:
                copy.write_row(
                    (
                        r.agent_id, r.kind.value, r.host, r.version, at, r.interval_s or default_interval_s,
                        r.config_hash, Jsonb(list(r.queues)), Jsonb({**r.metrics, **r.latest}), Jsonb(dict(r.errors)),
                    )
                )  # fmt: skip
        cursor.execute(_MERGE_AGENTS)
        cursor.execute("TRUNCATE agents_in")


# Locks the rows in id order first (as the merge does), then changes each agent still in the status the
# transition starts from, and records the transitions that changed one: a judgement racing a newer one
# changes nothing.
_LOCK = "SELECT 1 FROM agents WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
_TRANSITIONS = """
WITH t AS (
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[]), CAST(:froms AS text[]),
                         CAST(:tos AS text[]), CAST(:reasons AS text[]))
                  AS t(agent_id, at, from_status, to_status, reason)
), changed AS (
    UPDATE agents AS a SET status = t.to_status, status_since = t.at
    FROM t WHERE a.id = t.agent_id AND a.status = t.from_status
    RETURNING t.agent_id, t.at, t.from_status, t.to_status, t.reason
), recorded AS (
    INSERT INTO agent_transitions (agent_id, at, from_status, to_status, reason)
    SELECT agent_id, at, from_status, to_status, reason FROM changed
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM changed
"""


def apply_transitions(conn: Connection, transitions: list[Transition]) -> int:
    """Apply the transitions (at most one per agent) whose agent is still in their `from_status`; how many did."""
    if not transitions:
        return 0
    ids = [t.agent_id for t in transitions]
    conn.execute(sa.text(_LOCK), {"ids": ids})
    params = {
        "ids": ids,
        "ats": [t.at for t in transitions],
        "froms": [t.from_status.value for t in transitions],
        "tos": [t.to_status.value for t in transitions],
        "reasons": [t.reason for t in transitions],
    }
    return int(conn.execute(sa.text(_TRANSITIONS), params).scalar_one())
