"""`vsmmon.aggregate.collection`: count one stored collection in the rollups (persist wrote its real-time window);
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

CLOSE_CLAIM_S = 600.0
"""How long the claim of a close's cutoff lasts (two windows): past it, a late collection sends its close again."""


def register(app: Celery) -> None:
    @app.task(
        name=names.AGGREGATE_COLLECTION, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None,
    )  # fmt: skip
    def collection(self: VsmTask, collection_id: str, started_at: str | None = None) -> dict[str, Any]:
        """`started_at` from the chain (`collect.stage`): the staged collection is not read again, persist wrote
        its real-time window (decoding it twice cost ~0.1 s a shard of 5,000 agents). Without it (a message
        from before), the staged collection is read as persist stored it, for its start and its window."""
        ctx, cid = self.ctx, UUID(collection_id)
        if started_at is None:
            try:
                staged, _ = screen(ctx.staging.get(cid))  # as persist stored it (persist counted what it left out)
            except NotFound:
                return {"collection_id": collection_id, "merged": False}  # aggregated and dropped before
            start = staged.started_at
        else:
            staged, start = None, datetime.fromisoformat(started_at)
        try:
            merged = ctx.store.aggregate_collection(cid, ctx.clock())  # a claim: its window is computed when it closes
        except NotFound:
            return {"collection_id": collection_id, "merged": False}  # never stored (persist found it lost)
        if merged and staged is not None:
            ctx.realtime.write(staged)
        due = ctx.store.close_due(start)
        # off the collection's path: closing a window reads its ~1 M samples; sent once per cutoff (a close takes
        # every claimed collection before it, so one that comes later is merged by it or by the next window's)
        sent = False
        if due is not None and (sent := ctx.staging.claim_close(due, CLOSE_CLAIM_S)):
            close.apply_async((due.isoformat(),))
        ctx.staging.delete(cid)
        found = {"collection_id": collection_id, "merged": merged, "close_due": due.isoformat() if due else None,
                 "close_sent": sent}  # fmt: skip
        return {**found, "samples": staged.sample_count} if staged is not None else found

    @app.task(
        name=names.AGGREGATE_CLOSE, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None,
    )  # fmt: skip
    def close(self: VsmTask, cutoff: str) -> dict[str, Any]:
        closed = self.ctx.store.close_windows(datetime.fromisoformat(cutoff), self.ctx.clock())
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(closed).items()}
