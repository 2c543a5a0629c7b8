"""Health stage: per-agent health and S1 (operations), by `vsm-model.md`.

Every score is in [0, 1], 1 = good. A factor without data is `None` and left out of the mean it
would join — never a silent default — and each factor keeps the inputs it was computed from, so any
score can answer "why?". (The seed's bug, task health never counted, is not repeated: every factor
that has data counts.)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vsmmon.health.viability import clamp

MB = 1024 * 1024
SATURATION_OK = 0.85
LATENCY_FLOOR_S = 0.05
"""Task runtimes below this are alike to the latency term: a few milliseconds more is a GC pause or a context
switch under load (the leak_plugin scenario: p95 2 ms -> 9 ms read as a task health of 0.24, an S1 warning)."""


@dataclass(frozen=True, slots=True)
class Factor:
    """One term of a score, with the figures it came from."""

    name: str
    score: float | None
    inputs: Mapping[str, float | str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentInputs:
    """What the health stage knows of one agent at assessment time."""

    agent_id: str
    kind: str
    live: bool
    metrics: Mapping[str, float]
    memory_soft_bytes: float
    memory_hard_bytes: float
    succeeded_in_window: float | None = None  # counter deltas over the assessment window
    failed_in_window: float | None = None
    saturation_sustained: float | None = None  # mean of active / concurrency over the window
    runtime_p95_baseline_s: float | None = None  # median of recent windows' p95
    lost_for_s: float | None = None  # not live (offline without a goodbye): for how long; None = just now


@dataclass(frozen=True, slots=True)
class AgentHealth:
    agent_id: str
    score: float | None  # None: live, but no factor has data (nothing says how it does)
    factors: tuple[Factor, ...]


def mean_known(factors: Iterable[Factor]) -> float | None:
    """Mean of the factors that have a score; None when none has."""
    known = [f.score for f in factors if f.score is not None]
    return sum(known) / len(known) if known else None


def memory_factor(a: AgentInputs) -> Factor:
    """1 below the soft limit, falling linearly to 0 at the hard limit."""
    metrics = a.metrics
    if "rss_bytes" not in metrics:
        return Factor("memory", None, {"reason": "no memory figure"})
    used = metrics["rss_bytes"] + metrics.get("children_rss_bytes", 0.0)
    soft, hard = a.memory_soft_bytes, max(a.memory_hard_bytes, a.memory_soft_bytes + 1)
    score = 1.0 if used <= soft else clamp((hard - used) / (hard - soft))
    return Factor("memory", score, {"used_bytes": used, "soft_bytes": soft, "hard_bytes": hard})


def saturation_score(saturation: float) -> float:
    """1 up to 0.85 busy, linear to 0 at fully busy."""
    return 1.0 if saturation <= SATURATION_OK else clamp((1.0 - saturation) / (1.0 - SATURATION_OK))


def queue_factor(a: AgentInputs) -> Factor:
    """From sustained saturation (active / concurrency over the window), else the current one."""
    concurrency = a.metrics.get("concurrency")
    if a.saturation_sustained is not None:
        saturation = a.saturation_sustained
    elif concurrency and "active" in a.metrics:
        saturation = a.metrics["active"] / concurrency
    else:
        return Factor("queue", None, {"reason": "no concurrency or active figure"})
    return Factor("queue", saturation_score(saturation), {"saturation": saturation, "concurrency": concurrency})


def task_factor(a: AgentInputs) -> Factor:
    """Success ratio over the window times the latency term clamp(p95 baseline / p95 now), both at least 50 ms."""
    ok, failed = a.succeeded_in_window, a.failed_in_window
    if ok is None or failed is None or ok + failed <= 0:
        return Factor("task", None, {"reason": "no task completed in the window"})
    ratio = ok / (ok + failed)
    now_p95 = a.metrics.get("task_runtime_p95_s")
    baseline = a.runtime_p95_baseline_s
    # runtimes under the floor count as the floor: 2 ms -> 9 ms is a worker's scheduling noise, not a slowdown
    latency = clamp(max(baseline, LATENCY_FLOOR_S) / max(now_p95, LATENCY_FLOOR_S)) if baseline and now_p95 else 1.0
    inputs = {"succeeded": ok, "failed": failed, "success_ratio": ratio, "p95_now_s": now_p95,
              "p95_baseline_s": baseline, "latency_term": latency}  # fmt: skip
    return Factor("task", ratio * latency, inputs)


def agent_health(a: AgentInputs) -> AgentHealth:
    """h = L x mean(memory, queue, task), over the factors that have data: 0 when not live, unknown (None) when
    live with no factor known — an agent that reports nothing to judge is not thereby healthy."""
    factors = (Factor("liveness", 1.0 if a.live else 0.0), memory_factor(a), queue_factor(a), task_factor(a))
    rest = mean_known(factors[1:])
    score = (None if rest is None else rest) if a.live else 0.0
    return AgentHealth(a.agent_id, score, factors)


def capacity_of(a: AgentInputs) -> float:
    """A Celery worker counts its concurrency; any other agent counts 1."""
    return float(a.metrics.get("concurrency") or 1.0) if a.kind == "celery_worker" else 1.0


PUSHED_SHARE_MAX = 0.25
"""At most this share of S1's mean health is the pushed agents': all of them lost leaves a healthy fleet degraded
(a warning), never unhealthy."""


def judged_population(agents: Sequence[AgentInputs]) -> list[AgentInputs]:
    """Whose capacity and error rate stand for the fleet: its Celery workers, or every agent when it has none.

    Pushed agents (sensors, APIs, LLM workers) report through a token: thousands of ids registered by one
    client, then gone, must not make the fleet read as lost.
    """
    workers = [a for a in agents if a.kind == "celery_worker"]
    return workers or list(agents)


def mean_health(agents: Sequence[AgentInputs], healths: Mapping[str, AgentHealth]) -> float:
    """Mean h over the agents, the pushed ones weighing at most `PUSHED_SHARE_MAX` of it beside the workers.

    An agent whose h is unknown (live, nothing else to judge) counts what is known of it: its liveness, 1.
    """

    def h(a: AgentInputs) -> float:
        score = healths[a.agent_id].score
        return (1.0 if a.live else 0.0) if score is None else score

    workers = [h(a) for a in agents if a.kind == "celery_worker"]
    pushed = [h(a) for a in agents if a.kind != "celery_worker"]
    if not workers or not pushed:
        return statistics.fmean(workers or pushed)
    share = min(PUSHED_SHARE_MAX, len(pushed) / (len(pushed) + len(workers)))
    return (1 - share) * statistics.fmean(workers) + share * statistics.fmean(pushed)


def s1(agents: list[AgentInputs], healths: Mapping[str, AgentHealth], expected_capacity: float | None) -> Factor:
    """H1 = availability x mean(h over agents); availability = live capacity / expected capacity.

    As the model says, the mean runs over every registered agent, dead ones (h = 0) included, until
    they are purged (pushed agents weigh at most a quarter of it, and availability counts the fleet's
    workers when there are any: `judged_population`): losing half the fleet gives 0.5 x 0.5 = 0.25,
    which is what takes the system's viability out of normal. (Averaging live agents only would leave
    viability near 0.8 after such a loss, which no operator would call viable.)
    """
    if not agents:
        return Factor("S1", None, {"reason": "no agents"})
    live_capacity = sum(capacity_of(a) for a in judged_population(agents) if a.live)
    expected = expected_capacity or live_capacity
    availability = clamp(live_capacity / expected) if expected > 0 else 0.0
    mean_h = mean_health(agents, healths)
    unhealthy = sum(1 for h in healths.values() if h.score is not None and h.score <= 0.5)
    inputs = {"availability": availability, "live_capacity": live_capacity, "expected_capacity": expected,
              "mean_agent_health": mean_h, "agents": float(len(agents)),
              "unhealthy_agents": float(unhealthy)}  # fmt: skip
    return Factor("S1", availability * mean_h, inputs)
