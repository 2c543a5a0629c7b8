"""Webhook groups on Alertmanager's timers: one group per alert name, group_wait, group_interval,
repeat_interval; resolved alerts told once, then dropped. The clock is injected."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from vsmmon.alerts import grouping
from vsmmon.alerts.groupbook import groups_from_json, groups_to_json
from vsmmon.alerts.grouping import Group, Timers
from vsmmon.alerts.manager import step
from vsmmon.alerts.model import AlertPolicy, AlertState, AlertStatus, Notification, Severity, Signal

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TIMERS = Timers()  # 30 s / 5 min / 4 h, Alertmanager's defaults


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def note(kind: str, target: str, severity: Severity = Severity.CRITICAL) -> Notification:
    _, (n,), _, _ = step(AlertState(), [Signal(kind, target, severity, summary=f"{target} hurts")], T0,
                         AlertPolicy(pending_s={}, webhook=True))  # fmt: skip
    return n


def resolved(n: Notification, when: datetime) -> Notification:
    return replace(n, alert=replace(n.alert, status=AlertStatus.RESOLVED, resolved_at=when), kind="resolved")


def settle(groups: dict[str, Group], notes: list[Notification], s: float) -> tuple[dict[str, Group], list[Group]]:
    return grouping.settle(groups, notes, at(s), TIMERS)


def targets(g: Group) -> list[str]:
    return sorted(n.alert.target for n in g.alerts.values())


def test_a_new_group_waits_group_wait_and_collects_the_alerts_of_its_name_that_arrive_meanwhile() -> None:
    groups, due = settle({}, [note("bottleneck", "w1")], 0)
    assert due == []
    groups, due = settle(groups, [note("bottleneck", "w2"), note("queue_backlog", "q1")], 10)
    assert due == []
    groups, due = settle(groups, [], 29.9)
    assert due == []  # the bottleneck group formed at 0: its wait ends at 30
    groups, due = settle(groups, [], 30)
    assert [(g.name, targets(g)) for g in due] == [("bottleneck", ["w1", "w2"])]
    groups, due = settle(groups, [], 40)  # queue_backlog formed at 10
    assert [(g.name, targets(g)) for g in due] == [("queue_backlog", ["q1"])]


def test_a_changed_group_is_sent_again_after_group_interval_with_every_alert_of_the_group() -> None:
    groups, _ = settle({}, [note("bottleneck", "w1")], 0)
    groups, (first,) = settle(groups, [], 30)
    groups, due = settle(groups, [note("bottleneck", "w2")], 60)
    assert due == []  # changed, but 5 minutes have not passed since the last message
    groups, due = settle(groups, [], 329)
    assert due == []
    groups, (second,) = settle(groups, [], 330)
    assert targets(first) == ["w1"]
    assert targets(second) == ["w1", "w2"]


def test_an_unchanged_firing_group_repeats_after_repeat_interval_and_a_repeated_state_is_not_news() -> None:
    w1 = note("bottleneck", "w1")
    groups, _ = settle({}, [w1], 0)
    groups, _ = settle(groups, [], 30)
    groups, due = settle(groups, [w1], 400)  # the same alert in the same state again (a reminder)
    assert due == []
    assert groups["bottleneck"].changed is False
    groups, due = settle(groups, [], 30 + 14400 - 1)
    assert due == []
    groups, (repeat,) = settle(groups, [], 30 + 14400)
    assert targets(repeat) == ["w1"]


def test_a_severity_change_is_news_and_the_message_carries_the_new_severity() -> None:
    warning = note("system_health", "S1", Severity.WARNING)
    groups, _ = settle({}, [warning], 0)
    groups, _ = settle(groups, [], 30)
    critical = replace(warning, alert=replace(warning.alert, severity=Severity.CRITICAL))
    groups, _ = settle(groups, [critical], 100)
    assert groups["system_health"].changed is True
    groups, (sent,) = settle(groups, [], 330)
    assert [n.alert.severity for n in sent.alerts.values()] == [Severity.CRITICAL]


def test_a_resolved_alert_is_told_once_then_dropped_and_an_empty_group_is_gone() -> None:
    w1, w2 = note("bottleneck", "w1"), note("bottleneck", "w2")
    groups, _ = settle({}, [w1, w2], 0)
    groups, _ = settle(groups, [], 30)
    groups, _ = settle(groups, [resolved(w1, at(100))], 100)
    groups, (told,) = settle(groups, [], 330)
    assert {n.alert.target: n.alert.status for n in told.alerts.values()} == {
        "w1": AlertStatus.RESOLVED, "w2": AlertStatus.FIRING}  # fmt: skip
    assert targets(groups["bottleneck"]) == ["w2"]  # w1 told, dropped
    groups, _ = settle(groups, [resolved(w2, at(400))], 400)
    groups, (last,) = settle(groups, [], 630)
    assert [n.alert.status for n in last.alerts.values()] == [AlertStatus.RESOLVED]
    assert groups == {}
    groups, due = settle(groups, [resolved(w2, at(700))], 700)  # a recovery nobody was told of: not news
    assert (groups, due) == ({}, [])


def test_a_resolved_group_is_not_repeated() -> None:
    w1 = note("bottleneck", "w1")
    groups, _ = settle({}, [w1], 0)
    groups = grouping.add(groups, [resolved(w1, at(10))], at(10))
    assert not groups["bottleneck"].firing()
    quiet = replace(groups["bottleneck"], sent_at=at(20), changed=False)
    assert not quiet.due(at(20 + 14400), TIMERS)


def test_zero_timers_send_every_change_at_once() -> None:
    timers = Timers(0, 0, 14400)
    groups = grouping.add({}, [note("bottleneck", "w1")], T0)
    assert [g.name for g in grouping.due(groups, T0, timers)] == ["bottleneck"]


def test_groups_survive_their_json() -> None:
    groups, _ = settle({}, [note("bottleneck", "w1"), note("queue_backlog", "q1")], 0)
    groups, _ = settle(groups, [note("bottleneck", "w2")], 30)
    back = groups_from_json(groups_to_json(groups))
    assert back == groups
    assert back["bottleneck"].sent_at == at(30)
