"""HTTP app factory: the app is assembled from an explicit list of routes and the resources it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vsmmon import __version__
from vsmmon.codec import summary_to_dict
from vsmmon.config import Settings
from vsmmon.errors import NotFound, StoreUnavailable
from vsmmon.storage.base import Store


@dataclass
class Resources:
    """What the routes use; built when the app starts, released when it stops."""

    store: Store
    redis: redis.Redis


def default_resources(settings: Settings) -> Resources:
    from vsmmon.storage.postgres import PostgresStore, create_engine

    return Resources(
        store=PostgresStore(create_engine(settings.sqlalchemy_url(), pool_size=4)),
        redis=redis.Redis.from_url(settings.require("redis_url"), socket_timeout=2, socket_connect_timeout=2),
    )


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> JSONResponse:
    resources = _resources(request)
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(resources.store.ping)
        checks["database"] = "ok"
    except StoreUnavailable as e:
        checks["database"] = str(e)
    try:
        await run_in_threadpool(resources.redis.ping)
        checks["redis"] = "ok"
    except redis.RedisError as e:
        checks["redis"] = f"Redis unavailable: {e}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def latest_collection(request: Request) -> JSONResponse:
    summary = await run_in_threadpool(_resources(request).store.latest_collection)
    if summary is None:
        return JSONResponse({"detail": "no collection stored yet"}, status_code=404)
    return JSONResponse(summary_to_dict(summary))


async def get_collection(request: Request) -> JSONResponse:
    from uuid import UUID

    raw = request.path_params["collection_id"]
    try:
        cid = UUID(raw)
    except ValueError:
        return JSONResponse({"detail": f"collection_id: not a UUID: {raw!r}"}, status_code=422)
    try:
        summary = await run_in_threadpool(_resources(request).store.get_collection, cid)
    except NotFound as e:
        return JSONResponse({"detail": str(e)}, status_code=404)
    return JSONResponse(summary_to_dict(summary))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


ROUTES = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/api/v1/collections/latest", latest_collection),
    Route("/api/v1/collections/{collection_id}", get_collection),
]


def create_app(
    settings: Settings, resources: Callable[[Settings], Resources] = default_resources
) -> Starlette:
    """The HTTP app; `resources` builds the store and Redis client at start-up (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        built = resources(settings)
        app.state.resources = built
        try:
            yield {}
        finally:
            built.redis.close()
            engine = getattr(built.store, "engine", None)
            if engine is not None:
                engine.dispose()

    return Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers={StoreUnavailable: _unavailable})
