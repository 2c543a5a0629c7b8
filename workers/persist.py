"""`vsmmon.persist.collection`: move one staged collection into PostgreSQL, once."""

from __future__ import annotations

import logging
import math
from typing import Any
from uuid import UUID

import redis
from celery import Celery

from vsmmon import names
from vsmmon.codec import screen
from vsmmon.collect.registry import evaluate
from vsmmon.collect.shards import owner
from vsmmon.errors import BufferUnavailable, NotFound, TransientError
from vsmmon.models import AgentStatus
from vsmmon.workers.context import VsmTask, WorkerContext

log = logging.getLogger(__name__)
RETRY_MAX_S = 20  # while the database is down, each staged collection is retried at least this often


def assess_now(app: Celery, ctx: WorkerContext) -> None:
    """An agent was just lost: assess health now rather than at the next scheduled check, so an outage is
    alerted within the collections that prove it; at most one such assessment per collection interval."""
    settings = ctx.settings
    ttl = max(1, math.ceil(settings.collect_interval_s))
    if ctx.realtime.client.set(names.HEALTH_NOW_KEY, "1", nx=True, ex=ttl):
        app.send_task(names.HEALTH_ASSESS, expires=settings.health_interval_s)


def register(app: Celery) -> None:
    @app.task(
        name=names.PERSIST_COLLECTION, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=RETRY_MAX_S, max_retries=None,
    )  # fmt: skip
    def collection(self: VsmTask, collection_id: str) -> dict[str, Any]:
        ctx, cid = self.ctx, UUID(collection_id)
        try:
            staged, refused = screen(ctx.staging.get(cid))  # a NUL in one report must not fail everyone's write
        except NotFound:
            try:
                ctx.store.get_collection(cid)  # stored by an earlier run: nothing to do
            except NotFound:
                lost = ctx.staging.count_lost()
                log.error(
                    "collection %s expired from the staging buffer before the database took it "
                    "(VSMMON_BUFFER_HORIZON_S=%s); %d lost so far",
                    collection_id, ctx.settings.buffer_horizon_s, lost,
                )  # fmt: skip
                return {"collection_id": collection_id, "stored": False, "lost": True}
            return {"collection_id": collection_id, "stored": False}
        stored = ctx.store.save_collection(staged, ctx.clock())
        try:  # here, decoded once: a slot rewritten by a retry holds the same values
            ctx.realtime.write(staged)
        except redis.RedisError as e:  # retried as any Redis fault: the collection is stored, a retry adds nothing
            raise BufferUnavailable(f"Redis unavailable writing the real-time window: {e}") from e
        if refused and stored:  # counted once: a retry that finds the collection stored counts nothing
            total = ctx.staging.count_refused(len(refused))
            log.warning("collection %s: %d parts with control characters left out (%d so far): %s",
                        collection_id, len(refused), total, "; ".join(refused[:5]))  # fmt: skip
        ctx.store.update_registry(staged)  # idempotent: also right when a retry finds the samples stored
        latest = ctx.store.latest_collection()
        judged_at = max(staged.started_at, latest.started_at) if latest else staged.started_at
        gone = set(staged.stopped)  # each shard judges its own agents (collect/shards.py), and who said goodbye
        records = [r for r in ctx.store.agent_records()
                   if owner(r.kind, r.agent_id, staged.shards) == staged.shard or r.agent_id in gone]  # fmt: skip
        transitions = evaluate(records, judged_at, staged.stopped)
        changed = ctx.store.apply_transitions(transitions)
        if changed and any(t.to_status is AgentStatus.OFFLINE for t in transitions):
            assess_now(self.app, ctx)
        return {
            "collection_id": collection_id,
            "stored": stored,
            "samples": staged.sample_count,
            "status_changes": changed,
            "refused": len(refused),
        }
