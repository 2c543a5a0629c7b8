"""What one analysis reads, pure given a reader of the real-time window: per operational agent its memory
over the whole window and its short trend series, and per queue its demand on its live consumers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vsmmon.analyse.analysis import MemorySeries, QueueDemand, Series
from vsmmon.models import AgentInfo, AgentKind
from vsmmon.store.realtime import Point, SeriesReader

MEMORY_METRICS = ("rss_bytes", "children_rss_bytes")
REGIME_METRICS = ("concurrency", "uptime_s")  # a pool resized or a process restarted starts a new memory regime
TREND_METRICS = ("cpu_percent", "active", "task_runtime_p95_s")
TREND_WINDOW_S = 300
BATCH_AGENTS = 25
"""Agents an analysis reads at a time. It holds each one's whole hour of memory (7 series of up to 720 points),
so a batch's size is set by the window's fill, not the fleet's: measured, a batch of 100 agents held 3.2 MB of
Python objects at 10 minutes of history and 13.1 MB at a full hour, a batch of 25 3.3 MB at a full hour. Health
reads a few minutes of each agent and keeps `vsmmon.health.inputs.BATCH_AGENTS`."""
REGISTRY_METRICS = ("memory_limit_bytes", "concurrency", "active", "messages")
"""The registry's latest figures an analysis reads (`read`, `demands`, `health.inputs.queue_flows`): only these
leave the database, not each agent's whole report (at 10,000 agents, ~8 MB less in the analysis process)."""


@dataclass(frozen=True, slots=True)
class Inputs:
    memory: list[MemorySeries]
    series: dict[tuple[str, str, int], Series]
    points: dict[str, dict[int, float]]  # memory per agent by cycle: what due forecasts are scored against


def wanted(operational: Sequence[AgentInfo]) -> list[tuple[str, str]]:
    """The series one analysis reads (to prefetch in one round trip)."""
    return [(a.agent_id, m) for a in operational for m in (*MEMORY_METRICS, *REGIME_METRICS, *TREND_METRICS)]


def read(
    operational: Sequence[AgentInfo], window: SeriesReader, interval_s: float, hard_bytes: float, now: datetime
) -> Inputs:
    """Memory series (with each agent's own limit, else `hard_bytes`) and the trend series of `operational`."""
    points = {a.agent_id: memory_points(window, a.agent_id, now) for a in operational}
    memory = [
        MemorySeries(a.agent_id, relative(points[a.agent_id], interval_s),
                     a.metrics.get("memory_limit_bytes") or hard_bytes,
                     breaks(window, a.agent_id, points[a.agent_id], interval_s, now))
        for a in operational
    ]  # fmt: skip
    series = {(a.agent_id, m, TREND_WINDOW_S): as_series(window.read(a.agent_id, m, now, TREND_WINDOW_S), now)
              for a in operational for m in TREND_METRICS}  # fmt: skip
    return Inputs(memory, series, points)


def as_series(points: Sequence[Point], origin: datetime) -> Series:
    """Points as seconds relative to `origin`, and values."""
    return [(p.ts - origin).total_seconds() for p in points], [p.value for p in points]


def memory_points(window: SeriesReader, agent_id: str, now: datetime) -> dict[int, float]:
    """Main process plus pool children, {cycle: bytes}, over the whole window (oldest first)."""
    main = window.read_cycles(agent_id, "rss_bytes", now)
    children = window.read_cycles(agent_id, "children_rss_bytes", now)
    return {c: v + children.get(c, 0.0) for c, v in main.items()}


def breaks(
    window: SeriesReader, agent_id: str, points: dict[int, float], interval_s: float, now: datetime
) -> tuple[float, ...]:
    """Times (as `relative` gives them) the pool size changed or the process restarted (its uptime fell)."""
    origin = next(iter(points), 0)
    concurrency = window.read_cycles(agent_id, "concurrency", now)
    uptime = window.read_cycles(agent_id, "uptime_s", now)
    found = {c for (_, a), (c, b) in itertools.pairwise(concurrency.items()) if b != a}
    found |= {c for (_, a), (c, b) in itertools.pairwise(uptime.items()) if b < a}
    return tuple((c - origin) * interval_s for c in sorted(found))


def relative(points: dict[int, float], interval_s: float) -> Series:
    """{cycle: value} as seconds since the first cycle, and values."""
    origin = next(iter(points), 0)
    return [(c - origin) * interval_s for c in points], list(points.values())


def demands(registry: Sequence[AgentInfo], flows: Sequence[Any]) -> list[QueueDemand]:
    """Each queue's arrivals and drain, with the concurrency and busy slots of its live consumers."""
    live_workers = [a for a in registry if a.kind is AgentKind.CELERY_WORKER and a.live]
    found = []
    for q in flows:
        if q.in_per_s is None or q.out_per_s is None:
            continue
        consumers = [w for w in live_workers if q.name in w.queues]
        concurrency = int(sum(w.metrics.get("concurrency", 0.0) for w in consumers))
        busy = sum(w.metrics.get("active", 0.0) for w in consumers)
        pools = tuple((w.agent_id, int(w.metrics.get("concurrency", 0.0))) for w in consumers)
        found.append(QueueDemand(q.name, q.in_per_s, q.out_per_s, busy, q.backlog, concurrency, pools))
    return found
