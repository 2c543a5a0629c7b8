"""Read-only queries of the dashboard and `/metrics` that the `Store` protocol has no call for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vsmmon.errors import StoreUnavailable
from vsmmon.store._tables import collections, forecasts, health_assessments, trends
from vsmmon.store.base import Store

T = TypeVar("T")
ALERT_SEVERITIES = ("info", "warning", "critical")
OPEN_ALERT_STATUSES = ("pending", "firing", "acknowledged")


@dataclass(frozen=True, slots=True)
class AgentScore:
    score: float | None
    state: str
    factors: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    horizon_s: int
    value: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class Trend:
    at: datetime
    level: float | None
    trend_per_s: float | None


class Reads:
    """Queries on the store's engine; a lost database is `StoreUnavailable`, as for the store itself."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, store: Store) -> Reads:
        engine = getattr(store, "engine", None)
        if not isinstance(engine, Engine):
            raise StoreUnavailable("the dashboard's reads need the PostgreSQL store")
        return cls(engine)

    def agent_scores(self, since: datetime) -> tuple[datetime | None, dict[str, AgentScore]]:
        """The agents' scores of the latest assessment since `since` (factor scores without their inputs)."""
        h = health_assessments.c
        latest = sa.select(sa.func.max(h.at)).where(h.scope == "viability", h.at >= since)
        # the factors' scores are picked out in the database: the inputs they came from are not needed here
        factors = sa.text(
            "SELECT subject, score, status, (SELECT jsonb_object_agg(f->>'name', f->'score') "
            "FROM jsonb_array_elements(inputs->'factors') AS f) AS factors "
            "FROM health_assessments WHERE scope = 'agent' AND at = :at"
        )

        def work(conn: Connection) -> tuple[datetime | None, list[Any]]:
            at = conn.execute(latest).scalar()
            return at, ([] if at is None else list(conn.execute(factors, {"at": at}).all()))

        at, rows = self._run(work)
        return at, {r.subject: AgentScore(r.score, r.status, dict(r.factors or {})) for r in rows}

    def grid(self, metrics: tuple[str, ...]) -> list[Any]:
        """Every agent's identity, status and only the named metrics (not its whole latest report)."""
        picked = ", ".join(f"'{m}', last_metrics->'{m}'" for m in metrics if m.replace("_", "").isalnum())
        query = sa.text(
            "SELECT id, kind, host, status, status_since, last_seen, interval_s, "
            f"jsonb_strip_nulls(jsonb_build_object({picked})) AS metrics FROM agents ORDER BY id"
        )
        return self._run(lambda conn: list(conn.execute(query).all()))

    def forecast(self, agent_id: str, metric: str) -> tuple[datetime, list[ForecastPoint]] | None:
        """The latest stored forecast of one series, by horizon."""
        f = forecasts.c
        latest = sa.select(sa.func.max(f.at)).where(f.agent_id == agent_id, f.metric == metric).scalar_subquery()
        query = (
            sa.select(f.at, f.horizon_s, f.value, f.lower, f.upper)
            .where(f.agent_id == agent_id, f.metric == metric, f.at == latest)
            .order_by(f.horizon_s)
        )
        rows = self._run(lambda conn: conn.execute(query).all())
        if not rows:
            return None
        return rows[0].at, [ForecastPoint(r.horizon_s, r.value, r.lower, r.upper) for r in rows]

    def trend(self, agent_id: str, metric: str, window_s: int) -> Trend | None:
        """The latest stored trend (Holt level and slope) of one series."""
        t = trends.c
        query = (
            sa.select(t.at, t.level, t.trend)
            .where(t.agent_id == agent_id, t.metric == metric, t.window_s == window_s)
            .order_by(t.at.desc())
            .limit(1)
        )
        row = self._run(lambda conn: conn.execute(query).first())
        return None if row is None else Trend(row.at, row.level, row.trend)

    def open_alerts(self) -> dict[tuple[str, str], int]:
        """Open alerts counted by (severity, status)."""
        query = sa.text(
            "SELECT severity, status, count(*) AS n FROM alerts WHERE status = ANY(:statuses) GROUP BY severity, status"
        )
        rows = self._run(lambda conn: conn.execute(query, {"statuses": list(OPEN_ALERT_STATUSES)}).all())
        return {(r.severity, r.status): int(r.n) for r in rows}

    def collection_durations(self, after: datetime | None, seen: frozenset[UUID]) -> list[tuple[UUID, datetime, float]]:
        """(id, persisted_at, duration_ms) of the collections persisted at or after `after`, oldest first."""
        c = collections.c
        query = sa.select(c.id, c.persisted_at, c.duration_ms).order_by(c.persisted_at)
        if after is not None:
            query = query.where(c.persisted_at >= after)
        rows = self._run(lambda conn: conn.execute(query).all())
        return [(r.id, r.persisted_at, r.duration_ms) for r in rows if r.id not in seen]

    def _run(self, work: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return work(conn)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(f"PostgreSQL unavailable: {e.orig or e}") from e


def jsonable(value: Any) -> Any:
    """A float that JSON can carry (NaN and infinities become None)."""
    import math

    return None if isinstance(value, float) and not math.isfinite(value) else value
