"""Read the persisted collections."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from vsmmon.codec import summary_to_dict
from vsmmon.errors import NotFound
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.resources import Resources, resources

router = APIRouter(prefix="/api/v1/collections", tags=["collections"], dependencies=[Depends(require_token_for_reads)])


@router.get("/latest")
async def latest_collection(res: Resources = Depends(resources)) -> dict[str, Any]:  # noqa: B008
    summary = await run_in_threadpool(res.store.latest_collection)
    if summary is None:
        raise HTTPException(404, "no collection stored yet")
    return summary_to_dict(summary)


@router.get("/{collection_id}")
async def get_collection(collection_id: UUID, res: Resources = Depends(resources)) -> dict[str, Any]:  # noqa: B008
    try:
        summary = await run_in_threadpool(res.store.get_collection, collection_id)
    except NotFound as e:
        raise HTTPException(404, str(e)) from e
    return summary_to_dict(summary)
