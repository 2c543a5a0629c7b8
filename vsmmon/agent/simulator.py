"""Simulated pushed agents with realistic shapes, for demos, tests and benchmarks.

Pure: `metrics_at(agent, t_s)` says what a simulated agent reports `t_s` seconds into the run, or None
when it is silent. `vsmmon simulate` pushes these through the API every interval.

Profiles:
- steady: CPU, memory, saturation and latency wander around healthy levels.
- leak: memory grows linearly (1 MB/s by default) from 100 MB toward the agent's 512 MB limit.
- overload: arrivals outgrow the agent: saturation climbs to 1, latency and backlog grow.
- flapping: alternates a minute healthy, a minute overloaded.
- dead: reports for the first 3 intervals, then never again.
- mixed: a fleet of the above (70 % steady, 10 % leak, 10 % overload, 5 % flapping, 5 % dead).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

PROFILES = ("steady", "leak", "overload", "flapping", "dead")
MIXED_SHARES = (("steady", 0.70), ("leak", 0.10), ("overload", 0.10), ("flapping", 0.05), ("dead", 0.05))
KINDS = ("llm_worker", "worker", "sensor", "api")
MB = 1024 * 1024
MEMORY_LIMIT_BYTES = 512 * MB
LEAK_BYTES_PER_S = 1 * MB


@dataclass(frozen=True, slots=True)
class SimAgent:
    agent_id: str
    kind: str
    profile: str
    seed: int
    concurrency: int = 8


def fleet(count: int, profile: str, seed: int = 0) -> list[SimAgent]:
    """`count` agents of `profile` (or a `mixed` fleet), ids `sim-<profile>-<n>`, deterministic for a seed."""
    if profile != "mixed" and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected mixed or one of {', '.join(PROFILES)}")
    rng = random.Random(seed)
    agents = []
    for i in range(count):
        chosen = _mixed_choice(i, count) if profile == "mixed" else profile
        agents.append(SimAgent(f"sim-{chosen}-{i}", KINDS[i % len(KINDS)], chosen, rng.randrange(2**31)))
    return agents


def _mixed_choice(i: int, count: int) -> str:
    position = (i + 0.5) / count  # spread the profiles evenly over the fleet, deterministically
    cumulative = 0.0
    for name, share in MIXED_SHARES:
        cumulative += share
        if position < cumulative:
            return name
    return MIXED_SHARES[-1][0]


def metrics_at(agent: SimAgent, t_s: float, interval_s: float = 5.0) -> dict[str, float] | None:
    """What the agent reports at `t_s` seconds into the run; None when it does not report."""
    rng = random.Random(agent.seed * 1_000_003 + int(t_s * 1000))
    profile = agent.profile
    if profile == "dead" and t_s >= 3 * interval_s:
        return None
    overloaded = profile == "overload" or (profile == "flapping" and int(t_s // 60) % 2 == 1)
    load = min(1.0, 0.4 + t_s / 300) if overloaded else 0.3 + 0.05 * math.sin(t_s / 40 + agent.seed)
    rss = 100 * MB + (LEAK_BYTES_PER_S * t_s if profile == "leak" else 0) + rng.gauss(0, 2 * MB)
    arrivals_per_s = agent.concurrency * (1.4 if overloaded else 0.3)
    done_per_s = agent.concurrency * min(load, 0.95) * 0.9
    ticks = t_s / interval_s
    return {
        "cpu_percent": max(0.0, min(100.0, 100 * load + rng.gauss(0, 3))),
        "rss_bytes": max(10 * MB, min(rss, 1.2 * MEMORY_LIMIT_BYTES)),
        "memory_limit_bytes": float(MEMORY_LIMIT_BYTES),
        "concurrency": float(agent.concurrency),
        "active": float(round(agent.concurrency * load)),
        "queue_backlog": max(0.0, (arrivals_per_s - done_per_s) * t_s) if overloaded else float(rng.randint(0, 3)),
        "tasks_succeeded_total": math.floor(done_per_s * interval_s * ticks * 0.99),
        "tasks_failed_total": math.floor(done_per_s * interval_s * ticks * (0.08 if overloaded else 0.01)),
        "task_runtime_p95_s": max(0.01, (0.2 + (3.0 * load**4 if overloaded else 0)) + rng.gauss(0, 0.02)),
    }


def reports_at(agents: list[SimAgent], t_s: float, interval_s: float) -> Iterator[dict[str, object]]:
    """The batch-push entries of every agent that reports at `t_s`."""
    for agent in agents:
        metrics = metrics_at(agent, t_s, interval_s)
        if metrics is not None:
            yield {
                "agent_id": agent.agent_id,
                "type": agent.kind,
                "metrics": metrics,
                "interval_s": interval_s,
                "version": f"sim {agent.profile}",
            }
