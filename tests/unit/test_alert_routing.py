"""Routes, signals from the health and analysis stages, and the Alertmanager webhook message (version 4)."""

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vsmmon.alerts.manager import routes_for, step
from vsmmon.alerts.model import AlertPolicy, AlertState, Notification, Severity, Signal
from vsmmon.alerts.routing import (
    ZERO_TIME,
    alertmanager_payload,
    rfc3339,
    signal_from_recommendation,
    signals_from_assessment,
    signals_from_pain,
)
from vsmmon.analyse.recommend import Recommendation
from vsmmon.health.assessment import HealthAssessment, pain
from vsmmon.health.systems import QueueFlow, SystemHealth
from vsmmon.health.viability import HealthState, ViabilityState
from vsmmon.models import Bottleneck, Pain, PainCondition

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def fire(*signals: Signal, webhook: bool = False) -> list[Notification]:
    _, notes, _, _ = step(AlertState(), signals, T0, AlertPolicy(webhook=webhook))
    return notes


@pytest.mark.parametrize(
    ("severity", "resource", "system_wide", "level", "webhook", "routes"),
    [
        ("warning", False, False, 0, False, ("dashboard",)),
        ("critical", False, False, 0, False, ("dashboard",)),
        ("warning", True, False, 0, False, ("dashboard", "s3")),
        ("warning", False, True, 0, False, ("dashboard",)),  # system-wide, not critical
        ("critical", False, True, 0, False, ("dashboard", "s5")),
        ("critical", True, True, 0, True, ("dashboard", "s3", "s5", "webhook")),
        ("warning", True, False, 1, False, ("dashboard", "s3", "s5")),  # escalated: upward
        ("info", False, False, 2, True, ("dashboard", "s5", "webhook")),
    ],
)
def test_routing_table(
    severity: str, resource: bool, system_wide: bool, level: int, webhook: bool, routes: tuple[str, ...]
) -> None:
    [note] = fire(Signal("t", "x", Severity.CRITICAL, resource=resource, system_wide=system_wide))
    alert = replace(note.alert, severity=Severity(severity), escalation_level=level)
    assert routes_for(alert, webhook) == routes


def test_the_webhook_route_follows_the_policy_flag() -> None:
    assert fire(Signal("t", "x", Severity.CRITICAL), webhook=True)[0].routes == ("dashboard", "webhook")


def test_rfc3339_is_utc_with_a_z() -> None:
    assert rfc3339(T0) == "2026-11-26T12:00:00Z"
    assert rfc3339(datetime(2026, 11, 26, 13, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-11-26T12:00:00.250000Z"
    )
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 11, 26))


def test_payload_of_firing_alerts_has_every_version_4_field() -> None:
    notes = fire(
        Signal("queue_backlog", "q1", Severity.CRITICAL, {"queue": "q1"}, "q1 backlog 900", resource=True),
        Signal("queue_backlog", "q2", Severity.CRITICAL, {"queue": "q2"}, "q2 backlog 50", resource=True),
    )
    payload = alertmanager_payload(notes, "ops", "http://vsmmon:8000")
    assert json.loads(json.dumps(payload)) == payload  # plain JSON
    assert set(payload) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                            "commonLabels", "commonAnnotations", "externalURL", "alerts"}  # fmt: skip
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "ops"
    assert payload["externalURL"] == "http://vsmmon:8000"
    assert payload["truncatedAlerts"] == 0
    assert payload["groupLabels"] == {"alertname": "queue_backlog"}
    assert payload["groupKey"] == '{}:{alertname="queue_backlog"}'
    assert payload["commonLabels"] == {"alertname": "queue_backlog", "severity": "critical"}
    assert payload["commonAnnotations"] == {}
    alerts = payload["alerts"]
    assert isinstance(alerts, list)
    first = alerts[0]
    assert set(first) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert first["status"] == "firing"
    assert first["labels"]["alertname"] == "queue_backlog"
    assert first["labels"]["target"] in {"q1", "q2"}
    assert first["labels"]["queue"] == first["labels"]["target"]
    assert first["annotations"]["summary"].startswith(first["labels"]["target"])
    assert first["startsAt"] == "2026-11-26T12:00:00Z"
    assert first["endsAt"] == ZERO_TIME
    assert first["generatorURL"] == "http://vsmmon:8000"
    assert first["fingerprint"] in {n.alert.fingerprint for n in notes}


def test_payload_of_a_recovery_is_resolved_with_its_end_time() -> None:
    state, _, _, _ = step(AlertState(), [Signal("viability", "system", Severity.CRITICAL, system_wide=True)], T0)
    for s in (30, 60, 90):
        state, notes, _, _ = step(state, [], T0 + timedelta(seconds=s))
    payload = alertmanager_payload(notes, "ops", "http://vsmmon:8000", generator_url="http://vsmmon:8000/alerts")
    [alert] = payload["alerts"]  # type: ignore[misc]
    assert payload["status"] == alert["status"] == "resolved"
    assert alert["startsAt"] == "2026-11-26T12:00:00Z"
    assert alert["endsAt"] == "2026-11-26T12:01:30Z"
    assert RFC3339.fullmatch(alert["endsAt"])
    assert alert["generatorURL"] == "http://vsmmon:8000/alerts"
    assert payload["commonAnnotations"] == {"summary": ""}


def test_payload_truncates_like_max_alerts_and_refuses_an_empty_group() -> None:
    notes = fire(*(Signal("t", f"x{i}", Severity.CRITICAL) for i in range(5)))
    payload = alertmanager_payload(notes, "ops", "http://v", max_alerts=2)
    assert (len(payload["alerts"]), payload["truncatedAlerts"]) == (2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        alertmanager_payload([], "ops", "http://v")


def assessment(**kw: object) -> HealthAssessment:
    base = HealthAssessment(
        at=T0, agents=(), systems={"S1": SystemHealth("S1", 0.3, ()), "S3": SystemHealth("S3", 0.7, ())},
        states={"S1": HealthState.UNHEALTHY, "S2": HealthState.HEALTHY, "S3": HealthState.DEGRADED},
        overall=0.5, viability=0.45, viability_state=ViabilityState.CRITICAL, alert=None, algedonic=(),
        bottlenecks=(), indicators={}, expected_capacity=4.0,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_signals_from_an_assessment_are_the_conditions_holding_now() -> None:
    necks = (Bottleneck("w1", "memory", 0.42), Bottleneck("queue q1", "backlog", 10.0))
    signals = signals_from_assessment(assessment(bottlenecks=necks))
    got = {(s.type, s.target, s.severity, s.resource, s.system_wide, tuple(s.labels.items())) for s in signals}
    assert got == {
        ("system_health", "S1", "critical", False, False, ()),
        ("system_health", "S3", "warning", True, False, ()),
        ("viability", "system", "critical", False, True, ()),
        ("bottleneck", "w1", "warning", True, False, (("factor", "memory"),)),
        ("bottleneck", "queue q1", "warning", True, False, (("factor", "backlog"),)),
    }
    assert {"S1 unhealthy (score 0.30)", "w1: memory 0.42", "queue q1: backlog 10 not draining"} <= {
        s.summary for s in signals
    }
    assert signals_from_assessment(assessment(states={}, viability_state=ViabilityState.NORMAL)) == []


def test_algedonic_signals_go_to_s5_with_fingerprints_that_ignore_the_numbers() -> None:
    def pains(backlog: float, error_rate: float, viability: float) -> list[Signal]:
        queues = [QueueFlow("q1", backlog, 1.0, 0.0), QueueFlow("q2", backlog, 1.0, 0.0)]
        messages = pain(queues, {"error_rate": error_rate}, ["connection refused"], viability, None)
        return signals_from_assessment(assessment(states={}, viability_state=ViabilityState.NORMAL, algedonic=messages))

    first, later = pains(10, 0.6, 0.5), pains(250, 0.9, 0.4)
    assert [s.fingerprint for s in first] == [s.fingerprint for s in later]
    assert [(s.target, s.labels["condition"]) for s in first] == [
        ("queue q1", "no_consumer"), ("queue q2", "no_consumer"), ("broker", "unreachable"), ("fleet", "error_rate")
    ]  # fmt: skip
    assert all(s.severity is Severity.CRITICAL and s.system_wide for s in first)
    assert all(n.routes == ("dashboard", "s5") for n in fire(*first))
    assert [s.summary for s in first] == [
        "queue q1 has 10 messages and no live consumer", "queue q2 has 10 messages and no live consumer",
        "broker unreachable: connection refused", "fleet error rate 60% over 50 %",
    ]  # fmt: skip


# The fingerprints the message-parsing router gave each condition, so open alerts keep their identity.
PAIN_BEFORE = [
    (Pain(PainCondition.NO_CONSUMER, "queue orphan", 7.0), "queue orphan", "54362021dd485f38"),
    (Pain(PainCondition.UNREACHABLE, "broker", detail="broker:127.0.0.1:6379: connection refused"), "broker",
     "c0142af56d33e382"),
    (Pain(PainCondition.ERROR_RATE, "fleet", 0.6), "fleet", "0c36e59698fd3566"),
    (Pain(PainCondition.FAST_DROP, "viability", 0.5, "from 0.90"), "viability", "fa80a16af4227ec4"),
    (Pain(PainCondition.CONTROL_FAILED, "w1@h", 60.0, 'pool_grow {"n": 1}'), "w1@h", "954d39cfaea12a7d"),
]  # fmt: skip


@pytest.mark.parametrize(("p", "target", "fingerprint"), PAIN_BEFORE, ids=[p.condition for p, _, _ in PAIN_BEFORE])
def test_each_pain_condition_keeps_the_target_labels_and_fingerprint_it_had(
    p: Pain, target: str, fingerprint: str
) -> None:
    (signal,) = signals_from_pain([p])
    assert (signal.type, signal.target, signal.labels) == ("algedonic", target, {"condition": str(p.condition)})
    assert signal.fingerprint == fingerprint
    assert (signal.severity, signal.system_wide, signal.resource) == (Severity.CRITICAL, True, False)
    assert signal.summary == p.message


def test_every_pain_condition_has_a_pinned_fingerprint() -> None:
    assert {p.condition for p, _, _ in PAIN_BEFORE} == set(PainCondition)


def test_bottlenecks_keep_the_fingerprints_they_had() -> None:
    necks = (Bottleneck("w1@h", "memory", 0.5), Bottleneck("w1@h", "queue", 0.0), Bottleneck("queue q1", "backlog", 5))
    signals = signals_from_assessment(assessment(states={}, viability_state=ViabilityState.NORMAL, bottlenecks=necks))
    assert [s.fingerprint for s in signals] == ["9e6f5ea1320ccdde", "675a55ac663b92d1", "399e178bbae3a970"]


def test_rewording_a_message_changes_the_summary_never_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    pains = [p for p, _, _ in PAIN_BEFORE]
    necks = [Bottleneck("w1@h", "memory", 0.5), Bottleneck("queue q1", "backlog", 5)]

    def signals() -> list[Signal]:
        return signals_from_pain(pains) + signals_from_assessment(
            assessment(states={}, viability_state=ViabilityState.NORMAL, bottlenecks=tuple(necks))
        )

    before = signals()
    monkeypatch.setattr(Pain, "message", property(lambda p: f"reworded: {p.condition} {p.value} {p.detail}!"))
    monkeypatch.setattr(Bottleneck, "message", property(lambda b: f"reworded: {b.factor} {b.value}!"))
    after = signals()
    assert all(s.summary.startswith("reworded: ") for s in after)
    assert [s.summary for s in after] != [s.summary for s in before]
    assert [s.fingerprint for s in after] == [s.fingerprint for s in before]


def test_a_resource_adjustment_recommendation_is_an_info_alert_for_s3_until_it_expires() -> None:
    rec = Recommendation("resource_adjustment", "q1", {"command": "pool_grow", "n": 2}, "grow", 0.9,
                         T0 + timedelta(minutes=15))  # fmt: skip
    signal = signal_from_recommendation(rec, T0)
    assert signal is not None
    assert (signal.type, signal.target, signal.severity, signal.labels) == (
        "resource_adjustment", "q1", Severity.INFO, {"command": "pool_grow"}
    )  # fmt: skip
    assert signal.resource
    assert signal_from_recommendation(rec, T0 + timedelta(minutes=15)) is None
    assert signal_from_recommendation(replace(rec, kind="optimization"), T0) is None
