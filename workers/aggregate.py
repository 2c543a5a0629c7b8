"""`vsmmon.aggregate.collection`: count one stored collection in the rollups and the real-time window;
`vsmmon.aggregate.close`: store the 5 min windows that ended (and the hours and days that closes)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from celery import Celery

from vsmmon import names
from vsmmon.codec import screen
from vsmmon.errors import NotFound, TransientError
from vsmmon.workers.context import VsmTask


def register(app: Celery) -> None:
    @app.task(
        name=names.AGGREGATE_COLLECTION, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None,
    )  # fmt: skip
    def collection(self: VsmTask, collection_id: str) -> dict[str, Any]:
        ctx, cid = self.ctx, UUID(collection_id)
        try:
            staged, _ = screen(ctx.staging.get(cid))  # as persist stored it (persist counted what it left out)
        except NotFound:
            return {"collection_id": collection_id, "merged": False}  # aggregated and dropped before
        merged = ctx.store.aggregate_collection(cid, ctx.clock())  # a claim: its window is computed when it closes
        if merged:
            ctx.realtime.write(staged)
        due = ctx.store.close_due(staged.started_at)
        if due is not None:  # off the collection's path: closing a window reads its ~1 M samples
            close.apply_async((due.isoformat(),))
        ctx.staging.delete(cid)
        return {"collection_id": collection_id, "merged": merged, "samples": staged.sample_count,
                "close_due": due.isoformat() if due else None}  # fmt: skip

    @app.task(
        name=names.AGGREGATE_CLOSE, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None,
    )  # fmt: skip
    def close(self: VsmTask, cutoff: str) -> dict[str, Any]:
        closed = self.ctx.store.close_windows(datetime.fromisoformat(cutoff), self.ctx.clock())
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(closed).items()}
