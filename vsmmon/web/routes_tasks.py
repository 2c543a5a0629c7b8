"""Task-level insight over HTTP: every task name across the live workers, and one name's last hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from vsmmon.tasks import reads
from vsmmon.tasks.table import WINDOW_S
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.resources import Resources, resources

router = APIRouter(prefix="/api/v1", tags=["tasks"])
Res = Annotated[Resources, Depends(resources)]


@router.get("/tasks", dependencies=[Depends(require_token_for_reads)])
async def list_tasks(
    res: Res,
    q: Annotated[str, Query(max_length=120, description="only task names holding this text (any case)")] = "",
    sort: Annotated[
        Literal["rate", "failures", "p95", "name"], Query(description="busiest, failing or slowest first, or by name")
    ] = "rate",
) -> dict[str, Any]:
    """One row per task name: rate, failure ratio, retries (last 5 min), percentiles, workers, newest failure."""
    now = datetime.now(UTC)
    rows = await run_in_threadpool(reads.table, res.store, res.realtime, now, q, sort)
    return {"at": now.isoformat(), "window_s": WINDOW_S, "tasks": rows, "count": len(rows)}


@router.get("/tasks/{name:path}", dependencies=[Depends(require_token_for_reads)])
async def get_task(name: str, res: Res) -> dict[str, Any]:
    """One task name: its row, its last failures (newest first) and its last hour's charts."""
    found = await run_in_threadpool(reads.detail, res.store, res.realtime, name, datetime.now(UTC))
    if found is None:
        raise HTTPException(404, f"no live worker reports the task {name[:120]!r}")
    return found
