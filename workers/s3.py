"""`vsmmon.s3.control` and `vsmmon.s3.verify` (queue vsm.s3.control): S3 acts on resource alerts.

`control` defers a notification on an alert younger than `VSMMON_CONTROL_PERSIST_S` before planning it (it
comes back with that countdown and is planned then, if the alert is still open and not clearing). It looks
at the candidate workers through inspect `stats` (pool type and processes, autoscaler) and asks
`vsmmon.control.plan` for a bounded action given the current recommendations (one decision on pool sizes);
a plan that rests on advice the latest analysis made before the alert began runs the analysis once and
waits for it. It applies the action through Celery remote control unless dry-run, reads `stats` again
until the pool shows the change (the "after"), records the action with before and after, and schedules
`verify` after `VSMMON_CONTROL_VERIFY_AFTER_S`. `verify` decides whether the action helped; one that did
not is algedonic pain for S5 ("S3 action on X did not restore health").
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from celery import Celery

from vsmmon import names
from vsmmon.alerts.codec import notification_from_dict, notification_to_dict, plain_row
from vsmmon.alerts.model import Alert, Notification
from vsmmon.alerts.routing import signals_from_pain
from vsmmon.control.s3 import ControlPolicy, Plan, Watch, WorkerView, effective, plan, wait_s
from vsmmon.control.views import Known, candidates, last_actions, shown, worker_views
from vsmmon.errors import NotFound, TransientError
from vsmmon.models import Pain, PainCondition
from vsmmon.store.alert_records import ControlAction
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext
from vsmmon.workers.fleet import FleetPoller
from vsmmon.workers.s5 import held_by

CONTROL_TIMEOUT_S = 2.0
SETTLE_S = 10.0  # how long the pool may take to show the change in stats
ADVICE_WAIT_MIN_S = 5.0
ADVICE_WAITS = 3  # how many advice waits one alert gets before S3 decides on the advice there is


def policy_for(ctx: WorkerContext) -> ControlPolicy:
    s = ctx.settings
    return ControlPolicy(
        s.concurrency_limits, s.control_max_step, s.control_cooldown_s, s.control_dry_run, s.control_persist_s
    )


def views(fleet: Celery, known: Sequence[Known]) -> list[WorkerView]:
    """The workers as inspect `stats` shows them now (a worker that does not answer is left out)."""
    if not known:
        return []
    stats = fleet.control.inspect(destination=[k[0] for k in known], timeout=CONTROL_TIMEOUT_S).stats() or {}
    return worker_views(known, dict(stats))


def read_signal(ctx: WorkerContext, watch: Watch, now: datetime) -> float | None:
    """The latest collected value of the watched signal ("saturation": active / concurrency)."""
    window = ctx.realtime

    def last(metric: str) -> float | None:
        points = window.read(watch.agent_id, metric, now, 3 * ctx.settings.collect_interval_s)
        return points[-1].value if points else None

    if watch.metric != "saturation":
        return last(watch.metric)
    active, concurrency = last("active"), last("concurrency")
    return None if active is None or not concurrency else active / concurrency


def apply(fleet: Celery, p: Plan) -> dict[str, Any]:
    """Send the plan's command to its worker; the worker's reply."""
    destination = [p.destination] if p.destination else None
    if p.action == "pool_grow":
        replies = fleet.control.pool_grow(p.params["n"], destination=destination, reply=True, timeout=CONTROL_TIMEOUT_S)
    elif p.action == "pool_shrink":
        replies = fleet.control.pool_shrink(p.params["n"], destination=destination, reply=True,
                                            timeout=CONTROL_TIMEOUT_S)  # fmt: skip
    else:
        replies = fleet.control.autoscale(p.params["max"], p.params["min"], destination=destination, reply=True,
                                          timeout=CONTROL_TIMEOUT_S)  # fmt: skip
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    answer: dict[str, Any] = merged.get(p.destination or "", {"error": "no reply"})
    return answer


def settle(fleet: Celery, p: Plan, before: WorkerView) -> WorkerView | None:
    """Poll stats until the pool shows the change (or SETTLE_S passes): the action's "after"."""
    deadline = time.monotonic() + SETTLE_S
    view = None
    while True:
        found = views(fleet, [(before.hostname, before.queues, before.saturation, before.backlog)])
        view = found[0] if found else view
        if view is not None and (p.expected_processes is None or view.processes == p.expected_processes):
            return view
        if view is not None and p.action == "autoscale" and view.autoscale and view.autoscale[0] == p.params["max"]:
            return view
        if time.monotonic() >= deadline:
            return view
        time.sleep(0.2)


def publish(ctx: WorkerContext, action: ControlAction) -> None:
    message = names.dashboard_message("control_action", plain_row(action.row()))
    ctx.realtime.client.publish(names.ALERTS_CHANNEL, message)


def defer(app: Celery, n: Notification, wait: float, why: str = "") -> dict[str, Any]:
    """Send the notification back to S3 in `wait` s (its condition must hold `persist_s`, or advice is due)."""
    app.send_task(names.S3_CONTROL, args=(notification_to_dict(n), True), countdown=wait)
    why = why or f"must hold {wait:.0f} s more"
    return {"action": "deferred", "reason": f"{n.alert.type} on {n.alert.target} {why}"}


def stale_advice(ctx: WorkerContext, alert: Alert) -> bool:
    """The latest analysis ran before the alert's condition began (or none ran lately): its advice has not seen it."""
    if alert.type == "resource_adjustment":
        return False  # the alert is the advice
    raw = ctx.realtime.client.get(names.ANALYSED_AT_KEY)
    return raw is None or datetime.fromisoformat(raw if isinstance(raw, str) else raw.decode()) < alert.started_at


def ask_advice(app: Celery, ctx: WorkerContext, alert: Alert) -> bool:
    """Run the analysis now, once per alert (one run for alerts asking together), and wait for it: False once
    this alert has waited ADVICE_WAITS times (a busy analysis queue does not hold S3 back for longer)."""
    client, wait = ctx.realtime.client, advice_wait_s(ctx)
    key = names.S3_ADVICE_KEY.format(alert=alert.id)
    waits = int(client.incr(key))
    client.expire(key, 3600)
    if waits > ADVICE_WAITS:
        return False
    if waits == 1 and client.set(names.S3_ANALYSIS_ASKED_KEY, b"1", nx=True, px=int(wait * 1000)):
        app.send_task(names.ANALYSIS_RUN)  # one run for the alerts of one burst (a bottleneck, S3's headroom)
    return True


def advice_wait_s(ctx: WorkerContext) -> float:
    """How long S3 gives the analysis it asked for: a collection interval, at least 5 s."""
    return max(ADVICE_WAIT_MIN_S, ctx.settings.collect_interval_s)


def claim(ctx: WorkerContext, target: str, cooldown_s: float) -> bool:
    """Take the target's S3 slot for `cooldown_s`: False when another action holds it."""
    key = names.S3_CLAIM_KEY.format(target=target)
    return bool(ctx.realtime.client.set(key, b"1", nx=True, px=max(1, int(cooldown_s * 1000))))


def still_holds(ctx: WorkerContext, n: Notification) -> bool:
    """The alert is still open and its condition present (not clearing)."""
    alert = next((a for a in ctx.alert_book.read().state.alerts.values() if a.id == n.alert.id), None)
    return alert is not None and alert.clear_since is None


def act(app: Celery, ctx: WorkerContext, fleet: Celery, n: Notification, deferred: bool = False) -> dict[str, Any]:
    """Plan, apply (unless dry-run), observe and record S3's action on one notification."""
    now, policy = ctx.clock(), policy_for(ctx)
    if n.kind == "recovery":
        return {"action": "none", "reason": f"{n.alert.type} on {n.alert.target} recovered"}
    if deferred and not still_holds(ctx, n):
        return {"action": "none", "reason": f"{n.alert.type} on {n.alert.target} did not persist"}
    if not deferred and (wait := wait_s(n.alert, now, policy)) > 0:
        return defer(app, n, wait)  # planned then, on what holds then
    workers = views(fleet, candidates(ctx.store.agents(), n.alert.target))
    last = last_actions(ctx.alert_records.actions(since=now - timedelta(seconds=policy.cooldown_s)))
    advice = ctx.store.recommendations(now)
    p = plan(n.alert, n.kind, workers, last, now=now, policy=policy, held_by=held_by(ctx), advice=advice)
    if p.on_advice and stale_advice(ctx, n.alert) and ask_advice(app, ctx, n.alert):
        return defer(app, n, advice_wait_s(ctx), why="waits for an analysis that has seen it")
    if p.action != "none" and not claim(ctx, p.destination or "", policy.cooldown_s):
        # two alerts about one worker (its bottleneck, the advice to grow it) reach S3 together: one acts
        p = Plan("none", None, {}, f"{p.destination} is being adjusted by another S3 action "
                                   f"(one per {policy.cooldown_s:.0f} s)")  # fmt: skip
    action = ControlAction(uuid.uuid4(), now, p.destination or n.alert.target, p.action, dict(p.params), p.reason,
                           n.alert.id, dry_run=policy.dry_run and p.action != "none")  # fmt: skip
    if p.action == "none":
        ctx.alert_records.save_action(action)
        publish(ctx, action)
        return {"action": "none", "reason": p.reason, "id": str(action.id)}
    before = next(w for w in workers if w.hostname == p.destination)
    watched = None
    if p.watch is not None:
        w = p.watch
        watched = {"agent_id": w.agent_id, "metric": w.metric, "want": w.want, "value": read_signal(ctx, w, now)}
    after: dict[str, Any] = {"applied": False}
    if not policy.dry_run:
        reply = apply(fleet, p)
        after = {**shown(settle(fleet, p, before) if "ok" in reply else None), "reply": reply}
    action = replace(action, before={**shown(before), "watch": watched}, after=after)
    ctx.alert_records.save_action(action)
    publish(ctx, action)
    if not policy.dry_run and "ok" in after["reply"]:
        app.send_task(names.S3_VERIFY, args=(str(action.id),), countdown=ctx.settings.control_verify_after_s)
    return {"action": p.action, "destination": p.destination, "params": dict(p.params), "id": str(action.id),
            "before": action.before, "after": action.after}  # fmt: skip


def check(app: Celery, ctx: WorkerContext, action_id: str) -> dict[str, Any]:
    """Did the action help? Recorded once; one that did not is algedonic pain for S5."""
    now = ctx.clock()
    try:
        action = ctx.alert_records.action(UUID(action_id))
    except NotFound:
        return {"id": action_id, "verified": False}
    if action.verified_at is not None:
        return {"id": action_id, "verified": True, "effective": action.effective}
    raw = action.before.get("watch")
    watch = Watch(raw["agent_id"], raw["metric"], raw["want"]) if raw else None
    value = read_signal(ctx, watch, now) if watch else None
    still_open = {a.id for a in ctx.alert_book.read().state.alerts.values()}
    resolved = action.alert_id is not None and action.alert_id not in still_open
    helped = effective(watch.want if watch else "down", raw.get("value") if raw else None, value, resolved)
    ctx.alert_records.verify_action(action.id, now, helped, {"signal": value, "alert_resolved": resolved})
    publish(ctx, replace(action, verified_at=now, effective=helped))
    if not helped:
        target, waited = action.target, ctx.settings.control_verify_after_s
        pain = Pain(PainCondition.CONTROL_FAILED, target, waited, f"{action.action} {json.dumps(dict(action.params))}")
        report_signals(app, f"s3:{target}", signals_from_pain([pain]), ttl_s=waited)
    return {"id": action_id, "verified": True, "effective": helped, "signal": value, "alert_resolved": resolved}


def register(app: Celery) -> None:
    pollers: dict[str, FleetPoller] = {}

    @app.task(name=names.S3_CONTROL, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=1, retry_backoff_max=30, max_retries=10)  # fmt: skip
    def control(self: VsmTask, notification: dict[str, Any], deferred: bool = False) -> dict[str, Any]:
        fleet = pollers.setdefault("fleet", FleetPoller.for_settings(app, self.ctx.settings)).app
        return act(self.app, self.ctx, fleet, notification_from_dict(notification), deferred=bool(deferred))

    @app.task(name=names.S3_VERIFY, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=60, max_retries=None)  # fmt: skip
    def verify(self: VsmTask, action_id: str) -> dict[str, Any]:
        return check(self.app, self.ctx, action_id)
