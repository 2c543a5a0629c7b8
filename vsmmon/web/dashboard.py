"""The live dashboard: the page, its static files, its SSE stream and the compact reads it draws from.

The page is plain HTML and JavaScript (`static/`, uPlot vendored for the charts): no build step, no inline
script or style (the Content-Security-Policy allows neither). It loads the latest state through the API,
then follows `GET /api/v1/events` (`stream`: server-sent events fed by Redis pub/sub through one
`EventHub` per process).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vsmmon.collect.registry import AgentRecord, visible
from vsmmon.models import AgentKind, AgentStatus
from vsmmon.web import series as s
from vsmmon.web import stream
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.events import EventHub
from vsmmon.web.resources import Resources, resources
from vsmmon.web.schemas import PLAIN

STATIC_DIR = Path(__file__).parent / "static"
GRID_METRICS = ("cpu_percent", "rss_bytes", "active", "concurrency", "messages", "consumers")
QUEUE_LINES = 8

page_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/v1", tags=["dashboard"])
Res = Annotated[Resources, Depends(resources)]


def install(app: FastAPI) -> None:
    """The page, its files and its API on `app`."""
    app.include_router(page_router)
    app.include_router(router)
    app.include_router(stream.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


async def close(app: FastAPI) -> None:
    """End every browser's stream and the Redis subscription (at shutdown)."""
    hub: EventHub | None = getattr(app.state, "events", None)
    if hub is not None:
        await hub.close()


@page_router.get("/")
@page_router.get("/dashboard")
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@page_router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The page's icon where browsers (and bookmarks, and tabs of other pages of the service) look for it."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})  # fmt: skip


@router.get("/dashboard/agents", dependencies=[Depends(require_token_for_reads)], response_class=Response)
async def dashboard_agents(res: Res) -> Response:
    """Every agent of the live views with its status, the latest health score and a few figures."""
    # built and encoded off the event loop: with 1,000 agents this is the page's largest answer
    return Response(await run_in_threadpool(agents_body, res, datetime.now(UTC)), media_type="application/json")


def agents_body(res: Resources, now: datetime) -> bytes:
    agents = res.store.grid(GRID_METRICS)
    at, scores = res.store.agent_scores(now - timedelta(hours=1))
    rows = []
    for a in agents:
        record = AgentRecord(a.agent_id, a.kind, a.last_seen, a.interval_s, a.status, a.status_since)
        if not visible(record, now, res.settings.purge_after_s):
            continue
        score = scores.get(a.agent_id)
        rows.append(
            {
                "id": a.agent_id,
                "kind": a.kind,
                "host": a.host,
                "status": a.status,
                "last_seen": a.last_seen.isoformat(),
                "score": None if score is None else score.score,
                "state": None if score is None else score.state,
                "factors": {} if score is None else dict(score.factors),
                "metrics": dict(a.metrics),
            }
        )
    offline = sum(1 for r in rows if r["status"] == AgentStatus.OFFLINE.value)
    body = {"at": None if at is None else at.isoformat(), "agents": rows, "offline": offline}
    return json.dumps(body, separators=(",", ":")).encode()


@router.get("/dashboard/series", dependencies=[Depends(require_token_for_reads)], response_class=Response)
async def dashboard_series(
    res: Res,
    chart: s.Chart,
    window_s: Annotated[int, Query(description="300, 3600 or 86400")] = 300,
    agent: Annotated[str | None, Query(description="the agent (every queue for `queue`)"), PLAIN] = None,
) -> Response:
    """One chart's lines over 5 min / 1 h (real-time window) or 24 h (5 min rollups), with its forecast."""
    if window_s not in s.WINDOWS_S:
        raise HTTPException(422, f"window_s must be one of {', '.join(map(str, s.WINDOWS_S))}")
    if chart is not s.Chart.QUEUE and not agent:
        raise HTTPException(422, "agent is required for this chart")
    body = await run_in_threadpool(build_chart, res, chart, window_s, agent, datetime.now(UTC))
    return Response(await run_in_threadpool(json.dumps, body), media_type="application/json")


def build_chart(res: Resources, chart: s.Chart, window_s: int, agent: str | None, now: datetime) -> dict[str, Any]:
    recipe = s.RECIPES[chart]
    start_s = now.timestamp() - window_s
    if chart is s.Chart.QUEUE:
        queues = [a for a in res.store.agents() if a.kind is AgentKind.QUEUE and a.live]
        queues.sort(key=lambda a: -a.metrics.get("messages", 0.0))
        lines = {q.agent_id.removeprefix("queue:"): read(res, q.agent_id, "messages", window_s, now, False)
                 for q in queues[:QUEUE_LINES]}  # fmt: skip
        forecast = None
    else:
        assert agent is not None
        counter = recipe.combine == "rate"
        parts = {m: read(res, agent, m, window_s, now, counter) for m in recipe.metrics}
        lines = s.combine(recipe, parts)
        forecast = forecast_of(res, agent, recipe, window_s)
    return {
        "chart": chart.value,
        "agent": agent,
        "window_s": window_s,
        "unit": recipe.unit,
        "lines": [{"name": name, "points": s.since(points, start_s)} for name, points in lines.items()],
        "forecast": forecast,
    }


def read(res: Resources, agent: str, metric: str, window_s: int, now: datetime, counter: bool) -> s.Points:  # noqa: PLR0917
    if window_s <= s.REALTIME_LIMIT_S:
        return [(p.ts.timestamp(), p.value) for p in res.realtime.read(agent, metric, now, window_s)]
    return s.rollup_points(res.store.rollups(agent, metric, s.ROLLUP_WINDOW_S), counter)


def forecast_of(res: Resources, agent: str, recipe: s.Recipe, window_s: int) -> dict[str, Any] | None:
    """The stored forecast (with its interval) or a Holt projection, as far ahead as the chart looks back."""
    if recipe.forecast_metric:
        found = res.store.latest_forecast(agent, recipe.forecast_metric)
        if found is None:
            return None
        at, points = found.at, found.points
        base = at.timestamp()
        shown = [p for p in points if p.horizon_s <= window_s] or points[:1]
        return {
            "kind": "forecast",
            "metric": recipe.forecast_metric,
            "made_at": at.isoformat(),
            "points": [[base + p.horizon_s, p.value, p.lower, p.upper] for p in shown],
        }
    if recipe.trend_metric:
        trend = res.store.latest_trend(agent, recipe.trend_metric, s.ROLLUP_WINDOW_S)
        if trend is None or trend.level is None or trend.trend_per_s is None:
            return None
        projected = s.projection(trend.at.timestamp(), trend.level, trend.trend_per_s, min(window_s, 900))
        return {
            "kind": "holt",
            "metric": recipe.trend_metric,
            "made_at": trend.at.isoformat(),
            "points": [[t, v, None, None] for t, v in projected],
        }
    return None
