"""The dashboard's and `/metrics`' reads in SQL, each on a connection `PostgresStore` opens; tuned for a
fleet of 1,000 agents (only the figures shown leave the database)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vsmmon.models import AgentInfo, HealthRow
from vsmmon.store._tables import agents as agent_table
from vsmmon.store._tables import collections, forecasts, health_assessments, trends
from vsmmon.store.base import AgentScore, CollectionDuration, ForecastPoint, GridRow, StoredForecast, StoredTrend

# the factors' scores are picked out in the database: the inputs they came from are not needed here
_AGENT_SCORES = sa.text(
    "SELECT subject, score, status, (SELECT jsonb_object_agg(f->>'name', f->'score') "
    "FROM jsonb_array_elements(inputs->'factors') AS f) AS factors "
    "FROM health_assessments WHERE scope = 'agent' AND at = :at AND check_id IS NULL"
)


def agent_scores(conn: Connection, since: datetime) -> tuple[datetime | None, dict[str, AgentScore]]:
    h = health_assessments.c
    latest = sa.select(sa.func.max(h.at)).where(h.scope == "viability", h.at >= since, h.check_id.is_(None))
    at = conn.execute(latest).scalar()
    if at is None:
        return None, {}
    rows = conn.execute(_AGENT_SCORES, {"at": at}).all()
    return at, {r.subject: AgentScore(r.score, r.status, dict(r.factors or {})) for r in rows}


def grid(conn: Connection, metrics: Sequence[str]) -> list[GridRow]:
    """Only the named metrics leave the database, not each agent's whole latest report."""
    picked = ", ".join(f"'{m}', last_metrics->'{m}'" for m in metrics if m.replace("_", "").isalnum())
    query = sa.text(
        "SELECT id, kind, host, status, status_since, last_seen, interval_s, "
        f"jsonb_strip_nulls(jsonb_build_object({picked})) AS metrics FROM agents ORDER BY id"
    )
    return [
        GridRow(r.id, r.kind, r.host, r.status, r.status_since, r.last_seen, r.interval_s, dict(r.metrics))
        for r in conn.execute(query).all()
    ]


def latest_forecast(conn: Connection, agent_id: str, metric: str) -> StoredForecast | None:
    f = forecasts.c
    latest = sa.select(sa.func.max(f.at)).where(f.agent_id == agent_id, f.metric == metric).scalar_subquery()
    query = (
        sa.select(f.at, f.horizon_s, f.value, f.lower, f.upper)
        .where(f.agent_id == agent_id, f.metric == metric, f.at == latest)
        .order_by(f.horizon_s)
    )
    rows = conn.execute(query).all()
    if not rows:
        return None
    return StoredForecast(rows[0].at, tuple(ForecastPoint(r.horizon_s, r.value, r.lower, r.upper) for r in rows))


def latest_trend(conn: Connection, agent_id: str, metric: str, window_s: int) -> StoredTrend | None:
    t = trends.c
    query = (
        sa.select(t.at, t.level, t.trend, t.anomaly, t.change_at)
        .where(t.agent_id == agent_id, t.metric == metric, t.window_s == window_s)
        .order_by(t.at.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else StoredTrend(row.at, row.level, row.trend, row.anomaly, row.change_at)


def collection_durations(conn: Connection, since: datetime | None) -> list[CollectionDuration]:
    c = collections.c
    query = sa.select(c.id, c.persisted_at, c.duration_ms).order_by(c.persisted_at)
    if since is not None:
        query = query.where(c.persisted_at >= since)
    return [CollectionDuration(r.id, r.persisted_at, r.duration_ms) for r in conn.execute(query).all()]


def agents(conn: Connection, metrics: Sequence[str] | None = None) -> list[AgentInfo]:
    """Every agent; with `metrics`, only those of its latest metrics leave the database."""
    a = agent_table.c
    if metrics is None:
        query = sa.select(agent_table)
    else:
        picked = sa.func.jsonb_build_object(*(x for m in metrics for x in (sa.literal(m), a.last_metrics[m])))
        latest = sa.func.jsonb_strip_nulls(picked).label("last_metrics")
        query = sa.select(*(c for c in agent_table.c if c.name != "last_metrics"), latest)
    rows = conn.execute(query.order_by(a.id)).all()
    return [
        AgentInfo(r.id, r.kind, r.host, r.version, r.status, r.status_since, r.first_seen, r.last_seen, r.interval_s,
                  r.config_hash, tuple(r.queues), _interned(r.last_metrics), r.last_errors)
        for r in rows
    ]  # fmt: skip


def _interned(metrics: dict[str, float]) -> dict[str, float]:
    """An agent's latest metrics with their names shared: each row's JSON is decoded apart, so 10,000 agents
    otherwise held 10,000 copies of every metric name (~5 MB in the health and analysis processes)."""
    return {sys.intern(k): v for k, v in metrics.items()}


def health_history(conn: Connection, scope: str, subject: str, since: datetime) -> list[HealthRow]:
    """The scheduled assessments of one subject; ad-hoc checks (a check id) are kept apart."""
    h = health_assessments.c
    query = sa.select(health_assessments).where(
        h.scope == scope, h.subject == subject, h.at >= since, h.check_id.is_(None)
    )
    return _health_rows(conn, query.order_by(h.at))


def health_checks(conn: Connection, since: datetime) -> list[HealthRow]:
    """Each ad-hoc check's viability row, newest first."""
    h = health_assessments.c
    query = sa.select(health_assessments).where(h.scope == "viability", h.at >= since, h.check_id.is_not(None))
    return _health_rows(conn, query.order_by(h.at.desc()))


def health_check(conn: Connection, check_id: UUID) -> list[HealthRow]:
    h = health_assessments.c
    query = sa.select(health_assessments).where(h.check_id == check_id)
    return _health_rows(conn, query.order_by(h.scope, h.subject))


def _health_rows(conn: Connection, query: sa.Select[Any]) -> list[HealthRow]:
    return [HealthRow(r.at, r.scope, r.subject, r.score, r.status, r.inputs, r.check_id)
            for r in conn.execute(query).all()]  # fmt: skip
