"""`vsmmon.health.audit` (beat, every VSMMON_AUDIT_INTERVAL_S): the S3* audit of one worker (`vsmmon.audit`).

The probe: ping; `vsm_metrics` (the self-report) before and after; `inspect stats`; a canary sent to the
worker's direct queue (declared first, so a worker that does not take it leaves it there; the worker
consumes it, through `add_consumer`, only for the probe, unless it consumes that queue itself with
`worker_direct`), whose departure the broker shows. The result
is kept in Redis for the health check (S3 and S5 read its score), and each finding is a warning alert
on the worker. A worker found wanting (no ping answered, the canary not taken) may be one stopping on
purpose, its goodbye not read yet, or one just lost: the audit waits for the registry to judge it (two
collection intervals) and drops the round if it is stopped or offline by then — that is the registry's
news, not a worker lying about itself.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from celery import Celery
from celery.utils.nodenames import worker_direct

from vsmmon import names
from vsmmon.alerts.model import Severity, Signal
from vsmmon.collect.broker import QueueProbe
from vsmmon.health.audit import Audit, Said, Seen, audit_to_dict, canaries_run, candidates, judge, pick
from vsmmon.models import AgentStatus
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext
from vsmmon.workers.fleet import FleetPoller

DEADLINE_S = 5.0
ASK_TIMEOUT_S = 1.5


def _ask(fleet: Celery, command: str, hostname: str) -> Any:
    replies = fleet.control.broadcast(command, destination=[hostname], reply=True, timeout=ASK_TIMEOUT_S) or []
    merged: dict[str, Any] = {}
    for reply in replies:
        merged.update(reply)
    return merged.get(hostname)


def probe(ctx: WorkerContext, fleet: Celery, hostname: str) -> Audit:
    """Probe one worker and judge what was seen against what it said."""
    now = ctx.clock()
    if not fleet.control.ping(destination=[hostname], timeout=ASK_TIMEOUT_S):
        return judge(hostname, now, Seen(False, None, None), Said(None, None, None), DEADLINE_S)
    before = _ask(fleet, "vsm_metrics", hostname)
    stats: dict[str, Any] = dict(fleet.control.inspect(destination=[hostname], timeout=ASK_TIMEOUT_S).stats() or {})
    pool = (stats.get(hostname) or {}).get("pool") or {}
    processes = len(pool["processes"]) if isinstance(pool.get("processes"), list) else None
    counted_before = canaries_run(before)
    owned = isinstance(before, dict) and before.get("worker_direct") is True
    taken, waited, counted_after = canary(ctx, fleet, hostname, counted_before, owned=owned)
    metrics = (before or {}).get("metrics") if isinstance(before, dict) else None
    concurrency = metrics.get("concurrency") if isinstance(metrics, dict) else None
    seen = Seen(True, processes, taken, waited if taken else None)
    said = Said(concurrency, counted_before, counted_after)
    return judge(hostname, now, seen, said, DEADLINE_S)


def canary(
    ctx: WorkerContext, fleet: Celery, hostname: str, counted_before: float | None, *, owned: bool
) -> tuple[bool | None, float, float | None]:
    """Send a canary to the worker's direct queue: (taken, as the broker shows; seconds waited; canaries run).

    A worker started with `worker_direct` consumes that queue itself (`owned`): the canary goes to its
    consumer, which the audit neither adds nor cancels. Otherwise the audit declares the queue (an untaken
    canary stays visible), consumes it only for the probe, and removes only its own canary: a queue that
    held anything else before is left as it was.
    """
    queue = worker_direct(hostname)
    exchange, key = queue.exchange.name, queue.routing_key
    broker = ctx.queue_probes[-1][0] if ctx.queue_probes else None
    if not owned:
        with fleet.connection_for_write() as conn:
            queue.bind(conn.default_channel).declare()
        fleet.control.add_consumer(queue.name, exchange, "direct", key, destination=[hostname], reply=True,
                                   timeout=ASK_TIMEOUT_S)  # fmt: skip
    held = _depth(broker, queue.name)
    try:
        fleet.send_task(names.CANARY_TASK, args=(uuid.uuid4().hex,), exchange=exchange, routing_key=key)
        started, counted_after = time.monotonic(), counted_before
        while time.monotonic() - started < DEADLINE_S:
            counted_after = canaries_run(_ask(fleet, "vsm_metrics", hostname))
            if counted_after is not None and counted_before is not None and counted_after > counted_before:
                break
            time.sleep(0.1)
        waited = time.monotonic() - started
    finally:
        if not owned:
            fleet.control.cancel_consumer(queue.name, destination=[hostname])
    left = _depth(broker, queue.name)
    taken = None if broker is None else left is not None and left <= (held or 0)
    if not owned and held == 0 and left == 1:
        with fleet.connection_for_write() as conn:
            queue.bind(conn.default_channel).purge()  # the one message there is the audit's own canary
    return taken, waited, counted_after


def _depth(broker: QueueProbe | None, queue: str) -> int | None:
    """Messages waiting on `queue` as the broker shows them (None: no broker probe, or it did not answer)."""
    if broker is None:
        return None
    read, _ = broker.read([queue], time.time())
    return int(read[0].messages) if read else None


def judged_gone(ctx: WorkerContext, hostname: str) -> str | None:
    """ "stopped" or "offline" once the registry says so within two collections and a reply's wait, else None."""
    settings = ctx.settings
    deadline = time.monotonic() + 2 * settings.collect_interval_s + settings.collect_timeout_s
    while True:
        status = next((a.status for a in ctx.store.agents() if a.agent_id == hostname), None)
        if status in (AgentStatus.STOPPED, AgentStatus.OFFLINE):
            return str(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def register(app: Celery) -> None:
    pollers: dict[str, FleetPoller] = {}
    rng = random.Random()

    @app.task(name=names.HEALTH_AUDIT, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def audit(self: VsmTask, hostname: str | None = None) -> dict[str, Any]:
        """Audit `hostname`, or one live worker drawn at random, the riskier ones more often."""
        ctx = self.ctx
        fleet = pollers.setdefault("fleet", FleetPoller.for_settings(app, ctx.settings)).app
        if hostname is None:
            chosen = pick(candidates(ctx.store.agents(), ctx.settings.memory_hard_bytes), rng)
            if chosen is None:
                return {"audited": None, "reason": "no live worker"}
            hostname = chosen.hostname
        result = probe(ctx, fleet, hostname)
        if result.findings and (gone := judged_gone(ctx, hostname)):
            return {"audited": hostname, "void": f"{gone} during the audit: no finding, the registry says it"}
        body = audit_to_dict(result)
        interval = ctx.settings.audit_interval_s
        ctx.realtime.client.set(names.AUDIT_KEY, json.dumps(body), ex=int(2 * interval))
        signals = [Signal("audit_finding", hostname, Severity.WARNING, {"check": f.check}, f.message)
                   for f in result.findings]  # fmt: skip
        report_signals(self.app, "audit", signals, ttl_s=2 * interval)
        return body
