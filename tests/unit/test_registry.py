from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.collect.registry import AgentRecord, Transition, evaluate, status_at, visible
from vsmmon.models import AgentStatus

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("age_s", "status"),
    [(0, AgentStatus.ONLINE), (5, AgentStatus.ONLINE), (7.5, AgentStatus.ONLINE), (7.6, AgentStatus.STALE),
     (10, AgentStatus.STALE), (12.5, AgentStatus.STALE), (12.6, AgentStatus.OFFLINE), (-3, AgentStatus.ONLINE)],
)  # fmt: skip
def test_status_follows_the_age_against_the_interval(age_s: float, status: AgentStatus) -> None:
    assert status_at(T0, 5.0, T0 + age_s * S) is status


def test_a_killed_worker_is_offline_by_the_third_cycle_after_its_last_answer() -> None:
    for jitter_s in (-0.4, 0.4):  # cycles that start a little early or late change nothing
        record = AgentRecord("celery@w1", "celery_worker", T0, 5.0, AgentStatus.ONLINE, T0)
        seen = []
        for cycle in range(1, 5):
            now = T0 + (cycle * 5 + jitter_s) * S
            for t in evaluate([record], now):
                seen.append((cycle, t.to_status))
                record = AgentRecord(record.agent_id, record.kind, record.last_seen, 5.0, t.to_status, t.at)
        assert seen == [(2, AgentStatus.STALE), (3, AgentStatus.OFFLINE)], jitter_s


def test_a_pushed_agent_whose_push_straddles_the_drain_never_flaps() -> None:
    """Its push lands just after one collection drained the reports: that collection holds none of it, the
    next holds two. Judged at every collection it stays online."""
    record = AgentRecord("llm-1", "llm_worker", T0, 5.0, AgentStatus.ONLINE, T0)
    held = [True, False, True, True, False, True, False, True]  # which collections held a report of it
    for cycle, present in enumerate(held, start=1):
        now = T0 + cycle * 5 * S
        if present:
            record = AgentRecord(record.agent_id, record.kind, now, 5.0, record.status, record.status_since)
        assert evaluate([record], now) == [], cycle


def test_a_returning_agent_goes_back_online_and_no_transition_is_repeated() -> None:
    offline = AgentRecord("a", "sensor", T0 + 60 * S, 5.0, AgentStatus.OFFLINE, T0 + 20 * S)
    [t] = evaluate([offline], T0 + 61 * S)
    assert t == Transition("a", T0 + 61 * S, AgentStatus.OFFLINE, AgentStatus.ONLINE, t.reason)
    assert "last seen 1.0 s ago" in t.reason
    steady = AgentRecord("b", "sensor", T0, 5.0, AgentStatus.ONLINE, T0)
    assert evaluate([steady], T0 + S) == []


def test_offline_agents_leave_live_views_after_the_purge_time_only() -> None:
    offline = AgentRecord("a", "api", T0, 5.0, AgentStatus.OFFLINE, T0 + 11 * S)
    assert visible(offline, T0 + 100 * S, purge_after_s=3600)
    assert not visible(offline, T0 + 11 * S + timedelta(hours=1, seconds=1), purge_after_s=3600)
    stale = AgentRecord("b", "api", T0, 5.0, AgentStatus.STALE, T0)
    assert visible(stale, T0 + timedelta(days=3), purge_after_s=60)


def test_a_worker_that_said_goodbye_stays_stopped_until_it_is_seen_again() -> None:
    # it answered the cycle at T0, then stopped cleanly: its goodbye arrives in the same cycle
    record = AgentRecord("celery@w1", "celery_worker", T0, 5.0, AgentStatus.ONLINE, T0)
    [t] = evaluate([record], T0, stopped=["celery@w1"])
    assert (t.from_status, t.to_status, t.at) == (AgentStatus.ONLINE, AgentStatus.STOPPED, T0)
    stopped = AgentRecord(record.agent_id, record.kind, T0, 5.0, AgentStatus.STOPPED, T0)
    for cycle in range(1, 20):  # never stale, never offline: gone on purpose
        assert evaluate([stopped], T0 + cycle * 5 * S) == []
    assert evaluate([stopped], T0 + 5 * S, stopped=["celery@w1"]) == []  # a second goodbye changes nothing
    back = AgentRecord(record.agent_id, record.kind, T0 + 60 * S, 5.0, AgentStatus.STOPPED, T0)
    [t] = evaluate([back], T0 + 60 * S)
    assert (t.from_status, t.to_status) == (AgentStatus.STOPPED, AgentStatus.ONLINE)  # restarted
    assert not visible(stopped, T0 + timedelta(hours=1, seconds=1), purge_after_s=3600)
