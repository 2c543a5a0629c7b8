"""Agent health and S1-S5 on crafted inputs: every factor counted, none silently defaulted."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.health.agents import MB, AgentInputs, agent_health, memory_factor, queue_factor, s1, task_factor
from vsmmon.health.assessment import HealthAssessment, PreviousState, evaluate, learned_capacity, pain
from vsmmon.health.codec import assessment_to_dict, rows
from vsmmon.health.systems import (
    ControlInputs,
    QueueFlow,
    drain_score,
    evenness,
    flow_balance,
    headroom_score,
    majority_share,
    reversals,
    s2,
    s3,
    s5,
)
from vsmmon.health.viability import HealthState, ViabilityState, viability, viability_cap
from vsmmon.models import Bottleneck, Pain, PainCondition

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def worker(agent_id: str = "w1", live: bool = True, **metrics: float) -> AgentInputs:
    base = {"rss_bytes": 100 * MB, "concurrency": 4.0, "active": 2.0}
    return AgentInputs(agent_id, "celery_worker", live, {**base, **metrics}, 512 * MB, 1024 * MB)


@pytest.mark.parametrize(("rss_mb", "score"), [(100, 1.0), (512, 1.0), (768, 0.5), (1024, 0.0), (2048, 0.0)])
def test_memory_falls_linearly_from_soft_to_hard_limit(rss_mb: float, score: float) -> None:
    f = memory_factor(worker(rss_bytes=rss_mb * MB))
    assert f.score == pytest.approx(score)
    assert f.inputs["used_bytes"] == rss_mb * MB


def test_pool_children_memory_counts() -> None:
    assert memory_factor(worker(rss_bytes=400 * MB, children_rss_bytes=368 * MB)).score == pytest.approx(0.5)


@pytest.mark.parametrize(("active", "score"), [(0, 1.0), (3.4, 1.0), (3.7, 0.5), (4, 0.0)])
def test_queue_health_from_saturation(active: float, score: float) -> None:
    assert queue_factor(worker(active=active)).score == pytest.approx(score)


def test_task_health_is_success_ratio_times_latency_term() -> None:
    a = AgentInputs("w", "celery_worker", True, {"task_runtime_p95_s": 2.0}, 1, 2, 90, 10, None, 1.0)
    f = task_factor(a)
    assert f.score == pytest.approx(0.9 * 0.5)
    assert f.inputs["latency_term"] == 0.5
    faster = AgentInputs("w", "celery_worker", True, {"task_runtime_p95_s": 0.5}, 1, 2, 90, 10, None, 1.0)
    assert task_factor(faster).score == pytest.approx(0.9)  # clamped at 1


@pytest.mark.parametrize(
    ("baseline_s", "now_s", "term"),
    [(0.002, 0.009, 1.0), (0.002, 0.05, 1.0), (0.002, 0.5, 0.1), (0.02, 0.1, 0.5), (0.2, 0.4, 0.5)],
)
def test_the_latency_term_reads_runtimes_under_50_ms_as_50_ms(baseline_s: float, now_s: float, term: float) -> None:
    a = AgentInputs("w", "celery_worker", True, {"task_runtime_p95_s": now_s}, 1, 2, 100, 0, None, baseline_s)
    assert task_factor(a).inputs["latency_term"] == pytest.approx(term)


def test_every_factor_with_data_counts_and_none_is_defaulted() -> None:
    a = AgentInputs("w", "celery_worker", True, {"rss_bytes": 768 * MB, "concurrency": 4.0, "active": 3.7,
                    "task_runtime_p95_s": 1.0}, 512 * MB, 1024 * MB, 80, 20, None, 1.0)  # fmt: skip
    h = agent_health(a)
    assert h.score == pytest.approx((0.5 + 0.5 + 0.8) / 3)  # the seed's bug would have dropped task health
    no_tasks = agent_health(worker(rss_bytes=768 * MB, active=3.7))
    assert no_tasks.score == pytest.approx(0.5)  # memory and queue only: task health unknown, not 1.0
    assert [f.score for f in no_tasks.factors if f.name == "task"] == [None]
    assert agent_health(worker(live=False)).score == 0.0


def test_a_live_agent_with_nothing_to_judge_is_unknown_and_counts_its_liveness_in_s1() -> None:
    silent = AgentInputs("sensor-1", "sensor", True, {"temperature": 21.0}, 512 * MB, 1024 * MB)
    h = agent_health(silent)
    assert h.score is None  # was 1.0: healthy for want of data
    assert agent_health(AgentInputs("gone", "sensor", False, {}, 512 * MB, 1024 * MB)).score == 0.0
    # in S1's mean it counts what is known of it, that it is live: 19 such sensors and one lost are not an outage
    sensors = [AgentInputs(f"s{i}", "sensor", i > 0, {"temperature": 20.0}, 512 * MB, 1024 * MB) for i in range(20)]
    a = evaluate(NOW, sensors, [], ControlInputs())
    assert a.systems["S1"].factors[0].inputs["mean_agent_health"] == pytest.approx(0.95)
    assert a.states["S1"] is HealthState.HEALTHY


def test_s1_is_availability_times_mean_health_over_agents() -> None:
    agents = [worker("a"), worker("b"), worker("c", live=False), worker("d", live=False)]
    healths = {a.agent_id: agent_health(a) for a in agents}
    f = s1(agents, healths, expected_capacity=16.0)
    assert f.inputs["availability"] == 0.5
    assert f.inputs["mean_agent_health"] == 0.5
    assert f.score == pytest.approx(0.25)


def test_s2_factors_worked_by_hand() -> None:
    assert flow_balance(QueueFlow("q", 0, 3.0, 1.0)) == pytest.approx(0.5)
    assert flow_balance(QueueFlow("q", 0, 2.0, 2.0)) == 1.0
    assert flow_balance(QueueFlow("q", 0, 0.0, 0.0)) is None  # no traffic: unknown, not perfect
    assert evenness([0.2, 0.6]) == pytest.approx(0.5)
    assert reversals([1, 2, 1, 2, 1]) == (3, 3)
    assert reversals([1, 1, 2, 3, 3, 4]) == (0, 4)
    h = s2([QueueFlow("q", 5, 3.0, 1.0, [1, 2, 1, 2, 1], [0.2, 0.6])], ControlInputs())
    assert h.score == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_two_consumers_of_a_quiet_queue_are_not_imbalance_but_an_idle_one_beside_a_backlog_is() -> None:
    # `make up`'s two workers share vsm.collect: one runs the collection, the other waits; nothing queued
    quiet = s2([QueueFlow("vsm.collect", 0, 0.2, 0.2, [0, 0, 0, 0], [1.0, 0.0])], ControlInputs())
    assert quiet.factors[1].name == "evenness"
    assert quiet.factors[1].score is None
    assert quiet.factors[1].inputs == {"vsm.collect": None}
    assert quiet.score == pytest.approx(1.0)  # balanced flow, no oscillation, evenness not judged
    backlog = s2([QueueFlow("orders", 40, 2.0, 2.0, [40, 40, 40], [1.0, 0.0])], ControlInputs())
    assert backlog.factors[1].score == 0.0  # forty waiting while a consumer idles: that is imbalance


def test_s3_factors_worked_by_hand() -> None:
    assert headroom_score(0.5) == 1.0
    assert headroom_score(0.9) == pytest.approx(0.4)
    assert headroom_score(0.0) == pytest.approx(0.7)
    assert drain_score(QueueFlow("q", 600, 30.0, 40.0), 60) == (1.0, 60.0)
    assert drain_score(QueueFlow("q", 600, 30.0, 35.0), 60) == (0.5, 120.0)
    assert drain_score(QueueFlow("q", 600, 30.0, 30.0), 60) == (0.0, float("inf"))
    h = s3([QueueFlow("q", 600, 30.0, 35.0)], ControlInputs(active_total=9, concurrency_total=10, actions_total=4,
                                                           actions_effective=3))  # fmt: skip
    assert h.score == pytest.approx((0.4 + 0.5 + 0.75) / 3)


def test_s5_identity_coherence_and_unknowns() -> None:
    pool = [("fleet", "v1"), ("fleet", "v1"), ("fleet", "v2")]
    assert majority_share(pool) == pytest.approx(2 / 3)
    assert majority_share([*pool, ("vsm.collect", "vsmmon")]) == pytest.approx(3 / 4)  # other pools agree
    h = s5(ControlInputs(identities=pool))
    assert h.score == pytest.approx(2 / 3)  # SLOs and escalations unknown: left out, not counted as 1
    assert [f.score for f in h.factors] == [None, None, pytest.approx(2 / 3), None]


def test_the_audit_feeds_s3_and_s5() -> None:
    control = ControlInputs(identities=[("q", "v")], audit_score=0.5, audit_worker="w1@h")
    assert s5(control).score == pytest.approx((1.0 + 0.5) / 2)
    audit = s3([], control).factors[-1]
    assert (audit.name, audit.score, audit.inputs["worker"]) == ("audit", 0.5, "w1@h")
    assert s3([], ControlInputs(concurrency_total=10, active_total=5)).factors[-1].score is None


def test_losing_half_the_fleet_degrades_s1_and_viability_and_recovery_is_signalled() -> None:
    fleet = [worker(f"w{i}") for i in range(4)]
    control = ControlInputs(active_total=8, concurrency_total=16, identities=[("q", "v")] * 4)
    first = evaluate(NOW, fleet, [], control)
    assert first.states["S1"] is HealthState.HEALTHY
    half = [worker(f"w{i}", live=i < 2) for i in range(4)]
    second = evaluate(NOW + timedelta(seconds=30), half, [], control, first.carry())
    assert second.systems["S1"].score == pytest.approx(0.25, abs=0.01)
    assert second.states["S1"] is HealthState.UNHEALTHY
    assert second.viability < first.viability
    assert second.viability_cap == (0.49, "S1 unhealthy")  # the formula alone gives a warning
    assert second.viability == 0.49
    assert second.viability_state is ViabilityState.CRITICAL
    assert second.alert == "critical"
    assert ("S1", "critical") in second.alerts
    back = evaluate(NOW + timedelta(seconds=60), fleet, [], control, second.carry())
    assert back.states["S1"] is HealthState.HEALTHY
    assert back.alert == "recovery"
    assert ("S1", "recovery") in back.alerts


def test_a_dead_fleet_is_never_normal_whatever_the_other_systems_say() -> None:
    """The design's caps: the seed's formula gives 0.73 (normal) for S1 at 0 and S2-S5 healthy."""
    control = ControlInputs(identities=[("q", "v")] * 3, smape=0.1, audit_score=1.0)
    dead = [worker(f"w{i}", live=False) for i in range(3)]
    a = evaluate(NOW, dead, [], control)
    assert a.states["S1"] is HealthState.UNHEALTHY
    healthy_but_s1 = {n: HealthState.UNHEALTHY if n == "S1" else HealthState.HEALTHY for n in a.states}
    formula = viability(healthy_but_s1, {n: 0.0 if n == "S1" else 1.0 for n in a.states})
    assert formula == pytest.approx(0.73)  # the design's example: normal by the formula alone
    assert a.viability == 0.49
    assert a.viability_state is ViabilityState.CRITICAL
    assert a.viability_cap == (0.49, "S1 unhealthy")


def test_any_unhealthy_system_caps_viability_in_warning_and_unknown_caps_nothing() -> None:
    states = {"S1": HealthState.HEALTHY, "S2": HealthState.HEALTHY, "S3": HealthState.UNHEALTHY,
              "S4": HealthState.UNKNOWN, "S5": HealthState.HEALTHY}  # fmt: skip
    assert viability_cap(states) == (0.69, "S3 unhealthy")
    states["S3"] = HealthState.HEALTHY
    assert viability_cap(states) is None  # S4 unknown caps nothing
    assert viability_cap(states, s1_units=3, s1_live=0) == (0.49, "no live S1 unit")
    assert viability_cap(states, s1_units=0, s1_live=0) is None  # nothing registered: S1 unknown


def lost(agent_id: str, for_s: float) -> AgentInputs:
    return AgentInputs(agent_id, "celery_worker", False, {"concurrency": 4.0}, 1, 2, lost_for_s=for_s)


def test_learned_capacity_keeps_what_was_lost_for_hours_and_follows_a_planned_change_at_once() -> None:
    fleet = [worker("a"), worker("b")]
    assert learned_capacity(fleet) == 8.0  # a new fleet, or one grown: what is live
    assert learned_capacity([*fleet, lost("c", 0.0)]) == 12.0  # just killed: all of its capacity expected
    assert learned_capacity([*fleet, lost("c", 3600.0)]) == pytest.approx(8 + 4 / math.e)
    assert learned_capacity([*fleet, lost("c", 6 * 3600.0)]) == pytest.approx(8.0, abs=0.01)
    # a worker that said goodbye is not in the inputs at all (vsmmon.health.inputs), a pool shrunk on
    # purpose is live with its new size: neither is a loss
    assert learned_capacity([worker("a", concurrency=1.0), worker("b")]) == 5.0


def test_a_planned_scale_in_keeps_s1_healthy_and_a_kill_of_as_many_does_not() -> None:
    healthy_prev = PreviousState(NOW, {}, 1.0, ViabilityState.NORMAL, 16.0)
    stayed = [worker(f"w{i}", active=1.0) for i in range(2)]
    scaled_in = evaluate(NOW, stayed, [], ControlInputs(), healthy_prev)  # w2, w3 said goodbye: not inputs
    assert scaled_in.expected_capacity == 8.0
    assert scaled_in.states["S1"] is HealthState.HEALTHY
    killed = evaluate(NOW, [*stayed, lost("w2", 15.0), lost("w3", 15.0)], [], ControlInputs(), healthy_prev)
    assert killed.expected_capacity == pytest.approx(16.0, rel=0.01)
    assert killed.states["S1"] is HealthState.UNHEALTHY  # 0.5 availability x 0.5 mean health


def stuck_fleet() -> HealthAssessment:
    stuck = QueueFlow("orders", 50, 2.0, 0.0, consumer_saturations=())
    busy = worker("w1", active=4.0)
    return evaluate(NOW, [busy], [stuck], ControlInputs(active_total=4, concurrency_total=4), broker_errors=["down"])


def test_algedonic_pain_and_bottlenecks() -> None:
    a = stuck_fleet()
    assert a.algedonic == (
        Pain(PainCondition.NO_CONSUMER, "queue orders", 50.0),
        Pain(PainCondition.UNREACHABLE, "broker", detail="down"),
    )
    assert [p.message for p in a.algedonic] == [
        "queue orders has 50 messages and no live consumer",
        "broker unreachable: down",
    ]
    assert a.bottlenecks == (Bottleneck("w1", "queue", 0.0), Bottleneck("queue orders", "backlog", 50.0))
    assert [b.message for b in a.bottlenecks] == ["w1: queue 0.00", "queue orders: backlog 50 not draining"]


def test_a_high_error_rate_and_a_fast_viability_drop_are_pain() -> None:
    prev = PreviousState(NOW, {"S1": HealthState.HEALTHY}, 0.9, ViabilityState.NORMAL, None)
    found = pain([], {"error_rate": 0.6}, [], 0.5, prev)
    assert found == (
        Pain(PainCondition.ERROR_RATE, "fleet", 0.6),
        Pain(PainCondition.FAST_DROP, "viability", 0.5, "from 0.90"),
    )
    assert [p.message for p in found] == [
        "fleet error rate 60% over 50 %",
        "viability fell from 0.90 to 0.50 since the last check",
    ]
    assert pain([], {"error_rate": 0.5}, [], 0.81, prev) == ()  # at the threshold, and a drop of 0.09


def test_the_summary_keeps_the_messages_and_adds_the_values() -> None:
    a = stuck_fleet()
    body = json.loads(json.dumps(assessment_to_dict(a, agents=False)))
    assert body["algedonic"] == ["queue orders has 50 messages and no live consumer", "broker unreachable: down"]
    assert body["pain"] == [
        {"condition": "no_consumer", "target": "queue orders", "value": 50.0, "detail": "",
         "message": "queue orders has 50 messages and no live consumer"},
        {"condition": "unreachable", "target": "broker", "value": None, "detail": "down",
         "message": "broker unreachable: down"},
    ]  # fmt: skip
    assert body["bottlenecks"] == ["w1: queue 0.00", "queue orders: backlog 50 not draining"]
    assert body["bottleneck_details"] == [
        {"target": "w1", "factor": "queue", "value": 0.0, "message": "w1: queue 0.00"},
        {"target": "queue orders", "factor": "backlog", "value": 50.0,
         "message": "queue orders: backlog 50 not draining"},
    ]  # fmt: skip
    (viability_row,) = [r for r in rows(a) if r.scope == "viability"]
    assert viability_row.inputs["pain"] == body["pain"]
    assert viability_row.inputs["algedonic"] == body["algedonic"]


def test_a_lost_agent_is_no_bottleneck_even_with_its_last_figures_saturated() -> None:
    busy, dead = worker("w1", active=4.0), worker("w2", live=False, active=4.0, rss_bytes=1000 * MB)
    a = evaluate(NOW, [busy, dead], [], ControlInputs(active_total=4, concurrency_total=4))
    assert a.bottlenecks == (Bottleneck("w1", "queue", 0.0),)


def sensor(agent_id: str, live: bool, failed: float = 0.0) -> AgentInputs:
    return AgentInputs(agent_id, "sensor", live, {"cpu_percent": 5.0}, 1, 2, 10.0, failed, lost_for_s=60.0)


def test_pushed_agents_cannot_move_the_fleets_judgement() -> None:
    # 5,000 forged sensor ids, pushed once and gone: the fleet of two healthy workers stays healthy
    fleet = [worker("w1", active=1.0), worker("w2", active=1.0)]
    forged = [sensor(f"forged-{i}", live=False, failed=100.0) for i in range(5000)]
    a = evaluate(NOW, [*fleet, *forged], [], ControlInputs(active_total=2, concurrency_total=8))
    assert a.expected_capacity == 8.0  # the workers' concurrency: not 5,008
    [s1_factor] = a.systems["S1"].factors
    assert s1_factor.inputs["availability"] == 1.0
    assert s1_factor.inputs["mean_agent_health"] == pytest.approx(0.75)  # pushed weigh at most a quarter
    assert a.states["S1"] is HealthState.DEGRADED  # a warning, not a critical
    assert "error_rate" not in a.indicators  # the forged failures are not the fleet's
    assert not any(p.condition is PainCondition.ERROR_RATE for p in a.algedonic)
    # a fleet of pushed agents only is judged by them
    alone = evaluate(NOW, [sensor("s1", True), sensor("s2", False)], [], ControlInputs())
    assert alone.expected_capacity == pytest.approx(1 + math.exp(-60 / 3600))
