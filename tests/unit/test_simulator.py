from collections import Counter

import pytest

from vsmmon.agent.simulator import LEAK_BYTES_PER_S, MB, PROFILES, SimAgent, fleet, metrics_at, reports_at


def agent(profile: str) -> SimAgent:
    return SimAgent(f"sim-{profile}-0", "worker", profile, seed=7)


def test_a_mixed_fleet_has_the_documented_shares_and_is_deterministic() -> None:
    agents = fleet(1000, "mixed", seed=3)
    shares = Counter(a.profile for a in agents)
    assert shares == {"steady": 700, "leak": 100, "overload": 100, "flapping": 50, "dead": 50}
    assert fleet(1000, "mixed", seed=3) == agents
    assert len({a.agent_id for a in agents}) == 1000
    assert {a.kind for a in agents} == {"llm_worker", "worker", "sensor", "api"}


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'lazy'"):
        fleet(3, "lazy")


def test_a_leak_grows_memory_by_one_megabyte_per_second() -> None:
    a = agent("leak")
    early, late = metrics_at(a, 10.0), metrics_at(a, 130.0)
    assert early is not None
    assert late is not None
    growth_per_s = (late["rss_bytes"] - early["rss_bytes"]) / 120
    assert growth_per_s == pytest.approx(LEAK_BYTES_PER_S, rel=0.1)
    steady = [metrics_at(agent("steady"), t) for t in (10.0, 130.0)]
    assert abs(steady[1]["rss_bytes"] - steady[0]["rss_bytes"]) < 10 * MB  # type: ignore[index]


def test_overload_pushes_saturation_latency_and_backlog_up() -> None:
    start, later = metrics_at(agent("overload"), 5.0), metrics_at(agent("overload"), 200.0)
    assert start is not None
    assert later is not None
    assert later["active"] == later["concurrency"]
    assert later["task_runtime_p95_s"] > 2 * start["task_runtime_p95_s"]
    assert later["queue_backlog"] > start["queue_backlog"] > 0


def test_dead_agents_stop_reporting_after_three_intervals_and_flapping_alternates() -> None:
    assert metrics_at(agent("dead"), 10.0, interval_s=5) is not None
    assert metrics_at(agent("dead"), 15.0, interval_s=5) is None
    calm, busy = metrics_at(agent("flapping"), 30.0), metrics_at(agent("flapping"), 90.0)
    assert calm is not None
    assert busy is not None
    assert busy["queue_backlog"] > calm["queue_backlog"]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_report_is_finite_and_within_range(profile: str) -> None:
    for t in range(0, 600, 5):
        m = metrics_at(agent(profile), float(t))
        if m is None:
            continue
        assert 0 <= m["cpu_percent"] <= 100
        assert m["rss_bytes"] > 0
        assert m["tasks_failed_total"] <= m["tasks_succeeded_total"] or t == 0


def test_batch_entries_skip_silent_agents() -> None:
    agents = [agent("steady"), agent("dead")]
    assert [e["agent_id"] for e in reports_at(agents, 0.0, 5.0)] == ["sim-steady-0", "sim-dead-0"]
    assert [e["agent_id"] for e in reports_at(agents, 60.0, 5.0)] == ["sim-steady-0"]
