"""`vsmmon.health.assess` (beat, every HEALTH_INTERVAL_S) and `vsmmon.health.check` (ad hoc, returns JSON).

Both score the registry's view of the fleet with `assessment.evaluate`: the registry alone says who is
live, since only it sees the goodbyes of workers stopped on purpose (a worker that stopped answering a
moment ago may be one); it judges a worker that missed two collections offline, and that persist task
asks for an assessment at once (`vsmmon.persist.collection`). The scheduled one stores its rows, carries
its state (hysteresis, edges) to the next, and publishes a summary for the dashboard; an ad-hoc check
reads that state but changes none of it: its rows are stored apart, under the check's id (its task id).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from vsmmon import names
from vsmmon.alerts.codec import public_alert
from vsmmon.alerts.model import AlertStatus
from vsmmon.alerts.routing import signals_from_assessment
from vsmmon.health.assessment import HealthAssessment, evaluate
from vsmmon.health.codec import assessment_to_dict, previous_from_dict, previous_to_dict, rows
from vsmmon.health.inputs import gather
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext

log = logging.getLogger(__name__)
ACTIVE = (AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED)  # what an ad-hoc check reports beside its scores


def assess(ctx: WorkerContext) -> HealthAssessment:
    """One fresh assessment of the registry, the real-time window and the alerting state."""
    settings, now = ctx.settings, ctx.clock()
    registry = ctx.store.agents()
    raw_exhaustion = ctx.realtime.client.get(names.EXHAUSTION_KEY)
    exhaustion = json.loads(raw_exhaustion) if raw_exhaustion else None
    gathered = gather(registry, ctx.realtime, settings, now, exhaustion)
    control = replace(gathered.control, **alerting_inputs(ctx, now))
    raw = ctx.realtime.client.get(names.HEALTH_PREVIOUS_KEY)
    previous = previous_from_dict(json.loads(raw)) if raw else None
    return evaluate(
        now, gathered.agents, gathered.queues, control, previous,
        expected_capacity=settings.expected_capacity, broker_errors=gathered.broker_errors,
    )  # fmt: skip


def alerting_inputs(ctx: WorkerContext, now: datetime) -> dict[str, Any]:
    """S3's control efficacy (last hour), S5's escalation handling (last 24 h), S4's forecast accuracy."""
    settings, records = ctx.settings, ctx.alert_records
    total, effective = records.efficacy(now - timedelta(hours=1))
    criticals, handled = records.critical_handling(now - timedelta(hours=24), settings.alert_escalate_after_s, now)
    raw = ctx.realtime.client.get(names.ACCURACY_KEY)
    accuracy = json.loads(raw) if raw else {}
    smape = accuracy.get("smape") if isinstance(accuracy, dict) else None
    raw_audit = ctx.realtime.client.get(names.AUDIT_KEY)  # expires after two audit intervals: then unknown
    audit = json.loads(raw_audit) if raw_audit else {}
    return {
        "audit_score": audit.get("score"),
        "audit_worker": audit.get("hostname"),
        "actions_total": total,
        "actions_effective": effective,
        "critical_alerts": criticals,
        "critical_handled": handled,
        "smape": float(smape) if isinstance(smape, int | float) else None,
    }


def register(app: Celery) -> None:
    @app.task(name=names.HEALTH_ASSESS, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def run(self: VsmTask) -> dict[str, Any]:
        ctx = self.ctx
        result = assess(ctx)
        ctx.store.save_health(rows(result))
        ttl = int(timedelta(hours=1).total_seconds())
        ctx.realtime.client.set(names.HEALTH_PREVIOUS_KEY, json.dumps(previous_to_dict(result.carry())), ex=ttl)
        summary = assessment_to_dict(result, agents=False)
        ctx.realtime.client.publish(names.HEALTH_CHANNEL, json.dumps(summary))
        report_signals(self.app, "health", signals_from_assessment(result), ttl_s=3 * ctx.settings.health_interval_s)
        if result.alerts or result.algedonic:
            log.warning("viability %.2f (%s) alerts=%s pain=%s", result.viability, result.viability_state,
                        list(result.alerts), [p.message for p in result.algedonic])  # fmt: skip
        return {
            "viability": round(result.viability, 4),
            "state": result.viability_state.value,
            "alert": result.alert,
            "alerts": [f"{subject}:{kind}" for subject, kind in result.alerts],
        }

    @app.task(name=names.HEALTH_CHECK, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def check(self: VsmTask) -> dict[str, Any]:
        """An ad-hoc assessment, stored under its id and returned as JSON (for `vsmmon check`, the API and Flower)."""
        result = assess(self.ctx)
        check_id = check_id_of(self.request.id)
        self.ctx.store.save_health(rows(result, check_id))  # apart: scheduled history and scores ignore these rows
        active = [public_alert(a) for a in self.ctx.alert_book.read().state.alerts.values() if a.status in ACTIVE]
        return {"check_id": str(check_id), **assessment_to_dict(result), "active_alerts": active}


def check_id_of(task_id: str | None) -> uuid.UUID:
    """The check's id is its task's, so the API finds the stored check by the id it answered; a task called
    in-process (no id) gets a new one."""
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        return uuid.uuid4()
