"""`vsmmon.collect.run`: ask every worker for its metrics, stage the collection, chain the rest;
`vsmmon.collect.shard`: the same for one shard of a large cycle's pushed agents (`vsmmon.collect.shards`)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import Celery, chain

from vsmmon import names
from vsmmon.collect.broker import QueueStats
from vsmmon.collect.collector import collect, consumed_queues, stopping
from vsmmon.collect.screen import screen
from vsmmon.collect.shards import shard_count, slots_of
from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.tasks.failures import failures_in
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext
from vsmmon.workers.fleet import FleetPoller

DISCOVERY_EVERY_S = 30.0
log = logging.getLogger(__name__)


def register(app: Celery) -> None:
    pollers: dict[int, FleetPoller] = {}  # one per process, built on first use

    def poller_for(settings: Settings) -> FleetPoller:
        return pollers.get(os.getpid()) or pollers.setdefault(os.getpid(), FleetPoller.for_settings(app, settings))

    @app.task(name=names.COLLECT_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, settings = self.ctx, self.ctx.settings
        poller = poller_for(settings)
        now, started = ctx.clock(), time.monotonic()
        expected = seen_recently(ctx, now)
        shards = shard_count(ctx.staging.waiting_pushed() + len(expected), settings.cycle_shard_agents)
        for k in range(1, shards):  # queued before the broadcast: any collector process takes them at once
            self.app.send_task(names.COLLECT_SHARD, args=(k, shards, now.isoformat()),
                               expires=settings.collect_interval_s)  # fmt: skip
        if ctx.staging.claim_discovery(DISCOVERY_EVERY_S, now) and expected:  # off the cycle's path (`discover`)
            self.app.send_task(names.COLLECT_DISCOVER, expires=DISCOVERY_EVERY_S)
        # knowing no one, the cycle asks everyone and waits the whole timeout; else it ends on the last reply
        everyone = not expected
        replies = poller.ask("vsm_metrics", sorted(expected), timeout_s=settings.collect_timeout_s, everyone=everyone)
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
            pushed_reports=ctx.staging.drain_pushed(slots_of(0, shards)),
            queue_stats=queue_stats,
            queue_errors=queue_errors,
            interval_s=settings.collect_interval_s,
            stopped=stopped,
        )
        collection = replace(collection, shards=shards)
        if pain := screen(collection):  # algedonic conditions go to the alert manager at once, not in 30 s
            report_signals(self.app, "screen", pain, ttl_s=3 * settings.collect_interval_s)
        ctx.staging.mark_seen(set(replies) - stopping(replies), now)  # a stopping worker is not asked by name again
        stage(self, collection)
        failures = record_failures(ctx, replies)
        return {**outline(collection), "unreachable": list(collection.unreachable), "failures": failures}

    @app.task(name=names.COLLECT_SHARD, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def shard(self: VsmTask, shard: int, shards: int, started_at: str) -> dict[str, Any]:
        """Shard `shard` of `shards` of the cycle started at `started_at`: its slots' pushed reports."""
        ctx, settings, now = self.ctx, self.ctx.settings, datetime.fromisoformat(started_at)
        workers = seen_recently(ctx, now)  # shard 0 asks them: a push never shadows a worker
        pushed = [r for r in ctx.staging.drain_pushed(slots_of(shard, shards)) if r.agent_id not in workers]
        duration_ms = max(0.0, (ctx.clock() - now).total_seconds() * 1000)  # from the cycle's start to drained
        collection = collect(collection_id=uuid.uuid4(), now=now, duration_ms=duration_ms, host_reports=(),
                             worker_replies={}, pushed_reports=pushed,
                             interval_s=settings.collect_interval_s)  # fmt: skip
        collection = replace(collection, shard=shard, shards=shards)
        stage(self, collection)
        return outline(collection)

    @app.task(name=names.COLLECT_DISCOVER, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def discover(self: VsmTask) -> dict[str, Any]:
        """Ask every worker, waiting the whole timeout, and remember who answered: the next cycles ask them by
        name. Its own task, so no cycle waits the timeout for workers that may not exist (a 1.5 s p95 before)."""
        ctx, settings = self.ctx, self.ctx.settings
        known = seen_recently(ctx, ctx.clock())
        replies = poller_for(settings).ask("vsm_metrics", (), timeout_s=settings.collect_timeout_s, everyone=True)
        answered = set(replies) - stopping(replies)  # a stopping worker is not asked by name again
        ctx.staging.mark_seen(answered, ctx.clock())
        return {"answered": len(answered), "new": sorted(answered - known)[:50]}


def seen_recently(ctx: WorkerContext, now: datetime) -> set[str]:
    """The workers that answered within the last two intervals: those a cycle asks by name."""
    return ctx.staging.workers_seen_since(now - timedelta(seconds=2 * ctx.settings.collect_interval_s))


def stage(task: VsmTask, collection: Collection) -> None:
    """Keep the collection in the staging buffer and chain its persist and aggregate tasks."""
    task.ctx.staging.put(collection)
    cid = str(collection.id)
    chain(
        task.app.signature(names.PERSIST_COLLECTION, args=(cid,), immutable=True),
        task.app.signature(names.AGGREGATE_COLLECTION, args=(cid, collection.started_at.isoformat()), immutable=True),
    ).apply_async()


def outline(collection: Collection) -> dict[str, Any]:
    """A collect task's result, as Flower shows it."""
    return {
        "collection_id": str(collection.id),
        "shard": f"{collection.shard + 1}/{collection.shards}",
        "agents": collection.agent_count,
        "samples": collection.sample_count,
        "duration_ms": round(collection.duration_ms, 1),
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
