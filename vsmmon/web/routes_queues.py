"""The fleet's queues over HTTP: every queue with its length, consumers, oldest message and drain, and one queue's
last hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from vsmmon.tasks import reads
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.resources import Resources, resources

router = APIRouter(prefix="/api/v1", tags=["queues"])
Res = Annotated[Resources, Depends(resources)]


@router.get("/queues", dependencies=[Depends(require_token_for_reads)])
async def list_queues(res: Res) -> dict[str, Any]:
    """Every live queue, longest first: messages, consumers, oldest message's age, arrivals and drain a second
    (last 5 min), drain time and state (empty, draining, holding, growing, stalled,
    unknown, unreadable)."""
    now = datetime.now(UTC)
    rows = await run_in_threadpool(reads.queues, res.store, res.realtime, res.settings, now)
    return {"at": now.isoformat(), "queues": rows, "count": len(rows)}


@router.get("/queues/{name:path}", dependencies=[Depends(require_token_for_reads)])
async def get_queue(name: str, res: Res) -> dict[str, Any]:
    """One queue: its row and its last hour (messages, oldest message's age, consumers at each collection)."""
    found = await run_in_threadpool(reads.queue_detail, res.store, res.realtime, res.settings, name, datetime.now(UTC))
    if found is None:
        raise HTTPException(404, f"no live queue {name[:120]!r}")
    return found
