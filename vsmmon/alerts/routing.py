"""The alert manager's edges, pure: signals in from the health and analysis stages, notifications out as
the Prometheus Alertmanager webhook message (version 4), so existing receivers work unchanged.

Signals from a `HealthAssessment` (level-triggered: the conditions holding at this check):
- system health: S1..S5 degraded -> warning, unhealthy -> critical (type "system_health"); S3's is a
  resource alert (headroom and drain are what S3's actuators change);
- viability: warning / critical per its state (type "viability", target "system"), system-wide;
- algedonic pain: critical and system-wide (type "algedonic"), so it goes straight to S5; the fingerprint
  is the `Pain`'s target and condition (a "condition" label), never its message, so the changing numbers
  and the wording of the summary do not change it;
- bottlenecks: warning resource alerts (type "bottleneck", the `Bottleneck`'s target, label "factor"), for S3.
A resource-adjustment `Recommendation` not yet expired is an info resource alert for S3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from vsmmon.alerts.model import Alert, AlertStatus, Notification, Severity, Signal
from vsmmon.analyse.recommend import Recommendation
from vsmmon.health.assessment import HealthAssessment
from vsmmon.health.viability import HealthState, ViabilityState
from vsmmon.models import Pain, utc

WEBHOOK_VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's endsAt of a firing alert
_STATE_SEVERITY = {HealthState.DEGRADED: Severity.WARNING, HealthState.UNHEALTHY: Severity.CRITICAL}
_VIABILITY_SEVERITY = {ViabilityState.WARNING: Severity.WARNING, ViabilityState.CRITICAL: Severity.CRITICAL}


def signals_from_assessment(assessment: HealthAssessment) -> list[Signal]:
    """The conditions an assessment shows as holding now."""
    signals = []
    for name, state in assessment.states.items():
        if (severity := _STATE_SEVERITY.get(state)) is not None:
            score = assessment.systems[name].score if name in assessment.systems else None
            shown = "unknown" if score is None else f"{score:.2f}"
            summary = f"{name} {state} (score {shown})"
            signals.append(Signal("system_health", name, severity, summary=summary, resource=name == "S3"))
    if (severity := _VIABILITY_SEVERITY.get(assessment.viability_state)) is not None:
        summary = f"viability {assessment.viability:.2f} ({assessment.viability_state})"
        signals.append(Signal("viability", "system", severity, summary=summary, system_wide=True))
    signals += signals_from_pain(assessment.algedonic)
    signals += [Signal("bottleneck", b.target, Severity.WARNING, {"factor": b.factor}, b.message, resource=True)
                for b in assessment.bottlenecks]  # fmt: skip
    return signals


def signals_from_pain(pains: Sequence[Pain]) -> list[Signal]:
    """Algedonic pain as critical, system-wide signals (straight to S5)."""
    return [Signal("algedonic", p.target, Severity.CRITICAL, {"condition": p.condition.value}, p.message,
                   system_wide=True) for p in pains]  # fmt: skip


def signal_from_recommendation(rec: Recommendation, now: datetime) -> Signal | None:
    """An info resource alert for S3 from an unexpired resource adjustment; None for other kinds."""
    if rec.kind != "resource_adjustment" or utc(now) >= rec.expires_at:
        return None
    labels = {"command": str(rec.action["command"])}
    return Signal("resource_adjustment", rec.target, Severity.INFO, labels, rec.rationale, resource=True)


def rfc3339(at: datetime) -> str:
    """`at` in UTC as RFC 3339 with a "Z" suffix."""
    return utc(at).isoformat().replace("+00:00", "Z")


def alertmanager_alert(notification: Notification, generator_url: str) -> dict[str, object]:
    """One entry of the webhook message's `alerts`."""
    alert = notification.alert
    resolved_at = alert.resolved_at if alert.status is AlertStatus.RESOLVED else None
    return {
        "status": "firing" if resolved_at is None else "resolved",  # Alertmanager has no "acknowledged": it fires
        "labels": _labels(alert),
        "annotations": _annotations(alert),
        "startsAt": rfc3339(alert.fired_at or alert.started_at),
        "endsAt": ZERO_TIME if resolved_at is None else rfc3339(resolved_at),
        "generatorURL": generator_url,
        "fingerprint": alert.fingerprint,
    }


def alertmanager_payload(
    notifications: Sequence[Notification],
    receiver: str,
    external_url: str,
    *,
    group_by: Sequence[str] = ("alertname",),
    max_alerts: int = 0,
    generator_url: str | None = None,
) -> dict[str, object]:
    """The webhook message Alertmanager (version 4) would POST for these notifications, as one group.

    `groupLabels` are the `group_by` labels all alerts share; `max_alerts` > 0 truncates like
    Alertmanager's webhook `max_alerts`, counting the rest in `truncatedAlerts`; `generatorURL` defaults
    to `external_url` (the vsmmon dashboard).
    """
    if not notifications:
        raise ValueError("a webhook message needs at least one notification")
    shown = notifications[:max_alerts] if max_alerts > 0 else notifications
    common_labels = _common([_labels(n.alert) for n in shown])
    group_labels = {k: common_labels[k] for k in group_by if k in common_labels}
    group_key = "{}:{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(group_labels.items())) + "}"
    firing = any(n.alert.status is not AlertStatus.RESOLVED for n in shown)
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": len(notifications) - len(shown),
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([_annotations(n.alert) for n in shown]),
        "externalURL": external_url,
        "alerts": [alertmanager_alert(n, generator_url or external_url) for n in shown],
    }


def _labels(alert: Alert) -> dict[str, str]:
    return {"alertname": alert.type, "severity": str(alert.severity), "target": alert.target, **alert.labels}


def _annotations(alert: Alert) -> dict[str, str]:
    extra = {"escalation_level": str(alert.escalation_level)} if alert.escalation_level else {}
    return {"summary": alert.summary, **extra}


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The key/value pairs all maps share."""
    return {k: v for k, v in sorted(maps[0].items()) if all(m.get(k) == v for m in maps[1:])}
