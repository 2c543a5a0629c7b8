"""Alerts as Alertmanager's API v2 takes them: labels that stay the alert's identity, endsAt as Prometheus sets it."""

from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.alerts.alertmanager import batch, endpoint, labels, postable
from vsmmon.alerts.manager import step
from vsmmon.alerts.model import AlertPolicy, AlertState, AlertStatus, Severity, Signal

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
S1_DOWN = Signal("system_health", "S1", Severity.CRITICAL, {}, "S1 unhealthy (score 0.25)")


def test_a_firing_alert_ends_four_resends_ahead_and_a_resolved_one_when_it_resolved() -> None:
    state, *_ = step(AlertState(), [S1_DOWN], T0, AlertPolicy(pending_s={}))
    (firing,) = state.alerts.values()
    assert firing.status is AlertStatus.FIRING
    body = postable(firing, T0 + timedelta(seconds=10), 60.0, "http://vsmmon:8000/")
    assert body == {
        "labels": {"alertname": "system_health", "severity": "critical", "target": "S1", "system": "S1"},
        "annotations": {"summary": "S1 unhealthy (score 0.25)"},
        "startsAt": "2026-12-03T12:00:00Z",
        "endsAt": "2026-12-03T12:04:10Z",  # now + 4 x 60 s
        "generatorURL": f"http://vsmmon:8000/api/v1/alerts/{firing.id}",
    }
    for s in (30, 60, 90):
        state, *_ = step(state, [], T0 + timedelta(seconds=s))
    resolved = next(a for a in state.closed if a.id == firing.id)
    assert postable(resolved, T0 + timedelta(hours=1), 60.0, "http://vsmmon:8000")["endsAt"] == "2026-12-03T12:01:30Z"
    assert labels(resolved) == labels(firing)  # one identity from firing to resolved


def test_pending_alerts_are_not_posted_and_the_endpoint_is_the_v2_api() -> None:
    warning = Signal("bottleneck", "w1@h", Severity.WARNING, {"factor": "memory"}, "w1@h: memory 0.40")
    state, *_ = step(AlertState(), [warning], T0)  # a warning waits 30 s before it fires
    (pending,) = state.alerts.values()
    assert pending.status is AlertStatus.PENDING
    assert batch([pending], T0, 60.0, "http://vsmmon:8000") == []
    with pytest.raises(ValueError, match="only firing, acknowledged or resolved"):
        postable(pending, T0, 60.0, "http://vsmmon:8000")
    assert "system" not in labels(pending)  # an agent's alert is about no one system
    assert endpoint("http://am:9093/") == "http://am:9093/api/v2/alerts"


def test_an_alert_that_cleared_while_pending_is_not_posted_and_an_end_never_precedes_the_start() -> None:
    from dataclasses import replace

    warning = Signal("bottleneck", "w1@h", Severity.WARNING, {"factor": "memory"}, "w1@h: memory 0.40")
    state, *_ = step(AlertState(), [warning], T0)
    closed = []
    for s in (10, 20, 90):
        state, *_ = step(state, [], T0 + timedelta(seconds=s))
        closed += state.closed
    (cleared,) = closed
    assert cleared.status is AlertStatus.RESOLVED
    assert cleared.fired_at is None
    assert batch([cleared], T0, 60.0, "http://vsmmon:8000") == []
    fired = replace(cleared, fired_at=T0 + timedelta(seconds=5), resolved_at=T0 + timedelta(seconds=4))
    body = postable(fired, T0, 60.0, "http://vsmmon:8000")
    assert body["endsAt"] == body["startsAt"] == "2026-12-03T12:00:05Z"  # Alertmanager refuses an end before it
