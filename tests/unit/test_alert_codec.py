"""JSON of the alert manager's state and messages: lossless, and refusing malformed input by name."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.alerts import manager, model
from vsmmon.alerts.book import Ledger, Report, ledger_from_json, ledger_to_json
from vsmmon.alerts.codec import (
    notification_from_dict,
    notification_to_dict,
    signal_from_dict,
    signal_to_dict,
    signals_from_list,
    state_from_dict,
    state_to_dict,
)
from vsmmon.alerts.model import Severity, Signal, Silence
from vsmmon.errors import InvalidInput

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SIGNALS = [
    Signal("viability", "system", Severity.CRITICAL, summary="viability 0.40", system_wide=True),
    Signal("bottleneck", "w1@h", Severity.WARNING, {"factor": "memory"}, "w1@h: memory 0.5", resource=True),
]


def busy_state() -> tuple[model.AlertState, list[model.Notification]]:
    silence = Silence(uuid.uuid4(), {"target": "w9@h"}, NOW + timedelta(hours=1), "ops", "maintenance")
    state = manager.add_silence(model.AlertState(), silence)
    state, notes, _, _ = manager.step(state, SIGNALS, NOW)
    state, _, _, _ = manager.step(state, SIGNALS, NOW + timedelta(seconds=31))
    state, _ = manager.acknowledge(state, next(iter(state.alerts.values())).fingerprint, "ops", NOW)
    return state, notes


def test_state_round_trips_through_json() -> None:
    state, _ = busy_state()
    again = state_from_dict(json.loads(json.dumps(state_to_dict(state))))
    assert again.alerts == state.alerts
    assert again.silences == state.silences
    assert again.sent == state.sent
    assert again.last_sent == state.last_sent


def test_notifications_and_signals_round_trip() -> None:
    _, notes = busy_state()
    for n in notes:
        assert notification_from_dict(json.loads(json.dumps(notification_to_dict(n)))) == n
    for s in SIGNALS:
        assert signal_from_dict(signal_to_dict(s)) == s


def test_the_ledger_keeps_each_source_report() -> None:
    state, _ = busy_state()
    ledger = Ledger(state, {"health": Report(NOW, 90.0, tuple(SIGNALS))})
    again = ledger_from_json(ledger_to_json(ledger))
    assert again.sources == ledger.sources
    assert again.state.alerts == state.alerts
    assert again.holding(NOW + timedelta(seconds=90)) == SIGNALS
    assert again.holding(NOW + timedelta(seconds=91)) == []
    assert again.sources == {}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "x", "target": "t"}, "signals[0].severity"),
        ({"type": "x", "target": "t", "severity": "fatal"}, "signals[0].severity"),
        ({"type": "", "target": "t", "severity": "info"}, "signals[0].type"),
        ({"type": "x", "target": 5, "severity": "info"}, "signals[0].target"),
        ({"type": "x", "target": "t", "severity": "info", "labels": {"alertname": "y"}}, "signals[0].labels"),
        ({"type": "x", "target": "t", "severity": "info", "resource": "yes"}, "signals[0].resource"),
        ({"type": "x", "target": "t", "severity": "info", "summary": "s" * 5000}, "signals[0].summary"),
        ("not an object", "signals[0]"),
    ],
)
def test_malformed_signals_are_refused_by_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        signals_from_list([raw])
    assert caught.value.field == field


def test_each_alert_types_budget_survives_the_ledger_and_an_older_ledger_reads_without_one() -> None:
    t = datetime(2026, 12, 3, 12, tzinfo=UTC)
    state = model.AlertState(sent=(t,), sent_by_type={"bottleneck": (t,)})
    again = state_from_dict(json.loads(json.dumps(state_to_dict(state))))
    assert again.sent_by_type == {"bottleneck": (t,)}
    older = state_to_dict(state)
    del older["sent_by_type"]
    assert state_from_dict(older).sent_by_type == {}
