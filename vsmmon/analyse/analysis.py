"""Analysis stage: trends, forecasts, time to exhaustion, capacity plans and recommendations for the fleet.

Pure: the analysis task reads series from the real-time window and hands them here with the time.
Series are (seconds since the window start, value) pairs, as `vsmmon.trends` wants them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vsmmon.analyse.forecast import HORIZONS_S, CapacityPlan, Forecast, capacity_plan, forecast, smape
from vsmmon.analyse.growth import growth
from vsmmon.analyse.recommend import (
    Recommendation,
    dedupe,
    for_consumers,
    recommend_for_capacity,
    recommend_for_growth,
    recommend_for_memory,
    recommend_for_stall,
)
from vsmmon.analyse.trends import Trend, analyse

Series = tuple[Sequence[float], Sequence[float]]  # (ts_s, values)


@dataclass(frozen=True, slots=True)
class MemorySeries:
    agent_id: str
    series: Series
    limit_bytes: float
    breaks_s: tuple[float, ...] = ()  # times (as in `series`) a new regime began: the pool resized, a restart


@dataclass(frozen=True, slots=True)
class QueueDemand:
    """A queue's arrivals and drain over the window, and the pool that drains it."""

    name: str
    arrival_per_s: float
    drain_per_s: float
    busy_slots: float
    backlog: float
    concurrency: int
    consumers: tuple[tuple[str, int], ...] = ()  # (worker hostname, pool size): where S3 sends the adjustment


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    at: datetime
    trends: tuple[tuple[str, str, int, Trend], ...]  # (agent, metric, window_s, trend)
    forecasts: tuple[tuple[str, str, Forecast], ...]  # (agent, metric, forecast)
    exhaustion_s: Mapping[str, float | None]  # "memory:<agent>" / "backlog:<queue>" -> seconds, None: not approaching
    plans: Mapping[str, CapacityPlan]
    recommendations: tuple[Recommendation, ...]


def finite(series: Series) -> Series:
    """The points whose time and value are finite numbers: one bad sample costs its point, not the series."""
    ts, vs = series
    if all(map(math.isfinite, ts)) and all(map(math.isfinite, vs)):
        return ts, vs
    kept = [(t, v) for t, v in zip(ts, vs, strict=True) if math.isfinite(t) and math.isfinite(v)]
    return [t for t, _ in kept], [v for _, v in kept]


def analyse_fleet(
    now: datetime,
    memory: Sequence[MemorySeries],
    series: Mapping[tuple[str, str, int], Series],
    queues: Sequence[QueueDemand],
    *,
    drain_target_s: float = 60.0,
) -> AnalysisResult:
    """Everything the prediction and recommendation engines say about the fleet at `now`."""
    trends = [(agent, metric, window, t) for (agent, metric, window), points in series.items()
              if (t := analyse(*finite(points))) is not None]  # fmt: skip
    forecasts: list[tuple[str, str, Forecast]] = []
    exhaustion: dict[str, float | None] = {}
    recommendations: list[Recommendation] = []
    for m in memory:
        ts, vs = finite(m.series)
        if len(vs) < 2 or len(set(ts)) < 2 or (g := growth(ts, vs, m.limit_bytes, breaks_s=m.breaks_s)) is None:
            continue
        # one least-squares fit of the current regime serves the time to the limit, the forecasts and the advice
        # (the memory trend is not stored: Holt, anomaly and change point of an hour of points would cost more)
        exhaustion[f"memory:{m.agent_id}"] = g.time_to_limit_s
        regime = ts[g.start :], vs[g.start :]
        forecasts += [(m.agent_id, "memory_bytes", f) for h in HORIZONS_S
                      if (f := forecast(*regime, h, fit=g.fit)) is not None]  # fmt: skip
        if (rec := recommend_for_memory(m.agent_id, g, m.limit_bytes, now)) is not None:
            recommendations.append(rec)
        elif (trend := recommend_for_growth(m.agent_id, g, m.limit_bytes, now)) is not None:
            recommendations.append(trend)
    plans: dict[str, CapacityPlan] = {}
    for q in queues:
        if q.drain_per_s <= 0 or q.concurrency <= 0:
            if (stall := recommend_for_stall(q.name, q.backlog, q.busy_slots, q.concurrency, now)) is not None:
                recommendations += for_consumers(stall, q.name, q.consumers)
            continue
        plan = capacity_plan(q.arrival_per_s, q.drain_per_s / max(q.busy_slots, 1.0), q.backlog, q.concurrency,
                             drain_target_s)  # fmt: skip
        plans[q.name] = plan
        if (rec := recommend_for_capacity(q.name, plan, now)) is not None:
            recommendations += for_consumers(rec, q.name, q.consumers)
    return AnalysisResult(now, tuple(trends), tuple(forecasts), exhaustion, plans, tuple(dedupe(recommendations)))


def merged(now: datetime, parts: Sequence[AnalysisResult]) -> AnalysisResult:
    """Analyses of parts of the fleet (each agent in one part, each queue in one) as one analysis at `now`.

    Every figure but the recommendations belongs to one agent or queue, so the parts' figures are the whole
    fleet's; recommendations are deduplicated across the parts as within one (`dedupe`)."""
    return AnalysisResult(
        now,
        tuple(t for p in parts for t in p.trends),
        tuple(f for p in parts for f in p.forecasts),
        {k: v for p in parts for k, v in p.exhaustion_s.items()},
        {k: v for p in parts for k, v in p.plans.items()},
        tuple(dedupe(r for p in parts for r in p.recommendations)),
    )


@dataclass(frozen=True, slots=True)
class DueForecast:
    """A stored forecast: made `at` for `horizon_s` later (its due time), not yet compared with what happened."""

    at: datetime
    agent_id: str
    metric: str
    horizon_s: int
    value: float

    @property
    def due_at(self) -> datetime:
        return self.at + timedelta(seconds=self.horizon_s)


def observe(
    due: Sequence[DueForecast],
    observed: Mapping[tuple[str, str], Sequence[tuple[float, float]]],
    tolerance_s: float,
) -> list[tuple[DueForecast, float]]:
    """Each due forecast with the value observed nearest its due time (within `tolerance_s`); unseen ones left out.

    `observed` holds (Unix seconds, value) points in time order for each (agent, metric).
    """
    # A forecast extrapolates from the series' last sample, at most one collection interval before `at`, so its
    # target time is within one interval of `due_at`: the nearest observation within that tolerance is its truth.
    scored = []
    for f in due:
        points = observed.get((f.agent_id, f.metric), ())
        due_s = f.due_at.timestamp()
        i = bisect.bisect_left(points, (due_s,))
        near = [points[j] for j in (i - 1, i) if 0 <= j < len(points)]
        if not near:
            continue
        t, value = min(near, key=lambda p: abs(p[0] - due_s))
        if abs(t - due_s) <= tolerance_s:
            scored.append((f, value))
    return scored


def accuracy(pairs: Sequence[tuple[float, float]]) -> float | None:
    """sMAPE of (predicted, actual) pairs, in [0, 1]; None without any."""
    if not pairs:
        return None
    return smape([a for _, a in pairs], [p for p, _ in pairs])
