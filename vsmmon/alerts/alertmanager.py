"""Alerts as Alertmanager's API v2 takes them (`POST /api/v2/alerts`), the way Prometheus sends them.

Pure. Alertmanager keeps an alert firing until its `endsAt`; a client re-posts every firing alert while it
holds, with `endsAt` a few resend periods ahead (Prometheus: 4 x its resend delay), so one or two lost posts
do not resolve it, and posts it once more, `endsAt` its resolution time, when it resolves. Like Prometheus,
a failed post is not retried (a retried batch would arrive stale, after a newer state): the next resend
carries every firing alert and every alert resolved within the window Alertmanager could still hold it. Alertmanager
then does its own grouping, silencing, inhibition and routing: vsmmon's own cooldown and hourly cap apply to
its own receivers, not to this state. Labels are the alert's identity and stay the same while it lives
(`alertname` = its type, `severity`, `target`, its own labels, and `system` — S1-S5 or viability — where the
alert is about one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from vsmmon.alerts.model import Alert, AlertStatus
from vsmmon.alerts.routing import rfc3339

POSTED = (AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED)  # pending ones are not alerts yet
ENDS_AFTER_RESENDS = 4  # a firing alert's endsAt: this many resend periods ahead (Prometheus's rule)
SYSTEMS = frozenset({"S1", "S2", "S3", "S4", "S5", "viability"})


def endpoint(base_url: str) -> str:
    """Where alerts are posted on an Alertmanager at `base_url`."""
    return base_url.rstrip("/") + "/api/v2/alerts"


def labels(alert: Alert) -> dict[str, str]:
    """The alert's identity in Alertmanager."""
    found = {"alertname": alert.type, "severity": str(alert.severity), "target": alert.target, **alert.labels}
    if alert.target in SYSTEMS:
        found["system"] = alert.target
    return found


def postable(alert: Alert, now: datetime, resend_s: float, external_url: str) -> dict[str, object]:
    """One `postableAlert`: a firing (or acknowledged) alert ends `ENDS_AFTER_RESENDS` resends from `now` unless
    posted again; a resolved one ends when it resolved."""
    if alert.status not in POSTED:
        raise ValueError(f"alert {alert.id} is {alert.status}: only firing, acknowledged or resolved ones are posted")
    starts = alert.fired_at or alert.started_at
    ends = alert.resolved_at if alert.status is AlertStatus.RESOLVED and alert.resolved_at else None
    if ends is not None:
        ends = max(ends, starts)  # a resolution stamped a hair before the firing (two clocks) is refused otherwise
    annotations = {"summary": alert.summary}
    if alert.acknowledged_by:
        annotations["acknowledged_by"] = alert.acknowledged_by
    if alert.escalation_level:
        annotations["escalation_level"] = str(alert.escalation_level)
    return {
        "labels": labels(alert),
        "annotations": annotations,
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends or now + timedelta(seconds=ENDS_AFTER_RESENDS * resend_s)),
        "generatorURL": f"{external_url.rstrip('/')}/api/v1/alerts/{alert.id}",
    }


def batch(alerts: Iterable[Alert], now: datetime, resend_s: float, external_url: str) -> list[dict[str, object]]:
    """The postable alerts among `alerts`, in one list as the API takes them: pending ones, and those that
    resolved without ever firing, left out."""
    return [postable(a, now, resend_s, external_url) for a in alerts if worth_posting(a)]


def worth_posting(alert: Alert) -> bool:
    """Firing or acknowledged, or resolved after it fired."""
    if alert.status is AlertStatus.RESOLVED:
        return alert.fired_at is not None
    return alert.status in POSTED


def resend_window_s(resend_s: float) -> float:
    """How long after its resolution Alertmanager may still hold an alert firing (a lost resolve)."""
    return ENDS_AFTER_RESENDS * resend_s
