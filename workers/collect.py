"""`vsmmon.collect.run`: ask every worker for its metrics, stage the collection, chain the rest."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from celery import Celery, chain

from vsmmon.collector import collect
from workers import names
from workers.context import VsmTask

DISCOVERY_EVERY_S = 30.0


def broadcast(app: Celery, command: str, *, timeout_s: float, limit: int | None) -> dict[str, Any]:
    """Replies to an inspect command, keyed by worker hostname; returns early once `limit` answered."""
    replies = app.control.broadcast(command, reply=True, timeout=timeout_s, limit=limit) or []
    merged: dict[str, Any] = {}
    for reply in replies:
        merged.update(reply)
    return merged


def register(app: Celery) -> None:
    @app.task(name=names.COLLECT_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, settings = self.ctx, self.ctx.settings
        now, started = ctx.clock(), time.monotonic()
        expected = ctx.staging.workers_seen_since(now - timedelta(seconds=2 * settings.collect_interval_s))
        discover = ctx.staging.claim_discovery(DISCOVERY_EVERY_S) or not expected
        replies = broadcast(
            self.app,
            "vsm_metrics",
            timeout_s=settings.collect_timeout_s,
            limit=None if discover else len(expected),
        )
        collection = collect(
            collection_id=uuid.uuid4(),
            now=now,
            duration_ms=(time.monotonic() - started) * 1000,
            host_reports=[ctx.host_probe.read()],
            worker_replies=replies,
            expected_workers=expected,
            pushed_reports=ctx.staging.drain_pushed(),
            interval_s=settings.collect_interval_s,
        )
        ctx.staging.put(collection)
        ctx.staging.mark_seen(replies, now)
        cid = str(collection.id)
        chain(
            self.app.signature(names.PERSIST_COLLECTION, args=(cid,), immutable=True),
            self.app.signature(names.AGGREGATE_COLLECTION, args=(cid,), immutable=True),
        ).apply_async()
        return {
            "collection_id": cid,
            "agents": collection.agent_count,
            "samples": collection.sample_count,
            "unreachable": list(collection.unreachable),
            "duration_ms": round(collection.duration_ms, 1),
        }
