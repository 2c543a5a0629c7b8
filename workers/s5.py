"""`vsmmon.s5.policy` (queue vsm.s5.policy): S5 records each escalation and decides (`vsmmon.policy`).

What S5 has in force (a protective mode, a hold on S3) is kept in Redis under `names.S5_STANDING_KEY`, with the
workers whose consumers a protective mode cancelled, so its lifting gives each its queue back.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from celery import Celery

from vsmmon import names
from vsmmon.alerts.codec import notification_from_dict, plain_row, public_alert
from vsmmon.alerts.model import Notification
from vsmmon.control.s5 import Standing, decide
from vsmmon.errors import TransientError
from vsmmon.store.alert_records import PolicyDecision
from vsmmon.workers.context import VsmTask, WorkerContext
from vsmmon.workers.fleet import FleetPoller

log = logging.getLogger(__name__)
HOLD_MAX_S = 3600.0  # a hold nobody lifts ends by itself
CONTROL_TIMEOUT_S = 2.0


def read_standing(ctx: WorkerContext) -> dict[str, Any]:
    raw = ctx.realtime.client.get(names.S5_STANDING_KEY)
    data: dict[str, Any] = json.loads(raw) if raw else {}
    hold_until = data.get("hold_until")
    if hold_until is not None and hold_until < ctx.clock().timestamp():
        data.pop("hold_for", None)
        data.pop("hold_until", None)
    return data


def held_by(ctx: WorkerContext) -> str | None:
    """Why S3 must not act now (S5 holds it), or None."""
    data = read_standing(ctx)
    return data.get("hold_reason") if data.get("hold_for") else None


def _consumers(app: Celery, queues: tuple[str, ...]) -> dict[str, list[str]]:
    """Workers consuming each queue, by inspect active_queues."""
    replies = app.control.inspect(timeout=CONTROL_TIMEOUT_S).active_queues() or {}
    found: dict[str, list[str]] = {q: [] for q in queues}
    for host, consumed in replies.items():
        for q in consumed or []:
            if q.get("name") in found:
                found[q["name"]].append(host)
    return {q: sorted(hosts) for q, hosts in found.items() if hosts}


def respond(ctx: WorkerContext, fleet: Celery, n: Notification) -> dict[str, Any]:
    """Decide on one escalation, carry out what the decision starts or lifts, record and show it."""
    settings, now = ctx.settings, ctx.clock()
    data = read_standing(ctx)
    verdict = decide(n.alert, n.kind, Standing(data.get("protective_for"), data.get("hold_for")),
                     protective_queues=settings.protective_queues,
                     hold_on_control_failure=settings.s5_hold_on_control_failure)  # fmt: skip
    detail: dict[str, Any] = {"reason": verdict.reason, "kind": n.kind, "alert": public_alert(n.alert)}
    if verdict.decision == "protective_mode":
        cancelled = _consumers(fleet, settings.protective_queues)
        for queue, hosts in cancelled.items():
            fleet.control.cancel_consumer(queue, destination=hosts, reply=True, timeout=CONTROL_TIMEOUT_S)
        data.update(protective_for=n.alert.fingerprint, protective=cancelled)
        detail["cancelled"] = cancelled
    elif verdict.decision == "hold":
        until = now + timedelta(seconds=HOLD_MAX_S)
        data.update(hold_for=n.alert.fingerprint, hold_reason=verdict.reason, hold_until=until.timestamp())
        detail["hold_until"] = until.isoformat()
    if "protective_mode" in verdict.lifts:
        restored = data.pop("protective", {}) or {}
        for queue, hosts in restored.items():
            fleet.control.add_consumer(queue, destination=hosts, reply=True, timeout=CONTROL_TIMEOUT_S)
        data.pop("protective_for", None)
        detail["restored"] = restored
    if "hold" in verdict.lifts:
        for key in ("hold_for", "hold_reason", "hold_until"):
            data.pop(key, None)
    detail["lifts"] = list(verdict.lifts)
    if data:  # in force until lifted: kept while S5 decides (renewed at each decision), a week at most
        ctx.realtime.client.set(names.S5_STANDING_KEY, json.dumps(data), ex=names.STATE_TTL_S)
    else:
        ctx.realtime.client.delete(names.S5_STANDING_KEY)
    decision = PolicyDecision(uuid.uuid4(), now, n.alert.id, verdict.decision, detail)
    ctx.alert_records.save_decision(decision)
    shown = plain_row(decision.row())
    ctx.realtime.client.publish(names.ALERTS_CHANNEL, names.dashboard_message("policy_decision", shown))
    log.warning("S5 %s: %s", verdict.decision, verdict.reason)
    return {"decision": verdict.decision, "reason": verdict.reason, "id": shown["id"]}


def register(app: Celery) -> None:
    pollers: dict[str, FleetPoller] = {}

    @app.task(name=names.S5_POLICY, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=1, retry_backoff_max=30, max_retries=20)  # fmt: skip
    def policy(self: VsmTask, notification: dict[str, Any]) -> dict[str, Any]:
        fleet = pollers.setdefault("fleet", FleetPoller.for_settings(self.app, self.ctx.settings)).app
        return respond(self.ctx, fleet, notification_from_dict(notification))
