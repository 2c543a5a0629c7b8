"""PostgreSQL store: samples through binary COPY, everything else as upserts on natural keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from vsmmon.errors import NotFound, StoreUnavailable
from vsmmon.models import Collection, CollectionSummary, Rollup
from vsmmon.storage.tables import agents, collections, metric_rollups

T = TypeVar("T")

_COPY_SAMPLES = "COPY metric_samples (ts, collection_id, agent_id, metric, value) FROM STDIN (FORMAT BINARY)"
_SAMPLE_TYPES = ["timestamptz", "uuid", "text", "text", "float8"]


def create_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for one process; build it after a fork, never share it across one."""
    return sa.create_engine(url, pool_size=pool_size, pool_pre_ping=True, pool_recycle=1800)


class PostgresStore:
    """The `Store` on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_collection(self, collection: Collection, now: datetime) -> bool:
        def write(conn: Connection) -> bool:
            inserted = conn.execute(
                insert(collections)
                .values(
                    id=collection.id,
                    started_at=collection.started_at,
                    duration_ms=collection.duration_ms,
                    agent_count=collection.agent_count,
                    sample_count=collection.sample_count,
                    unreachable=list(collection.unreachable),
                    persisted_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(collections.c.id)
            ).first()
            if inserted is None:
                return False
            _copy_samples(conn, collection)
            _upsert_agents(conn, collection, now)
            return True

        return self._in_transaction(write)

    def apply_rollups(self, collection_id: UUID, rollups: list[Rollup], now: datetime) -> bool:
        def write(conn: Connection) -> bool:
            claimed = conn.execute(
                sa.update(collections)
                .where(collections.c.id == collection_id, collections.c.aggregated_at.is_(None))
                .values(aggregated_at=now)
                .returning(collections.c.id)
            ).first()
            if claimed is None:
                if conn.execute(sa.select(collections.c.id).where(collections.c.id == collection_id)).first():
                    return False
                raise NotFound(f"collection {collection_id} is not stored")
            if rollups:
                _merge_rollups(conn, rollups)
            return True

        return self._in_transaction(write)

    def latest_collection(self) -> CollectionSummary | None:
        query = sa.select(collections).order_by(collections.c.started_at.desc()).limit(1)
        row = self._in_transaction(lambda conn: conn.execute(query).first())
        return None if row is None else _summary(row)

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        query = sa.select(collections).where(collections.c.id == collection_id)
        row = self._in_transaction(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"collection {collection_id} is not stored")
        return _summary(row)

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        r = metric_rollups.c
        query = (
            sa.select(metric_rollups)
            .where(r.agent_id == agent_id, r.metric == metric, r.window_s == window_s)
            .order_by(r.window_start)
        )
        rows = self._in_transaction(lambda conn: conn.execute(query).all())
        return [Rollup(*row) for row in rows]

    def ping(self) -> None:
        self._in_transaction(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(f"PostgreSQL unavailable: {e.orig or e}") from e


def _copy_samples(conn: Connection, collection: Collection) -> None:
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy(_COPY_SAMPLES) as copy:
        copy.set_types(_SAMPLE_TYPES)
        for s in collection.samples():
            copy.write_row((s.ts, collection.id, s.agent_id, s.metric, s.value))


def _upsert_agents(conn: Connection, collection: Collection, now: datetime) -> None:
    if not collection.reports:
        return
    rows = [
        {
            "id": r.agent_id,
            "kind": r.kind.value,
            "host": r.host,
            "version": r.version,
            "first_seen": collection.started_at,
            "last_seen": collection.started_at,
            "status": "online",
        }
        for r in collection.reports
    ]
    stmt = insert(agents).values(rows)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "kind": stmt.excluded.kind,
                "host": stmt.excluded.host,
                "version": stmt.excluded.version,
                "last_seen": sa.func.greatest(agents.c.last_seen, stmt.excluded.last_seen),
                "status": "online",
            },
        )
    )


def _merge_rollups(conn: Connection, rollups: list[Rollup]) -> None:
    stmt = insert(metric_rollups)
    ex, cur = stmt.excluded, metric_rollups.c
    newer = ex.last_ts >= cur.last_ts
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["agent_id", "metric", "window_s", "window_start"],
            set_={
                "count": cur.count + ex.count,
                "min": sa.func.least(cur.min, ex.min),
                "max": sa.func.greatest(cur.max, ex.max),
                "sum": cur.sum + ex.sum,
                "last": sa.case((newer, ex.last), else_=cur.last),
                "last_ts": sa.func.greatest(cur.last_ts, ex.last_ts),
            },
        ),
        [_rollup_row(r) for r in rollups],
    )


def _rollup_row(r: Rollup) -> dict[str, Any]:
    return {
        "agent_id": r.agent_id, "metric": r.metric, "window_s": r.window_s, "window_start": r.window_start,
        "count": r.count, "min": r.min, "max": r.max, "sum": r.sum, "last": r.last, "last_ts": r.last_ts,
    }  # fmt: skip


def _summary(row: Any) -> CollectionSummary:
    return CollectionSummary(
        id=row.id,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        agent_count=row.agent_count,
        sample_count=row.sample_count,
        unreachable=tuple(row.unreachable),
        persisted_at=row.persisted_at,
        aggregated_at=row.aggregated_at,
    )


@contextmanager
def store_for(url: str) -> Iterator[PostgresStore]:
    """A store with its own engine, disposed on exit (for CLI commands and tests)."""
    engine = create_engine(url, pool_size=2)
    try:
        yield PostgresStore(engine)
    finally:
        engine.dispose()
