"""PostgreSQL store: samples through binary COPY, everything else as upserts on natural keys."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from vsmmon.analyse.analysis import AnalysisResult, DueForecast
from vsmmon.analyse.forecast import HORIZONS_S
from vsmmon.analyse.recommend import Recommendation
from vsmmon.codec import screen
from vsmmon.collect.registry import AgentRecord, Transition
from vsmmon.collect.shards import cycle_summary
from vsmmon.errors import NotFound, StoreUnavailable
from vsmmon.models import (
    AgentInfo,
    AgentStatus,
    Collection,
    CollectionSummary,
    HealthRow,
    Rollup,
    RollupProgress,
    WindowsClosed,
)
from vsmmon.store import _reads as reads
from vsmmon.store import _rollups as rollup_store
from vsmmon.store._health import save_health as copy_health
from vsmmon.store._partitions import MaintenanceReport, carry_out, existing_partitions
from vsmmon.store._registry import apply_transitions as apply_status_changes
from vsmmon.store._registry import upsert_agents
from vsmmon.store._tables import (
    agent_transitions,
    agents,
    collections,
    forecasts,
    recommendations,
)
from vsmmon.store.base import AgentScore, CollectionDuration, GridRow, StoredForecast, StoredTrend, change_time
from vsmmon.store.retention import Policy, plan

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
        collection = screen(collection)[0]  # never one NUL failing every row (the persist task counts them)

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
                    shard=collection.shard,
                    shards=collection.shards,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(collections.c.id)
            ).first()
            if inserted is None:
                return False
            _copy_samples(conn, collection)
            return True

        return self._in_transaction(write)

    def update_registry(self, collection: Collection) -> None:
        self._in_transaction(lambda conn: upsert_agents(conn, screen(collection)[0]))

    def aggregate_collection(self, collection_id: UUID, now: datetime) -> bool:
        return self._in_transaction(lambda conn: _claim(conn, collection_id, now) is not None)

    def close_due(self, started_at: datetime) -> datetime | None:
        return self._in_transaction(lambda conn: rollup_store.close_due(conn, started_at))

    def close_windows(self, cutoff: datetime, now: datetime) -> WindowsClosed:
        return self._in_transaction(lambda conn: rollup_store.close(conn, cutoff, now))

    def rollup_progress(self) -> RollupProgress:
        return self._in_transaction(rollup_store.progress)

    def latest_collection(self) -> CollectionSummary | None:
        c = collections.c
        newest = sa.select(c.started_at).order_by(c.started_at.desc()).limit(1).scalar_subquery()
        query = sa.select(collections).where(c.started_at == newest)
        rows = self._in_transaction(lambda conn: conn.execute(query).all())
        return cycle_summary([_summary(r) for r in rows]) if rows else None

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        query = sa.select(collections).where(collections.c.id == collection_id)
        row = self._in_transaction(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"collection {collection_id} is not stored")
        return _summary(row)

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        def read(conn: Connection) -> list[Rollup]:
            return rollup_store.read(conn, agent_id, metric, window_s)

        return self._in_transaction(read, isolation="REPEATABLE READ")  # one snapshot: no close seen by halves

    def agent_records(self) -> list[AgentRecord]:
        a = agents.c
        query = sa.select(a.id, a.kind, a.last_seen, a.interval_s, a.status, a.status_since)
        rows = self._in_transaction(lambda conn: conn.execute(query).all())
        return [
            AgentRecord(r.id, r.kind, r.last_seen, r.interval_s, AgentStatus(r.status), r.status_since) for r in rows
        ]

    def apply_transitions(self, transitions: list[Transition]) -> int:
        return self._in_transaction(lambda conn: apply_status_changes(conn, transitions)) if transitions else 0

    def agents(self, metrics: Sequence[str] | None = None) -> list[AgentInfo]:
        return self._in_transaction(lambda conn: reads.agents(conn, metrics))

    def transitions(self, agent_id: str) -> list[Transition]:
        t = agent_transitions.c
        query = sa.select(agent_transitions).where(t.agent_id == agent_id).order_by(t.at)
        rows = self._in_transaction(lambda conn: conn.execute(query).all())
        return [
            Transition(r.agent_id, r.at, AgentStatus(r.from_status), AgentStatus(r.to_status), r.reason) for r in rows
        ]

    def save_health(self, rows: Iterable[HealthRow]) -> int:
        return self._in_transaction(lambda conn: copy_health(conn, rows))

    def health_history(self, scope: str, subject: str, since: datetime) -> list[HealthRow]:
        return self._in_transaction(lambda conn: reads.health_history(conn, scope, subject, since))

    def health_checks(self, since: datetime) -> list[HealthRow]:
        return self._in_transaction(lambda conn: reads.health_checks(conn, since))

    def health_check(self, check_id: UUID) -> list[HealthRow]:
        return self._in_transaction(lambda conn: reads.health_check(conn, check_id))

    def save_analysis(self, result: AnalysisResult) -> int:
        """Trends and forecasts of one analysis; recommendations upserted on their fingerprint."""
        at = result.at
        # rows made as they are copied, not held: 10,000 agents' trends as tuples were ~5 MB more at once
        trend_rows = (
            (at, a, m, w, _finite(t.slope_per_s), _finite(t.slope_stderr), t.direction.value, _finite(t.level),
             _finite(t.trend_per_s), _finite(t.anomaly), change_time(at, t.change_at_s))
            for a, m, w, t in result.trends
        )  # fmt: skip
        forecast_rows = (
            (at, a, m, int(f.horizon_s), f.value_at_horizon, _finite(f.lower), _finite(f.upper))
            for a, m, f in result.forecasts
        )

        def write(conn: Connection) -> int:
            if result.trends:  # thousands a run: COPY, not one INSERT each
                _copy_new(conn, "trends", _TREND_COLUMNS, trend_rows)
            if result.forecasts:
                _copy_new(conn, "forecasts", _FORECAST_COLUMNS, forecast_rows)
            advice = [
                {"id": uuid.uuid4(), "fingerprint": r.fingerprint, "created_at": at, "updated_at": at,
                 "expires_at": r.expires_at, "kind": r.kind, "target": r.target, "action": dict(r.action),
                 "rationale": r.rationale, "confidence": r.confidence}
                for r in result.recommendations
            ]  # fmt: skip
            if advice:  # one fingerprint each (`recommend.dedupe`): one batched upsert, not hundreds of statements
                stmt = insert(recommendations)
                kept = ("updated_at", "expires_at", "action", "rationale", "confidence")
                upsert = stmt.on_conflict_do_update(index_elements=["fingerprint"],
                                                    set_={k: stmt.excluded[k] for k in kept})  # fmt: skip
                conn.execute(upsert, advice)
            return len(result.trends) + len(result.forecasts) + len(result.recommendations)

        return self._in_transaction(write)

    def recommendations(self, now: datetime) -> list[Recommendation]:
        """Recommendations not yet expired, most confident first."""
        r = recommendations.c
        query = sa.select(recommendations).where(r.expires_at > now).order_by(r.confidence.desc(), r.updated_at.desc())
        found = self._in_transaction(lambda conn: conn.execute(query).all())
        return [Recommendation(x.kind, x.target, x.action, x.rationale, x.confidence, x.expires_at) for x in found]

    def due_forecasts(self, since: datetime, until: datetime) -> list[DueForecast]:
        query = sa.text(
            f"SELECT at, agent_id, metric, horizon_s, value FROM forecasts WHERE actual IS NULL AND {_DUE_BETWEEN} "
            "ORDER BY at, agent_id, metric"
        )
        rows = self._in_transaction(lambda conn: conn.execute(query, _due_params(since, until)).all())
        return [DueForecast(r.at, r.agent_id, r.metric, r.horizon_s, r.value) for r in rows]

    def score_forecasts(self, scored: Sequence[tuple[DueForecast, float]]) -> int:
        if not scored:
            return 0
        f = forecasts.c
        stmt = (
            sa.update(forecasts)
            .where(f.at == sa.bindparam("k_at"), f.agent_id == sa.bindparam("k_agent"),
                   f.metric == sa.bindparam("k_metric"), f.horizon_s == sa.bindparam("k_horizon"))
            .values(actual=sa.bindparam("k_actual"))
        )  # fmt: skip
        rows = [{"k_at": d.at, "k_agent": d.agent_id, "k_metric": d.metric, "k_horizon": d.horizon_s,
                 "k_actual": actual} for d, actual in scored]  # fmt: skip
        self._in_transaction(lambda conn: conn.execute(stmt, rows))
        return len(rows)

    def forecast_accuracy(self, since: datetime, until: datetime) -> tuple[float | None, int]:
        # the bounded sMAPE of vsmmon.forecast.smape, summed where the rows are (a 0/0 pair counts as 0)
        query = sa.text(
            "SELECT avg(CASE WHEN actual = value THEN 0 ELSE abs(actual - value) / (abs(actual) + abs(value)) END) "
            f"AS smape, count(*) AS n FROM forecasts WHERE actual IS NOT NULL AND {_DUE_BETWEEN}"
        )
        row = self._in_transaction(lambda conn: conn.execute(query, _due_params(since, until)).one())
        return (None if row.smape is None else float(row.smape)), int(row.n)

    def agent_scores(self, since: datetime) -> tuple[datetime | None, dict[str, AgentScore]]:
        return self._in_transaction(lambda conn: reads.agent_scores(conn, since))

    def grid(self, metrics: Sequence[str]) -> list[GridRow]:
        return self._in_transaction(lambda conn: reads.grid(conn, metrics))

    def latest_forecast(self, agent_id: str, metric: str) -> StoredForecast | None:
        return self._in_transaction(lambda conn: reads.latest_forecast(conn, agent_id, metric))

    def latest_trend(self, agent_id: str, metric: str, window_s: int) -> StoredTrend | None:
        return self._in_transaction(lambda conn: reads.latest_trend(conn, agent_id, metric, window_s))

    def collection_durations(self, since: datetime | None) -> list[CollectionDuration]:
        return self._in_transaction(lambda conn: reads.collection_durations(conn, since))

    def maintain(self, rules: list[Policy], now: datetime, ahead: timedelta) -> MaintenanceReport:
        """Create partitions ahead, drop those past retention, trim small tables: one transaction."""

        def work(conn: Connection) -> MaintenanceReport:
            partitioned = [r.table for r in rules if r.unit]
            pending = rollup_store.progress(conn).oldest_pending
            holds = {"metric_samples": pending} if pending is not None else {}  # windows still to compute
            todo = plan(rules, existing_partitions(conn, partitioned), now, ahead, holds)
            return carry_out(conn, todo, {r.table: r.column for r in rules})

        return self._in_transaction(work)

    def ping(self) -> None:
        self._in_transaction(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    def _in_transaction(self, work: Callable[[Connection], T], isolation: str | None = None) -> T:
        try:
            with self.engine.connect() as conn:
                if isolation is not None:
                    conn.execution_options(isolation_level=isolation)
                with conn.begin():
                    return work(conn)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(f"PostgreSQL unavailable: {e.orig or e}") from e
        except psycopg.OperationalError as e:  # raised on the raw connection (COPY paths): a deadlock, a lost link
            raise StoreUnavailable(f"PostgreSQL unavailable: {e}") from e


def _claim(conn: Connection, collection_id: UUID, now: datetime) -> datetime | None:
    """Mark a stored collection aggregated; its start, or None when it was aggregated before. Raises: NotFound."""
    claimed = conn.execute(
        sa.update(collections)
        .where(collections.c.id == collection_id, collections.c.aggregated_at.is_(None))
        .values(aggregated_at=now)
        .returning(collections.c.started_at)
    ).first()
    if claimed is not None:
        return cast(datetime, claimed.started_at)
    if conn.execute(sa.select(collections.c.id).where(collections.c.id == collection_id)).first() is None:
        raise NotFound(f"collection {collection_id} is not stored")
    return None


def _copy_samples(conn: Connection, collection: Collection) -> None:
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    ts, cid = collection.started_at, collection.id
    with raw.cursor() as cursor, cursor.copy(_COPY_SAMPLES) as copy:
        copy.set_types(_SAMPLE_TYPES)
        write = copy.write_row
        for report in collection.reports:  # the hot loop: no per-sample objects
            agent_id = report.agent_id
            for metric, value in report.metrics.items():
                write((ts, cid, agent_id, metric, value))


_TREND_COLUMNS = {"at": "timestamptz", "agent_id": "text", "metric": "text", "window_s": "int4", "slope": "float8",
                  "slope_stderr": "float8", "direction": "text", "level": "float8", "trend": "float8",
                  "anomaly": "float8", "change_at": "timestamptz"}  # fmt: skip
_FORECAST_COLUMNS = {"at": "timestamptz", "agent_id": "text", "metric": "text", "horizon_s": "int4",
                     "value": "float8", "lower": "float8", "upper": "float8"}  # fmt: skip


def _copy_new(conn: Connection, table: str, columns: dict[str, str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert rows not stored yet: binary COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING."""
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    names = ", ".join(columns)
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}_in (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {table}_in ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(columns.values()))
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_in ON CONFLICT DO NOTHING")
        cursor.execute(f"TRUNCATE {table}_in")


# due time in [since, until]; the bound on `at` alone lets the index on it find the rows
_DUE_BETWEEN = "at >= :oldest AND at <= :until AND at + horizon_s * interval '1 second' BETWEEN :since AND :until"


def _due_params(since: datetime, until: datetime) -> dict[str, datetime]:
    return {"oldest": since - timedelta(seconds=max(HORIZONS_S)), "since": since, "until": until}


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
        shard=row.shard,
        shards=row.shards,
    )


@contextmanager
def store_for(url: str) -> Iterator[PostgresStore]:
    """A store with its own engine, disposed on exit (for CLI commands and tests)."""
    engine = create_engine(url, pool_size=2)
    try:
        yield PostgresStore(engine)
    finally:
        engine.dispose()


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
