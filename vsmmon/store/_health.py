"""Health rows through binary COPY into a temporary table and one insert: an assessment of 10,000 agents is
10,000 rows every 30 s, and one multi-row INSERT of them spent more time being compiled than stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection

from vsmmon.models import HealthRow

_HEALTH_IN = """
CREATE TEMP TABLE IF NOT EXISTS health_in (
    at timestamptz, scope text, subject text, score float8, status text, inputs jsonb, check_id uuid
) ON COMMIT DELETE ROWS
"""
_HEALTH_IN_TYPES = ["timestamptz", "text", "text", "float8", "text", "jsonb", "uuid"]
# a retried assessment stores nothing twice; the count says what was new
_INSERT = """
WITH new AS (
    INSERT INTO health_assessments (at, scope, subject, score, status, inputs, check_id)
    SELECT at, scope, subject, score, status, inputs, check_id FROM health_in
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT count(*) FROM new
"""


def save_health(conn: Connection, rows: Iterable[HealthRow]) -> int:
    """Store the rows not stored yet (streamed: any iterable, read once); how many were new."""
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor:
        cursor.execute(_HEALTH_IN)
        with cursor.copy("COPY health_in FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_HEALTH_IN_TYPES)
            for r in rows:
                copy.write_row((r.at, r.scope, r.subject, r.score, r.status, Jsonb(dict(r.inputs)), r.check_id))
        found = cursor.execute(_INSERT).fetchone()
        cursor.execute("TRUNCATE health_in")
    return int(found[0]) if found else 0
