"""The alert manager on an injected clock: pending, hysteresis, cooldown, cap, silences, ack, escalation, resolve."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsmmon.alerts.manager import (
    acknowledge,
    add_silence,
    changed_alerts,
    expire_silences,
    remove_silence,
    resolve,
    step,
)
from vsmmon.alerts.model import (
    Alert,
    AlertPolicy,
    AlertState,
    AlertStatus,
    Event,
    Notification,
    Severity,
    Signal,
    Silence,
    Suppressed,
    fingerprint,
)
from vsmmon.errors import NotFound

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CRIT, WARN, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
MIGRATION = Path(__file__).parents[2] / "alembic" / "versions" / "0004_partitions_and_schema.py"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sig(
    target: str = "S1",
    severity: Severity = CRIT,
    *,
    labels: Mapping[str, str] | None = None,
    resource: bool = False,
    system_wide: bool = False,
) -> Signal:
    summary = f"{target} is {severity}"
    return Signal("system_health", target, severity, labels or {}, summary, resource, system_wide)


@dataclass
class Run:
    """Drives `step` and keeps everything it returned."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    state: AlertState = field(default_factory=AlertState)
    notifications: list[Notification] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __call__(self, t: float, *signals: Signal, held: tuple[Signal, ...] = ()) -> list[Notification]:
        self.state, notes, suppressed, events = step(self.state, signals, at(t), self.policy, held=held)
        self.notifications += notes
        self.suppressed += suppressed
        self.events += events
        return notes

    def alert(self, target: str = "S1") -> Alert:
        return next(a for a in self.state.alerts.values() if a.target == target)

    def kinds(self) -> list[tuple[float, str]]:
        return [((n.at - T0).total_seconds(), n.kind) for n in self.notifications]


def test_fingerprint_is_type_target_and_labels_in_any_order_and_not_severity() -> None:
    fp = fingerprint("queue", "q1", {"a": "1", "b": "2"})
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert fp == fingerprint("queue", "q1", {"b": "2", "a": "1"})
    assert len({fp, fingerprint("queue", "q2", {"a": "1", "b": "2"}), fingerprint("queue", "q1", {"a": "1"}),
                fingerprint("other", "q1", {"a": "1", "b": "2"})}) == 4  # fmt: skip
    assert sig("S1", WARN).fingerprint == sig("S1", CRIT).fingerprint


@pytest.mark.parametrize("label", ["severity", "alertname", "target", "type", "fingerprint", "bad-name", "1x"])
def test_signals_refuse_reserved_and_non_prometheus_label_names(label: str) -> None:
    with pytest.raises(ValueError, match="label names"):
        Signal("t", "x", WARN, {label: "v"})


def test_a_critical_fires_and_notifies_in_the_check_that_sees_it() -> None:
    run = Run()
    [note] = run(0, sig())
    assert note.kind == "firing"
    assert note.alert.status is AlertStatus.FIRING
    assert note.alert.fired_at == note.alert.started_at == at(0)
    assert [e.event for e in run.events] == ["firing", "notified"]
    assert changed_alerts(run.state, at(0)) == (run.alert(),)


def test_a_warning_fires_only_after_its_pending_period_and_a_vanishing_one_never_does() -> None:
    run = Run()
    assert run(0, sig("S1", WARN), sig("S2", WARN)) == []
    assert run.alert("S1").status is AlertStatus.PENDING
    [note] = run(30, sig("S1", WARN))  # S2 vanished while pending: closed without a word
    assert note.alert.target == "S1"
    assert note.alert.fired_at == at(30)
    assert note.alert.started_at == at(0)
    [closed] = run.state.closed
    assert closed.target == "S2"
    assert closed.status is AlertStatus.RESOLVED
    assert run.suppressed == []
    assert [(e.event, e.detail.get("by")) for e in run.events if e.alert_id == closed.id] == [
        ("resolved", "cleared while pending")
    ]


def test_hysteresis_a_signal_flapping_inside_the_clear_period_neither_resolves_nor_refires() -> None:
    run = Run()
    run(0, sig())
    first = run.alert()
    for t in range(30, 601, 30):  # absent, present, absent, ... every 30 s; the clear period is 60 s
        run(t, *([sig()] if t % 60 == 0 else []))
    assert run.kinds() == [(0, "firing")]
    assert not any(e.event in {"resolved", "firing"} for e in run.events[2:])
    assert run.alert().id == first.id
    assert run(630) == []
    assert run(660) == []
    assert run.alert().status is AlertStatus.FIRING  # clear for 30 s only
    [recovery] = run(690)
    assert recovery.kind == "recovery"
    assert recovery.alert.resolved_at == at(690)


def test_a_firing_alert_lives_through_one_missed_report_and_clears_from_the_second() -> None:
    run = Run()
    run(0, sig())
    first = run.alert()
    for t in (60, 90, 120):  # its source's report at 60 s no longer names it; the next comes at 180 s
        assert run(t, held=(sig(),)) == []
        assert run.alert().clear_since is None
    assert run(180) == []  # the second report without it: now it clears
    assert run.alert().clear_since == at(180)
    assert run(210) == []
    [recovery] = run(240)
    assert recovery.kind == "recovery"
    assert recovery.alert.id == first.id
    assert run.kinds() == [(0, "firing"), (240, "recovery")]


def test_a_pending_alert_is_not_held_a_one_report_blip_never_fires() -> None:
    run = Run()
    assert run(0, sig("S1", WARN)) == []
    assert run(30, held=(sig("S1", WARN),)) == []  # the pending period ran out as the source stopped naming it
    assert run.state.alerts == {}
    [closed] = run.state.closed
    assert (closed.status, closed.fired_at) == (AlertStatus.RESOLVED, None)
    assert run(60, sig("S1", WARN), held=()) == []  # back: a new pending alert, not a firing one
    assert run.alert().status is AlertStatus.PENDING
    assert run.notifications == []


def test_an_alert_resolves_by_itself_once_clear_and_sends_a_recovery_on_the_same_routes() -> None:
    run = Run()
    [firing] = run(0, sig(resource=True))
    assert run(30) == []
    assert run.alert().clear_since == at(30)
    assert run(60) == []
    [recovery] = run(90)
    assert recovery.kind == "recovery"
    assert recovery.routes == firing.routes == ("dashboard", "s3")
    assert recovery.alert.status is AlertStatus.RESOLVED
    assert recovery.alert.id == firing.alert.id
    assert run.state.alerts == {}
    assert changed_alerts(run.state, at(90)) == (recovery.alert,)
    assert [e.event for e in run.events] == ["firing", "notified", "resolved", "notified"]


def test_cooldown_the_same_fingerprint_is_not_renotified_within_300_s_and_the_held_one_comes_after() -> None:
    run = Run()
    run(0, sig())
    for t in (30, 60, 90):
        run(t)  # resolves at 90, recovery sent
    run(120, sig())  # fires again: a new alert, same fingerprint
    assert run.alert().id != run.notifications[0].alert.id
    assert [(s.kind, s.reason, s.at) for s in run.suppressed] == [("firing", "cooldown", at(120))]
    for t in range(150, 300, 30):
        assert run(t, sig()) == []
    assert len(run.suppressed) == 1  # held for five checks, recorded once
    [late] = run(300, sig())
    assert (late.kind, late.alert.id) == ("firing", run.alert().id)
    assert run.kinds() == [(0, "firing"), (90, "recovery"), (300, "firing")]


def test_a_still_firing_alert_is_renotified_only_as_the_reminder_policy_says() -> None:
    never = Run(AlertPolicy(reminder_after_s=None, escalate_after_s=10**6))
    every_10_min = Run(AlertPolicy(reminder_after_s=600, escalate_after_s=10**6))
    for run in (never, every_10_min):
        for t in range(0, 1500, 30):
            run(t, sig())
    assert never.kinds() == [(0, "firing")]
    assert every_10_min.kinds() == [(0, "firing"), (600, "reminder"), (1200, "reminder")]
    hasty = Run(AlertPolicy(reminder_after_s=120, escalate_after_s=10**6))
    for t in range(0, 330, 30):
        hasty(t, sig())
    assert hasty.kinds() == [(0, "firing"), (300, "reminder")]  # the cooldown outranks a short reminder
    assert [(s.kind, s.reason, s.at) for s in hasty.suppressed] == [("reminder", "cooldown", at(120))]


def test_a_worse_condition_resolves_the_lesser_alert_and_fires_a_new_one_at_once() -> None:
    """One severity per alert instance (receivers key on labels): warning -> critical is the warning's
    recovery and a new critical alert in the same step, not a repeat (the cooldown does not hold it)."""
    run = Run()
    run(0, sig("S1", WARN))
    [warning] = run(30, sig("S1", WARN))
    recovery, critical = run(60, sig("S1", CRIT))  # inside the warning's cooldown, but worse
    assert (recovery.kind, recovery.alert.id, recovery.alert.severity) == ("recovery", warning.alert.id, WARN)
    assert (critical.kind, critical.alert.severity, critical.alert.status) == ("firing", CRIT, AlertStatus.FIRING)
    assert critical.alert.id != warning.alert.id
    assert critical.alert.fingerprint == warning.alert.fingerprint  # still one open alert for the condition
    assert list(run.state.alerts) == [critical.alert.fingerprint]
    ended = [(e.event, e.detail.get("by")) for e in run.events if e.alert_id == warning.alert.id]
    assert ("resolved", "became critical") in ended


def test_a_better_condition_clears_the_worse_alert_first_then_the_lesser_one_opens() -> None:
    """critical -> warning: the critical clears like an absent signal (60 s), resolves, and only then the
    warning opens and fires after its pending period; nothing fires twice meanwhile."""
    run = Run()
    [critical] = run(0, sig("S1", CRIT))
    assert run(30, sig("S1", WARN)) == []  # clearing: the critical is still open
    assert run.alert("S1").id == critical.alert.id
    [recovery] = run(90, sig("S1", WARN))  # clear for 60 s: resolved; a pending warning opens
    assert (recovery.kind, recovery.alert.id) == ("recovery", critical.alert.id)
    pending = run.alert("S1")
    assert (pending.severity, pending.status) == (WARN, AlertStatus.PENDING)
    assert run(120, sig("S1", WARN)) == []  # fires, but a lesser condition inside the cooldown is held ...
    assert run.alert("S1").status is AlertStatus.FIRING
    assert [(s.kind, s.reason) for s in run.suppressed] == [("firing", "cooldown")]
    [warning] = run(300, sig("S1", WARN))  # ... and told once the cooldown of the critical has passed
    assert (warning.kind, warning.alert.severity, warning.alert.id) == ("firing", WARN, pending.id)


def test_a_worse_condition_back_within_the_clear_period_keeps_the_worse_alert() -> None:
    run = Run()
    [critical] = run(0, sig("S1", CRIT))
    assert run(30, sig("S1", WARN)) == []
    assert run(60, sig("S1", CRIT)) == []  # back before it cleared: the same alert, no new notification
    assert run.alert("S1").id == critical.alert.id
    assert run.alert("S1").clear_since is None


def test_the_21st_warning_in_an_hour_is_held_recorded_and_sent_when_the_window_frees() -> None:
    # escalations would be capped too: keep them out of the count; one alert type may use the whole cap here
    run = Run(AlertPolicy(escalate_after_s=10**6, type_share=1.0))
    warnings = [sig(f"w{i:02d}", WARN) for i in range(21)]
    run(0, *warnings)
    assert len(run(30, *warnings)) == 20
    [held] = run.suppressed
    assert (held.kind, held.reason, held.at) == ("firing", "hourly_cap", at(30))
    for t in range(60, 3630, 30):
        assert run(t, *warnings) == []
    assert len(run.suppressed) == 1
    [late] = run(3630, *warnings)  # the deliveries at 30 leave the 3600 s window
    assert late.alert.fingerprint == held.fingerprint
    assert "suppressed" in [e.event for e in run.events if e.alert_id == held.alert_id]


def test_a_critical_past_the_cap_is_delivered_flagged_over_cap_and_uses_the_shared_budget() -> None:
    run = Run(AlertPolicy(type_share=1.0))
    warnings = [sig(f"w{i:02d}", WARN) for i in range(20)]
    run(0, *warnings)
    assert len(run(30, *warnings)) == 20
    [critical] = run(60, *warnings, sig("pain", CRIT, system_wide=True))
    assert critical.over_cap
    assert critical.routes == ("dashboard", "s5")
    assert run.events[-1].detail["over_cap"] is True
    criticals_first = Run(AlertPolicy(max_per_hour=3, type_share=1.0))
    criticals_first(0, *[sig(f"c{i}", CRIT) for i in range(3)], sig("w", WARN))
    criticals_first(30, *[sig(f"c{i}", CRIT) for i in range(3)], sig("w", WARN))
    assert sorted(n.alert.target for n in criticals_first.notifications) == ["c0", "c1", "c2"]
    assert [(s.reason, s.fingerprint) for s in criticals_first.suppressed] == [("hourly_cap", sig("w").fingerprint)]


def test_one_flooding_alert_type_cannot_use_up_the_budget_of_the_others() -> None:
    """5,000 forged agents' bottlenecks once used up the hourly cap and real warnings were held."""
    run = Run(AlertPolicy(escalate_after_s=10**6))  # cap 20, at most 10 of one type
    flood = [Signal("bottleneck", f"forged-{i:03d}", WARN, {"factor": "memory"}, resource=True) for i in range(40)]
    run(0, *flood)
    assert len(run(30, *flood)) == 10  # the bottlenecks' own budget
    real = sig("S3", WARN)
    assert run(60, *flood, real) == []  # pending, as every warning, for 30 s
    [delivered] = run(90, *flood, real)  # a real system warning still goes out
    assert delivered.alert.fingerprint == real.fingerprint
    assert {s.reason for s in run.suppressed} == {"hourly_cap"}
    assert len(run.state.sent) == 11
    assert len(run.state.sent_by_type["bottleneck"]) == 10


def test_silences_mute_matching_alerts_record_it_and_stop_when_they_expire() -> None:
    silence = Silence(uuid4(), {"target": "S2", "zone": "eu"}, at(600), "ops", "maintenance")
    run = Run(state=add_silence(AlertState(), silence))
    muted, other = sig("S2", labels={"zone": "eu"}), sig("S2", labels={"zone": "us"})
    notes = run(0, muted, other)
    assert [n.alert.labels for n in notes] == [{"zone": "us"}]
    assert [(s.reason, s.fingerprint) for s in run.suppressed] == [("silenced", muted.fingerprint)]
    for t in range(30, 600, 30):
        assert run(t, muted, other) == []
    assert len(run.suppressed) == 1
    [late] = run(600, muted, other)  # expired: no longer matches
    assert late.alert.fingerprint == muted.fingerprint
    assert run.state.silences == ()


def test_a_recovery_goes_out_when_its_firing_did_and_is_recorded_when_it_did_not() -> None:
    run = Run()
    run(0, sig("S1"))
    run.state = add_silence(run.state, Silence(uuid4(), {"severity": "critical"}, at(10**5), "ops"))
    run(30, sig("S2"))  # fires under the silence
    for t in (60, 90, 120):
        run(t)
    assert [(n.alert.target, n.kind) for n in run.notifications] == [("S1", "firing"), ("S1", "recovery")]
    assert [(s.kind, s.reason) for s in run.suppressed] == [("firing", "silenced"), ("recovery", "silenced")]
    unsent = Run(AlertPolicy(max_per_hour=1))
    unsent(0, sig("a", WARN), sig("b", WARN))
    unsent(30, sig("a", WARN), sig("b", WARN))
    for t in (60, 90, 120):
        unsent(t)
    assert [(s.kind, s.reason) for s in unsent.suppressed] == [("firing", "hourly_cap"), ("recovery", "not_notified")]


def test_silence_housekeeping() -> None:
    s1 = Silence(uuid4(), {"type": "viability"}, at(60), "ops")
    s2 = Silence(uuid4(), {"alertname": "algedonic"}, at(600), "ops")
    state = add_silence(add_silence(AlertState(), s1), s2)
    assert expire_silences(state, at(60)).silences == (s2,)
    assert remove_silence(state, s2.id).silences == (s1,)
    assert add_silence(state, replace(s1, comment="longer")).silences[-1].comment == "longer"
    with pytest.raises(ValueError, match="at least one matcher"):
        Silence(uuid4(), {}, at(60), "ops")


def test_an_acknowledged_alert_neither_escalates_nor_reminds_but_still_resolves_with_a_recovery() -> None:
    run = Run(AlertPolicy(reminder_after_s=600, escalate_after_s=900))
    run(0, sig())
    run.state, events = acknowledge(run.state, run.alert().fingerprint, "ops", at(100))
    assert [(e.event, e.detail) for e in events] == [("acknowledged", {"by": "ops"})]
    assert (run.alert().status, run.alert().acknowledged_by) == (AlertStatus.ACKNOWLEDGED, "ops")
    assert acknowledge(run.state, str(run.alert().id), "again", at(110)) == (run.state, [])
    for t in range(130, 5 * 3600, 30):
        run(t, sig())
    assert run.kinds() == [(0, "firing")]
    assert run.alert().escalation_level == 0
    assert not any(e.event == "escalated" for e in run.events)
    run(18000)
    [recovery] = run(18060)
    assert recovery.kind == "recovery"
    with pytest.raises(NotFound):
        acknowledge(run.state, recovery.alert.id, "ops", at(18100))


def test_a_worse_condition_is_a_new_alert_the_acknowledgement_does_not_cover() -> None:
    run = Run()
    run(0, sig("S1", WARN))
    run(30, sig("S1", WARN))
    run.state, _ = acknowledge(run.state, run.alert().id, "ops", at(40))
    _, note = run(60, sig("S1", CRIT))
    assert note.alert.status is AlertStatus.FIRING
    assert note.alert.acknowledged_by is None
    assert note.alert.escalate_at == at(960)


def test_an_unacknowledged_alert_escalates_each_timeout_and_is_rerouted_to_s5() -> None:
    run = Run(AlertPolicy(escalate_after_s=900, max_escalation_level=2, reminder_after_s=None))
    [first] = run(0, sig(resource=True))
    assert first.routes == ("dashboard", "s3")
    for t in range(30, 3000, 30):
        run(t, sig(resource=True))
    assert run.kinds() == [(0, "firing"), (900, "escalation"), (1800, "escalation")]
    assert [n.routes for n in run.notifications[1:]] == [("dashboard", "s3", "s5")] * 2
    assert [e.detail["level"] for e in run.events if e.event == "escalated"] == [1, 2]
    assert run.alert().escalation_level == 2  # the maximum: no third


def test_a_manual_resolve_sends_the_recovery_and_a_condition_still_there_opens_a_new_alert() -> None:
    run = Run()
    run(0, sig())
    old = run.alert()
    run.state, notes, held, events = resolve(run.state, old.fingerprint, "ops", at(100), run.policy)
    assert [(n.kind, n.alert.resolved_at) for n in notes] == [("recovery", at(100))]
    assert (held, [e.event for e in events]) == ([], ["resolved", "notified"])
    assert events[0].detail == {"by": "ops"}
    assert run.state.closed == (notes[0].alert,)
    run(120, sig())
    assert run.alert().id != old.id
    assert [s.reason for s in run.suppressed] == ["cooldown"]
    with pytest.raises(NotFound):
        resolve(run.state, "no-such-alert", "ops", at(130))


def test_a_retried_step_gives_the_same_result() -> None:
    state = AlertState()
    assert step(state, [sig(), sig("S2", WARN)], at(0)) == step(state, [sig(), sig("S2", WARN)], at(0))


def test_duplicate_signals_merge_to_the_worst_with_their_routes() -> None:
    _, notes, _, _ = step(AlertState(), [sig(resource=True), sig(system_wide=True), sig("S1", WARN)], at(0))
    [note] = notes
    assert (note.alert.severity, note.routes) == (CRIT, ("dashboard", "s3", "s5"))


def _columns(table: str) -> list[str]:
    text = MIGRATION.read_text()
    body = re.search(rf"(?:CREATE TABLE {table} \(|\"{table}\": \"\"\")(.*?)(?:\n\s*\)\n|\"\"\")", text, re.S)
    assert body is not None
    names = [line.split()[0] for line in body.group(1).strip().splitlines()]
    return [n for n in names if n != "PRIMARY"]


def test_rows_have_exactly_the_columns_of_the_alerts_and_alert_events_tables() -> None:
    state, _, _, events = step(AlertState(), [sig()], at(0))
    assert sorted(next(iter(state.alerts.values())).row()) == sorted(_columns("alerts"))
    assert sorted(events[0].row()) == sorted(_columns("alert_events"))


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="invalid alert policy"):
        AlertPolicy(escalate_after_s=0)
    with pytest.raises(ValueError, match="reminder_after_s"):
        AlertPolicy(reminder_after_s=0)


POOL = [sig(f"s{i}", sev) for i, sev in enumerate((INFO, WARN, WARN, WARN, CRIT, CRIT))]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 400), st.sets(st.integers(0, len(POOL) - 1)), st.sampled_from((INFO, WARN, CRIT))),
        max_size=60,
    )
)
def test_invariants_over_random_signal_sequences(steps: list[tuple[int, set[int], Severity]]) -> None:
    """Cap, cooldown, nothing lost silently, and unique `alert_events` keys, whatever the signals do."""
    run = Run(AlertPolicy(max_per_hour=3, reminder_after_s=600, escalate_after_s=900))
    t = 0
    for dt, present, raised in steps:
        t += dt
        run(t, *(replace(POOL[i], severity=raised) if i == 1 else POOL[i] for i in sorted(present)))
    alerting = [n for n in run.notifications if n.kind != "recovery"]
    capped = sorted(n.at for n in alerting if n.alert.severity is not CRIT)
    assert all(later - first >= timedelta(hours=1) for first, later in zip(capped, capped[3:], strict=False))
    by_fp: dict[str, list[Notification]] = {}
    for n in alerting:
        by_fp.setdefault(n.alert.fingerprint, []).append(n)
    for notes in by_fp.values():
        for a, b in pairwise(notes):
            assert b.at - a.at >= timedelta(seconds=300) or b.alert.severity.rank > a.alert.severity.rank
    by_id: dict[object, set[Severity]] = {}
    for n in run.notifications:
        by_id.setdefault(n.alert.id, set()).add(n.alert.severity)
    assert all(len(severities) == 1 for severities in by_id.values())  # one severity per alert identity
    assert len({a.fingerprint for a in run.state.alerts.values()}) == len(run.state.alerts)
    decided = {(e.alert_id, e.at) for e in run.events if e.event in {"notified", "suppressed"}}
    assert all((e.alert_id, e.at) in decided for e in run.events if e.event == "firing")
    keys = [(e.alert_id, e.at, e.event) for e in run.events]
    assert len(keys) == len(set(keys))
