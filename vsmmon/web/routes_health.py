"""`/healthz` (the process is up) and `/readyz` (the database and Redis answer)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vsmmon import __version__
from vsmmon.errors import StoreUnavailable
from vsmmon.web.resources import Resources, resources

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def readyz(res: Resources = Depends(resources)) -> JSONResponse:  # noqa: B008
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(res.store.ping)
        checks["database"] = "ok"
    except StoreUnavailable as e:
        checks["database"] = str(e)
    try:
        await run_in_threadpool(res.redis.ping)
        checks["redis"] = "ok"
    except redis.RedisError as e:
        checks["redis"] = f"Redis unavailable: {e}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
