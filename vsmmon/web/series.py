"""The dashboard's charts: which stored series each one draws, and how (pure functions).

The last hour comes from the real-time window at the collection interval; 24 h from the 5 min rollups.
Memory is the main process plus its pool children (what the analysis stage forecasts as `memory_bytes`);
throughput is the rate of the task counters, a counter reset (worker restart) giving no point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vsmmon.models import Rollup

Points = list[tuple[float, float]]  # (unix seconds, value), oldest first
WINDOWS_S = (300, 3600, 86400)
ROLLUP_WINDOW_S = 300  # the 24 h chart's resolution
REALTIME_LIMIT_S = 3600


class Chart(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    THROUGHPUT = "throughput"
    LATENCY = "latency"
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Recipe:
    """A chart's series: stored metrics, how they combine, the unit, and what forecasts it."""

    metrics: tuple[str, ...]
    combine: str  # "gauge": one line per metric; "sum": one line, their sum; "rate": per-second rate of their sum
    unit: str
    forecast_metric: str | None = None  # a stored forecast (analysis stage) of the combined series
    trend_metric: str | None = None  # else a Holt projection from the stored 5 min trend


RECIPES: dict[Chart, Recipe] = {
    Chart.CPU: Recipe(("cpu_percent",), "gauge", "%", trend_metric="cpu_percent"),
    Chart.MEMORY: Recipe(("rss_bytes", "children_rss_bytes"), "sum", "bytes", forecast_metric="memory_bytes"),
    Chart.THROUGHPUT: Recipe(("tasks_succeeded_total", "tasks_failed_total"), "rate", "tasks/s"),
    Chart.LATENCY: Recipe(("task_runtime_p95_s", "queue_wait_p95_s"), "gauge", "s", trend_metric="task_runtime_p95_s"),
    Chart.QUEUE: Recipe(("messages",), "gauge", "messages"),
}


def ts(when: datetime) -> float:
    return when.timestamp()


def summed(series: Sequence[Points]) -> Points:
    """Point-wise sum over the timestamps of the first series (a missing part counts as 0)."""
    if not series:
        return []
    others = [dict(s) for s in series[1:]]
    return [(t, v + sum(o.get(t, 0.0) for o in others)) for t, v in series[0]]


def rate(points: Points) -> Points:
    """Per-second rate of a counter between consecutive points; a decrease (a reset) gives no point."""
    out: Points = []
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t1 > t0 and v1 >= v0:
            out.append((t1, (v1 - v0) / (t1 - t0)))
    return out


def rollup_points(rollups: Iterable[Rollup], counter: bool) -> Points:
    """A rollup series as points: each window's mean at its start, or for a counter its last value."""
    return [
        (ts(r.last_ts) if counter else ts(r.window_start), r.last if counter else r.sum / r.count)
        for r in rollups
        if r.count > 0
    ]


def since(points: Points, start_s: float) -> Points:
    return [(t, v) for t, v in points if t >= start_s and math.isfinite(v)]


def combine(recipe: Recipe, parts: dict[str, Points]) -> dict[str, Points]:
    """The lines a chart draws from its metrics' points, by name."""
    if recipe.combine == "gauge":
        return {m: parts[m] for m in recipe.metrics if parts.get(m)}
    total = summed([parts[m] for m in recipe.metrics if parts.get(m)])
    name = "+".join(m for m in recipe.metrics if parts.get(m)) or recipe.metrics[0]
    if recipe.combine == "rate":
        return {name.replace("_total", "") + " /s": rate(total)} if total else {}
    return {name: total} if total else {}


def projection(at_s: float, level: float, trend_per_s: float, horizon_s: float, steps: int = 10) -> Points:
    """Holt's forecast level + trend * h, from the time of the trend out to `horizon_s` (every charted
    figure is a quantity, so a falling projection stops at 0)."""
    return [
        (at_s + horizon_s * i / steps, max(0.0, level + trend_per_s * horizon_s * i / steps)) for i in range(steps + 1)
    ]
