"""Ad-hoc health checks: run a fresh assessment through the pipeline and return it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from vsmmon import names
from vsmmon.web.auth import require_token, require_token_for_reads
from vsmmon.web.resources import Resources, resources

HEALTH_CHECK_TASK = names.HEALTH_CHECK
router = APIRouter(prefix="/api/v1/health-checks", tags=["health checks"])


class TaskGateway(Protocol):
    """Sends a pipeline task by name and reads its result (the Celery side lives in `workers/`)."""

    def send(self, name: str, args: tuple[Any, ...] = ()) -> str: ...

    def result(self, task_id: str, timeout_s: float | None) -> tuple[str, Any]: ...


def gateway(request: Request) -> TaskGateway:
    found: TaskGateway | None = getattr(request.app.state, "gateway", None)
    if found is None:
        raise HTTPException(503, "this HTTP service has no connection to the pipeline's broker")
    return found


Gateway = Annotated[TaskGateway, Depends(gateway)]
Res = Annotated[Resources, Depends(resources)]


latest_router = APIRouter(prefix="/api/v1", tags=["health checks"])


@latest_router.get("/health", dependencies=[Depends(require_token_for_reads)])
async def latest_health(res: Res) -> dict[str, Any]:
    """The last scheduled assessment: viability, S1-S5 with their factors and inputs."""
    since = datetime.now(UTC) - timedelta(hours=1)
    rows = await run_in_threadpool(res.store.health_history, "viability", "viability", since)
    if not rows:
        raise HTTPException(404, "no health assessment in the last hour")
    return dict(rows[-1].inputs)


@router.post("", status_code=202, dependencies=[Depends(require_token)])
async def start_check(
    gw: Gateway,
    res: Res,
    wait: Annotated[bool, Query(description="wait for the result and return it")] = False,
    timeout_s: Annotated[float, Query(gt=0, le=60)] = 10.0,
) -> dict[str, Any]:
    task_id = await run_in_threadpool(gw.send, HEALTH_CHECK_TASK)
    key = names.HEALTH_CHECK_SENT_KEY.format(id=task_id)
    await run_in_threadpool(res.realtime.client.set, key, "1", ex=names.HEALTH_CHECK_SENT_TTL_S)
    if not wait:
        return {"id": task_id, "state": "PENDING"}
    state, result = await run_in_threadpool(gw.result, task_id, timeout_s)
    if state == "PENDING":
        raise HTTPException(504, f"health check {task_id} did not finish within {timeout_s:g} s")
    return {"id": task_id, "state": state, "result": result}


@router.get("", dependencies=[Depends(require_token_for_reads)])
async def list_checks(
    res: Res, since_s: Annotated[float, Query(gt=0, le=7 * 86400, description="how far back, in seconds")] = 86400.0
) -> list[dict[str, Any]]:
    """The ad-hoc checks stored since `since_s` ago, newest first: id, time, viability and its state."""
    found = await run_in_threadpool(res.store.health_checks, datetime.now(UTC) - timedelta(seconds=since_s))
    return [{"id": str(r.check_id), "at": r.at.isoformat(), "viability": r.score, "state": r.status} for r in found]


@router.get("/{check_id}", dependencies=[Depends(require_token_for_reads)])
async def get_check(check_id: str, gw: Gateway, res: Res) -> dict[str, Any]:
    """A check's result while the broker's result backend holds it, then its stored assessment; 404 for an id
    no check had (malformed, never sent, or past retention)."""
    try:
        known = uuid.UUID(check_id)
    except ValueError:
        raise HTTPException(404, f"no health check {check_id!r}: not a check id") from None
    state, result = await run_in_threadpool(gw.result, str(known), None)
    if state != "PENDING":
        return {"id": str(known), "state": state, "result": result}
    stored = await run_in_threadpool(res.store.health_check, known)
    viability = next((r for r in stored if r.scope == "viability"), None)
    if viability is not None:
        return {"id": str(known), "state": "SUCCESS", "at": viability.at.isoformat(), "result": dict(viability.inputs)}
    sent = await run_in_threadpool(res.realtime.client.exists, names.HEALTH_CHECK_SENT_KEY.format(id=known))
    if not sent:
        raise HTTPException(404, f"no health check {check_id}")
    return {"id": str(known), "state": "PENDING", "result": None}
