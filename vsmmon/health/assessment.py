"""The health assessment: agents, S1-S5, overall health and viability, with state carried between checks.

`evaluate` is pure: the health task gathers the inputs, passes the previous check's state, and stores
the result. Choices beyond `vsm-model.md`:
- expected capacity, when not configured, is learned from the registry: the live capacity plus what was
  lost, each lost agent's capacity fading with a 1 h time constant since it went offline. Lost means
  offline without a goodbye (killed, crashed, cut off): losing half the fleet shows as lost availability
  for hours. A worker that stopped cleanly (scale-in, rolling restart: `vsmmon.agent.goodbye`) and a pool
  shrunk on purpose (S3, autoscale) are not losses: the capacity expected follows them at once;
- algedonic pain (straight to S5): a queue with a backlog and no live consumer, an unreachable
  broker, a fleet error rate over 50 %, or viability falling by more than 0.1 since the last check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from vsmmon.health.agents import AgentHealth, AgentInputs, agent_health, capacity_of, judged_population, s1
from vsmmon.health.systems import ControlInputs, QueueFlow, SystemHealth, s2, s3, s4, s5
from vsmmon.health.viability import (
    DEFAULT_WEIGHTS,
    HealthState,
    ViabilityState,
    band_with_hysteresis,
    overall_health,
    state_alert,
    viability,
    viability_alert,
    viability_cap,
    viability_state,
)
from vsmmon.models import Bottleneck, Pain, PainCondition

EXPECTED_CAPACITY_TIME_CONSTANT_S = 3600.0
FAST_DROP = 0.1
PAIN_ERROR_RATE = 0.5


@dataclass(frozen=True, slots=True)
class PreviousState:
    """What one check hands to the next."""

    at: datetime
    states: Mapping[str, HealthState]
    viability: float
    viability_state: ViabilityState
    expected_capacity: float | None


@dataclass(frozen=True, slots=True)
class HealthAssessment:
    at: datetime
    agents: tuple[AgentHealth, ...]
    systems: Mapping[str, SystemHealth]
    states: Mapping[str, HealthState]
    overall: float | None
    viability: float
    viability_state: ViabilityState
    alert: str | None
    algedonic: tuple[Pain, ...]
    bottlenecks: tuple[Bottleneck, ...]
    indicators: Mapping[str, float]
    expected_capacity: float
    agent_states: Mapping[str, HealthState] = field(default_factory=dict)
    alerts: tuple[tuple[str, str], ...] = ()  # (subject: S1..S5 or viability, critical|warning|recovery)
    viability_cap: tuple[float, str] | None = None  # (at most, because): the cap the systems put on viability

    def carry(self) -> PreviousState:
        return PreviousState(self.at, self.states, self.viability, self.viability_state, self.expected_capacity)


def learned_capacity(agents: Sequence[AgentInputs]) -> float:
    """Live capacity plus the lost agents' capacity, each fading as exp(-time lost / 1 h).

    Every agent of the inputs that is not live is lost (stopped ones are not inputs); one whose time lost
    is unknown counts as lost just now.
    """
    live = sum(capacity_of(a) for a in agents if a.live)
    lost = sum(
        capacity_of(a) * math.exp(-(a.lost_for_s or 0.0) / EXPECTED_CAPACITY_TIME_CONSTANT_S)
        for a in agents
        if not a.live
    )
    return live + lost


def evaluate(
    now: datetime,
    agents: Sequence[AgentInputs],
    queues: Sequence[QueueFlow],
    control: ControlInputs,
    previous: PreviousState | None = None,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    expected_capacity: float | None = None,
    broker_errors: Sequence[str] = (),
    margin: float = 0.05,
) -> HealthAssessment:
    """One assessment of the whole system at `now`."""
    healths = {a.agent_id: agent_health(a) for a in agents}
    expected = expected_capacity or learned_capacity(judged_population(agents))
    s1_factor = s1(list(agents), healths, expected)
    systems = {
        "S1": SystemHealth("S1", s1_factor.score, (s1_factor,)),
        "S2": s2(queues, control),
        "S3": s3(queues, control),
        "S4": s4(control),
        "S5": s5(control),
    }
    before = previous.states if previous else {}
    states = {name: band_with_hysteresis(sh.score, before.get(name), margin) for name, sh in systems.items()}
    scores = {name: sh.score for name, sh in systems.items()}
    cap = viability_cap(states, s1_units=len(agents), s1_live=sum(1 for a in agents if a.live))
    value = viability(states, scores, weights) if cap is None else min(cap[0], viability(states, scores, weights))
    before_state = previous.viability_state if previous else None
    evidence = informed(states)  # with every system unknown the value is the seed's 0.5 for "no data": no verdict
    v_state = viability_state(value, before_state, margin) if evidence else before_state or ViabilityState.NORMAL
    indicators = performance_indicators(agents, control)
    v_alert = viability_alert(before_state, v_state)
    alerts = [(name, kind) for name in states if (kind := state_alert(before.get(name), states[name]))]
    if v_alert:
        alerts.append(("viability", v_alert))
    return HealthAssessment(
        at=now,
        agents=tuple(healths[a.agent_id] for a in agents),
        systems=systems,
        states=states,
        overall=overall_health(scores, weights),
        viability=value,
        viability_state=v_state,
        viability_cap=cap,
        alert=v_alert,
        algedonic=pain(queues, indicators, broker_errors, value if evidence else None, previous),
        bottlenecks=bottlenecks(healths, queues),
        indicators=indicators,
        expected_capacity=expected,
        agent_states={agent_id: band_with_hysteresis(h.score, None) for agent_id, h in healths.items()},
        alerts=tuple(alerts),
    )


def informed(states: Mapping[str, HealthState]) -> bool:
    """Whether any system is known: a viability made of unknowns only says nothing about the system."""
    return any(state is not HealthState.UNKNOWN for state in states.values())


def performance_indicators(agents: Sequence[AgentInputs], control: ControlInputs) -> dict[str, float]:
    """Fleet throughput and error rate over the window (of the fleet's workers: `judged_population`),
    utilisation, worst p95."""
    fleet = judged_population(agents)
    ok = sum(a.succeeded_in_window or 0 for a in fleet)
    failed = sum(a.failed_in_window or 0 for a in fleet)
    figures = {"tasks_succeeded": ok, "tasks_failed": failed, "live_agents": float(sum(a.live for a in agents))}
    if ok + failed > 0:
        figures["error_rate"] = failed / (ok + failed)
    if control.concurrency_total > 0:
        figures["utilisation"] = control.active_total / control.concurrency_total
    p95s = [a.metrics["task_runtime_p95_s"] for a in agents if "task_runtime_p95_s" in a.metrics]
    if p95s:
        figures["worst_task_runtime_p95_s"] = max(p95s)
    return figures


def pain(
    queues: Sequence[QueueFlow],
    indicators: Mapping[str, float],
    broker_errors: Sequence[str],
    value: float | None,
    previous: PreviousState | None,
) -> tuple[Pain, ...]:
    """Algedonic signals: hard conditions that bypass S3 and go straight to S5. `value` is the viability, None
    when no system is known (then, as after such an assessment, there is no drop to measure)."""
    signals = [Pain(PainCondition.NO_CONSUMER, f"queue {q.name}", q.backlog) for q in queues
               if q.backlog > 0 and not q.consumer_saturations]  # fmt: skip
    signals += [Pain(PainCondition.UNREACHABLE, "broker", detail=e) for e in broker_errors]
    if indicators.get("error_rate", 0.0) > PAIN_ERROR_RATE:
        signals.append(Pain(PainCondition.ERROR_RATE, "fleet", indicators["error_rate"]))
    if (
        value is not None
        and previous is not None
        and informed(previous.states)
        and value < previous.viability - FAST_DROP
    ):
        signals.append(Pain(PainCondition.FAST_DROP, "viability", value, f"from {previous.viability:.2f}"))
    return tuple(signals)


def bottlenecks(healths: Mapping[str, AgentHealth], queues: Sequence[QueueFlow]) -> tuple[Bottleneck, ...]:
    """Live agents whose memory or saturation factor is below 1, queues that are not draining.

    A lost agent is no bottleneck (its last figures are history; S1 counts the loss), nor is a stopped one.
    """
    found = []
    for agent_id, h in healths.items():
        if any(f.name == "liveness" and f.score == 0.0 for f in h.factors):
            continue
        for f in h.factors:
            if f.name in {"memory", "queue"} and f.score is not None and f.score < 1.0:
                found.append(Bottleneck(agent_id, f.name, f.score))
    for q in queues:
        if q.backlog > 0 and q.in_per_s is not None and q.out_per_s is not None and q.out_per_s <= q.in_per_s:
            found.append(Bottleneck(f"queue {q.name}", "backlog", q.backlog))
    return tuple(found)
