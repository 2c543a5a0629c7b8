"""One row per task name across the live workers, and one name's last hour: what Flower is opened for.

Pure: the registry's agents (each worker's latest reply) and their counter series in the real-time window (the
last hour, at the collection interval). A rate is a counter's increase over time, per worker, summed over the
fleet; a drop is a worker that restarted, and its new value counts (as Prometheus' `increase`). Percentiles are
the slowest worker's, of its last 128 runs of the name: percentiles of different workers do not merge, and the
slowest worker is where an operator looks (`celery_task_runtime` on `/metrics` has the mergeable histogram).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vsmmon.models import AgentInfo, AgentKind
from vsmmon.store.realtime import SeriesReader

WINDOW_S = 300
"""Rates and the failure ratio are over the last 5 minutes."""
HOUR_S = 3600
TREND_RATIO = 1.25
"""A rate a quarter above (below) the one it is compared with is rising (falling)..."""
TREND_FLOOR_PER_S = 1 / 60
"""...and a change of less than one run a minute is steady, whatever the ratio."""
COUNTERS = ("succeeded_total", "failed_total", "retried_total")
OUTCOMES = ("succeeded", "failed", "retried", "rejected")
PERCENTILES = ("runtime_p50_s", "runtime_p95_s", "runtime_p99_s", "wait_p50_s", "wait_p95_s")
CHARTED = ("runtime_p50_s", "runtime_p95_s", "runtime_p99_s")

Trend = Literal["up", "down", "flat"]
Points = list[tuple[float, float]]  # (unix seconds, value), oldest first


@dataclass(frozen=True, slots=True)
class TaskRow:
    name: str
    workers: tuple[str, ...]  # the live workers that report the name
    totals: Mapping[str, float]  # per outcome, since each worker started, summed over them
    rate_per_s: float | None  # runs finished (succeeded or failed) a second, last 5 min; None: no two points yet
    failure_ratio: float | None  # failed of finished, last 5 min; None: nothing finished
    retries_per_s: float | None
    percentiles: Mapping[str, float]  # the slowest worker's (PERCENTILES)
    trend_5m: Trend | None  # the last 5 min's rate against the 5 min before
    trend_1h: Trend | None  # against the last hour's (once the window holds half an hour)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "workers": list(self.workers),
            **{f"{o}_total": self.totals.get(o, 0.0) for o in OUTCOMES},
            "rate_per_s": self.rate_per_s,
            "failure_ratio": self.failure_ratio,
            "retries_per_s": self.retries_per_s,
            **{p: self.percentiles.get(p) for p in PERCENTILES},
            "trend_5m": self.trend_5m,
            "trend_1h": self.trend_1h,
        }


def workers_by_task(agents: Iterable[AgentInfo], text: str = "") -> dict[str, list[AgentInfo]]:
    """Each task name the live workers report (`task.NAME.succeeded_total`; holding `text`), with those workers."""
    found: dict[str, list[AgentInfo]] = {}
    wanted = text.lower()
    for a in agents:
        if a.kind is not AgentKind.CELERY_WORKER or not a.live:
            continue
        for metric in a.metrics:
            if metric.startswith("task.") and metric.endswith(".succeeded_total"):
                name = metric[5 : -len(".succeeded_total")]
                if wanted in name.lower():
                    found.setdefault(name, []).append(a)
    return found


def series_for(by_task: Mapping[str, Sequence[AgentInfo]], figures: Sequence[str] = COUNTERS) -> list[tuple[str, str]]:
    """The (agent, metric) series the rows read, to fetch at once (`RealtimeWindow.prefetch`)."""
    return [(a.agent_id, f"task.{name}.{f}") for name, agents in by_task.items() for a in agents for f in figures]


def increase(points: Mapping[int, float], first: int, last: int) -> tuple[float, int] | None:
    """A counter's increase over the cycles [first, last] and the cycles it spans; None with fewer than 2 points."""
    cycles = sorted(c for c in points if first <= c <= last)
    if len(cycles) < 2:
        return None
    total = sum(b - a if b >= a else b for a, b in itertools.pairwise(points[c] for c in cycles))
    return total, cycles[-1] - cycles[0]


def trend(now: float | None, then: float | None) -> Trend | None:
    if now is None or then is None:
        return None
    if abs(now - then) < TREND_FLOOR_PER_S:
        return "flat"
    if now > then * TREND_RATIO:
        return "up"
    return "down" if now * TREND_RATIO < then else "flat"


@dataclass
class _Rates:
    """Sums over a task's workers of each counter's per-second rate, over one span of cycles."""

    first: int
    last: int
    rates: dict[str, float]
    cycles: int = 0  # the longest span a worker's series covered

    def add(self, figure: str, points: Mapping[int, float], interval_s: float) -> None:
        found = increase(points, self.first, self.last)
        if found is not None and found[1] > 0:
            self.rates[figure] = self.rates.get(figure, 0.0) + found[0] / (found[1] * interval_s)
            self.cycles = max(self.cycles, found[1])

    def finished(self) -> float | None:
        parts = [self.rates[f] for f in ("succeeded_total", "failed_total") if f in self.rates]
        return sum(parts) if parts else None


def task_rows(
    agents: Iterable[AgentInfo], reader: SeriesReader, now: datetime, interval_s: float, text: str = ""
) -> list[TaskRow]:
    """Every task name the live workers report (those holding `text`, in any case), busiest first."""
    by_task = workers_by_task(agents, text)
    rows = [task_row(name, workers, reader, now, interval_s) for name, workers in by_task.items()]
    return sorted(rows, key=lambda r: (-(r.rate_per_s or 0.0), r.name))


def task_row(
    name: str, workers: Sequence[AgentInfo], reader: SeriesReader, now: datetime, interval_s: float
) -> TaskRow:
    """One task name's row, from the live workers that report it."""
    newest = int(now.timestamp() // interval_s)
    window = int(WINDOW_S // interval_s)
    spans = {"now": _Rates(newest - window, newest, {}), "before": _Rates(newest - 2 * window, newest - window, {}),
             "hour": _Rates(newest - int(HOUR_S // interval_s), newest, {})}  # fmt: skip
    totals = dict.fromkeys(OUTCOMES, 0.0)
    percentiles: dict[str, float] = {}
    for a in workers:
        for o in OUTCOMES:
            totals[o] += a.metrics.get(f"task.{name}.{o}_total", 0.0)
        for p in PERCENTILES:
            if (value := a.metrics.get(f"task.{name}.{p}")) is not None:
                percentiles[p] = max(value, percentiles.get(p, value))
        for figure in COUNTERS:
            points = reader.read_cycles(a.agent_id, f"task.{name}.{figure}", now, HOUR_S)
            for rates in spans.values():
                rates.add(figure, points, interval_s)
    current, hour = spans["now"], spans["hour"]
    finished, failed = current.finished(), current.rates.get("failed_total")
    return TaskRow(
        name=name,
        workers=tuple(sorted(a.agent_id for a in workers)),
        totals=totals,
        rate_per_s=finished,
        failure_ratio=(failed or 0.0) / finished if finished else None,
        retries_per_s=current.rates.get("retried_total", 0.0 if finished is not None else None),
        percentiles=percentiles,
        trend_5m=trend(finished, spans["before"].finished()),
        trend_1h=trend(finished, hour.finished()) if hour.cycles * interval_s >= HOUR_S / 2 else None,
    )


def task_charts(
    name: str, workers: Sequence[AgentInfo], reader: SeriesReader, now: datetime, interval_s: float
) -> dict[str, Points]:
    """One task name's last hour: runs finished and failures a second (fleet sums), runtime percentiles (the
    slowest worker's at each collection)."""
    finished: dict[float, float] = {}
    failures: dict[float, float] = {}
    slowest: dict[str, dict[float, float]] = {p: {} for p in CHARTED}
    for a in workers:
        succeeded = reader.read_cycles(a.agent_id, f"task.{name}.succeeded_total", now, HOUR_S)
        failed = reader.read_cycles(a.agent_id, f"task.{name}.failed_total", now, HOUR_S)
        for target, counters in ((finished, (succeeded, failed)), (failures, (failed,))):
            for points in counters:
                for t, value in _per_second(points, interval_s):
                    target[t] = target.get(t, 0.0) + value
        for p in CHARTED:
            for cycle, value in reader.read_cycles(a.agent_id, f"task.{name}.{p}", now, HOUR_S).items():
                t = cycle * interval_s
                slowest[p][t] = max(value, slowest[p].get(t, value))
    charts = {"finished_per_s": finished, "failed_per_s": failures, **slowest}
    return {k: sorted(v.items()) for k, v in charts.items()}


def _per_second(points: Mapping[int, float], interval_s: float) -> Points:
    """A counter's rate between consecutive points, at the later one's time (a restart: its new value)."""
    cycles = sorted(points)
    return [(b * interval_s, (points[b] - points[a] if points[b] >= points[a] else points[b]) / ((b - a) * interval_s))
            for a, b in itertools.pairwise(cycles)]  # fmt: skip
