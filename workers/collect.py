"""`vsmmon.collect.run`: ask every worker for its metrics, stage the collection, chain the rest."""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, chain

from vsmmon import names
from vsmmon.collect.broker import QueueStats
from vsmmon.collect.collector import collect, consumed_queues, stopping
from vsmmon.collect.screen import screen
from vsmmon.models import AgentKind, AgentReport
from vsmmon.tasks.failures import failures_in
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext
from vsmmon.workers.fleet import FleetPoller

DISCOVERY_EVERY_S = 30.0
log = logging.getLogger(__name__)


def register(app: Celery) -> None:
    pollers: dict[int, FleetPoller] = {}  # one per process, built on first use

    @app.task(name=names.COLLECT_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, settings = self.ctx, self.ctx.settings
        poller = pollers.get(os.getpid()) or pollers.setdefault(os.getpid(), FleetPoller.for_settings(app, settings))
        now, started = ctx.clock(), time.monotonic()
        expected = ctx.staging.workers_seen_since(now - timedelta(seconds=2 * settings.collect_interval_s))
        discover = ctx.staging.claim_discovery(DISCOVERY_EVERY_S, now) or not expected
        replies = poller.ask("vsm_metrics", sorted(expected), timeout_s=settings.collect_timeout_s, everyone=discover)
        duration_ms = (time.monotonic() - started) * 1000
        stopped = poller.goodbyes()
        brokers, queue_stats, queue_errors = read_brokers(ctx, consumed_queues(replies))
        collection = collect(
            collection_id=uuid.uuid4(),
            now=now,
            duration_ms=duration_ms,
            host_reports=brokers,  # hosts come in the replies: each host's elected worker adds its host
            worker_replies=replies,
            expected_workers=expected,
            pushed_reports=ctx.staging.drain_pushed(),
            queue_stats=queue_stats,
            queue_errors=queue_errors,
            interval_s=settings.collect_interval_s,
            stopped=stopped,
        )
        if pain := screen(collection):  # algedonic conditions go to the alert manager at once, not in 30 s
            report_signals(self.app, "screen", pain, ttl_s=3 * settings.collect_interval_s)
        ctx.staging.put(collection)
        ctx.staging.mark_seen(set(replies) - stopping(replies), now)  # a stopping worker is not asked by name again
        cid = str(collection.id)
        chain(
            self.app.signature(names.PERSIST_COLLECTION, args=(cid,), immutable=True),
            self.app.signature(names.AGGREGATE_COLLECTION, args=(cid,), immutable=True),
        ).apply_async()
        failures = record_failures(ctx, replies)
        return {
            "collection_id": cid,
            "agents": collection.agent_count,
            "samples": collection.sample_count,
            "unreachable": list(collection.unreachable),
            "duration_ms": round(duration_ms, 1),
            "failures": failures,
        }


def record_failures(ctx: WorkerContext, replies: dict[str, Any]) -> int:
    """Keep the task failures the replies carry; a Redis error loses them, never the cycle (it is staged)."""
    try:
        return ctx.failure_book.record(failures_in(replies))
    except redis.RedisError as e:
        log.warning("the task failures of this collection were not kept: %s", e)
        return 0


def read_brokers(
    ctx: WorkerContext, discovered: tuple[str, ...] = ()
) -> tuple[list[AgentReport], list[QueueStats], dict[str, str]]:
    """Each broker's own figures, and depth and oldest-message age of the pipeline's queues, the watched ones
    and those the fleet's workers consume (`discovered`, read on the fleet's broker: the last probe)."""
    brokers: list[AgentReport] = []
    stats: list[QueueStats] = []
    errors: dict[str, str] = {}
    last = len(ctx.queue_probes) - 1
    for i, (probe, watched) in enumerate(ctx.queue_probes):
        queue_names = tuple(dict.fromkeys([*watched, *discovered])) if i == last else watched
        server, server_errors = probe.server()
        brokers.append(AgentReport(f"broker:{probe.address}", AgentKind.BROKER, "", server, errors=server_errors))
        read, failed = probe.read(queue_names, time.time())
        stats.extend(read)
        errors.update(failed)
    return brokers, stats, errors
