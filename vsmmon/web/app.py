"""HTTP app factory: routers listed explicitly, resources built at start-up and passed in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from vsmmon import __version__
from vsmmon.collect.selfreport import RequestStats, SelfReporter
from vsmmon.config import Settings
from vsmmon.errors import BufferUnavailable, StoreUnavailable
from vsmmon.web import (
    dashboard,
    routes_agents,
    routes_alerts,
    routes_analysis,
    routes_collections,
    routes_health,
    routes_health_checks,
    routes_metrics,
    routes_queues,
    routes_tasks,
)
from vsmmon.web.hardening import SecurityHeaders, TokenFirst, TrustedHosts, allowed_hosts
from vsmmon.web.limits import BodySizeLimit, RequestTiming
from vsmmon.web.resources import Resources, default_resources
from vsmmon.web.routes_health_checks import TaskGateway

ROUTERS = (
    routes_health.router,
    routes_collections.router,
    routes_agents.router,
    routes_health_checks.router,
    routes_health_checks.latest_router,
    routes_analysis.router,
    routes_alerts.router,
    routes_metrics.router,
    routes_tasks.router,
    routes_queues.router,
)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; the offending input is not echoed (it may be huge, or NaN, not JSON)."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _docs_page() -> FileResponse:
    """The API's operations, listed from /openapi.json by the page's own script (no CDN, no inline code)."""
    return FileResponse(dashboard.STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})


def create_app(
    settings: Settings,
    build: Callable[[Settings], Resources] = default_resources,
    *,
    report_self: bool = True,
    gateway: TaskGateway | None = None,
) -> FastAPI:
    """The HTTP app; `build` makes the store and Redis client at start-up (tests pass their own).

    With `report_self`, the service pushes its own figures (request rate, latency, process) every
    collection interval, as the pipeline agent `vsmmon-http@HOST`.
    """
    stats = RequestStats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.resources = build(settings)
        reporter = None
        if report_self:
            staging = app.state.resources.staging
            reporter = SelfReporter("http", staging, settings.collect_interval_s, stats.metrics).start()
        try:
            yield
        finally:
            if reporter is not None:
                reporter.stop()
            await dashboard.close(app)
            app.state.resources.close()

    # no redirect of a trailing slash: an API path with one is not found (404), not a 307 to another URL
    # FastAPI's /docs and /redoc load their scripts from a CDN into the origin that holds the token: off;
    # VSMMON_HTTP_DOCS serves a page of our own at /docs instead (/openapi.json is served either way)
    app = FastAPI(
        title="vsmmon", version=__version__, lifespan=lifespan, redirect_slashes=False, docs_url=None, redoc_url=None
    )
    if settings.http_docs:
        app.add_api_route("/docs", _docs_page, include_in_schema=False)
    app.state.gateway = gateway
    for router in ROUTERS:
        app.include_router(router)
    dashboard.install(app)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(BufferUnavailable, _unavailable)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TokenFirst, settings=settings)  # outside the body limit: a wrong token is a 401 first
    app.add_middleware(TrustedHosts, allowed=allowed_hosts(settings))
    app.add_middleware(RequestTiming, stats=stats)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, the other middleware's included
    return app
