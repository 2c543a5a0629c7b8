"""`vsmmon.aggregate.collection`: fold one stored collection into its 5 min rollups (closed windows into 1 h / 24 h)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import Celery

from vsmmon.errors import NotFound, TransientError
from workers import names
from workers.context import VsmTask


def register(app: Celery) -> None:
    @app.task(
        name=names.AGGREGATE_COLLECTION, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None,
    )  # fmt: skip
    def collection(self: VsmTask, collection_id: str) -> dict[str, Any]:
        ctx, cid = self.ctx, UUID(collection_id)
        try:
            staged = ctx.staging.get(cid)
        except NotFound:
            return {"collection_id": collection_id, "merged": False}  # aggregated and dropped before
        merged = ctx.store.aggregate_collection(cid, ctx.clock())  # its open 5 min rollups, folds of closed ones
        if merged:
            ctx.realtime.write(staged)
        ctx.staging.delete(cid)
        return {"collection_id": collection_id, "merged": merged, "samples": staged.sample_count}
