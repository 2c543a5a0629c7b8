"""S5's decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from vsmmon.alerts import manager, model
from vsmmon.alerts.model import Alert, Severity, Signal
from vsmmon.control.s5 import Standing, decide

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def firing(signal: Signal) -> Alert:
    _, notes, _, _ = manager.step(model.AlertState(), [signal], NOW)
    return notes[0].alert


VIABILITY = firing(Signal("viability", "system", Severity.CRITICAL, summary="viability 0.40", system_wide=True))
FAILED = firing(Signal("algedonic", "w1@h", Severity.CRITICAL, {"condition": "control_failed"}, system_wide=True))


def test_critical_viability_without_protective_queues_is_notify() -> None:
    v = decide(VIABILITY, "firing", Standing(), protective_queues=(), hold_on_control_failure=True)
    assert v.decision == "notify"
    assert "viability 0.40" in v.reason


def test_critical_viability_with_protective_queues_starts_protective_mode_once() -> None:
    v = decide(VIABILITY, "firing", Standing(), protective_queues=("reports",), hold_on_control_failure=True)
    assert v.decision == "protective_mode"
    assert "reports" in v.reason
    again = decide(VIABILITY, "reminder", Standing(protective_for=VIABILITY.fingerprint),
                   protective_queues=("reports",), hold_on_control_failure=True)  # fmt: skip
    assert again.decision == "notify"


def test_failed_control_holds_s3_unless_configured_off() -> None:
    assert decide(FAILED, "firing", Standing(), protective_queues=(), hold_on_control_failure=True).decision == "hold"
    off = decide(FAILED, "firing", Standing(), protective_queues=(), hold_on_control_failure=False)
    assert off.decision == "notify"


def test_recovery_lifts_only_what_its_alert_started() -> None:
    standing = Standing(protective_for=VIABILITY.fingerprint, hold_for=FAILED.fingerprint)
    v = decide(VIABILITY, "recovery", standing, protective_queues=("reports",), hold_on_control_failure=True)
    assert (v.decision, v.lifts) == ("notify", ("protective_mode",))
    v = decide(FAILED, "recovery", standing, protective_queues=(), hold_on_control_failure=True)
    assert v.lifts == ("hold",)
