"""Analysis stage: trends, forecasts, time to exhaustion, capacity plans and recommendations for the fleet.

Pure: the analysis task reads series from the real-time window and hands them here with the time.
Series are (seconds since the window start, value) pairs, as `vsmmon.trends` wants them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vsmmon.forecast import HORIZONS_S, CapacityPlan, Forecast, capacity_plan, forecast, time_to_limit
from vsmmon.recommend import Recommendation, dedupe, recommend_for_capacity, recommend_for_memory
from vsmmon.trends import Trend, analyse

Series = tuple[Sequence[float], Sequence[float]]  # (ts_s, values)


@dataclass(frozen=True, slots=True)
class MemorySeries:
    agent_id: str
    series: Series
    limit_bytes: float


@dataclass(frozen=True, slots=True)
class QueueDemand:
    """A queue's arrivals and drain over the window, and the pool that drains it."""

    name: str
    arrival_per_s: float
    drain_per_s: float
    busy_slots: float
    backlog: float
    concurrency: int


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    at: datetime
    trends: tuple[tuple[str, str, int, Trend], ...]  # (agent, metric, window_s, trend)
    forecasts: tuple[tuple[str, str, Forecast], ...]  # (agent, metric, forecast)
    exhaustion_s: Mapping[str, float | None]  # "memory:<agent>" / "backlog:<queue>" -> seconds, None: not approaching
    plans: Mapping[str, CapacityPlan]
    recommendations: tuple[Recommendation, ...]


def analyse_fleet(
    now: datetime,
    memory: Sequence[MemorySeries],
    series: Mapping[tuple[str, str, int], Series],
    queues: Sequence[QueueDemand],
    *,
    drain_target_s: float = 60.0,
) -> AnalysisResult:
    """Everything the prediction and recommendation engines say about the fleet at `now`."""
    trends = [(agent, metric, window, t) for (agent, metric, window), (ts, vs) in series.items()
              if (t := analyse(ts, vs)) is not None]  # fmt: skip
    forecasts: list[tuple[str, str, Forecast]] = []
    exhaustion: dict[str, float | None] = {}
    recommendations: list[Recommendation] = []
    for m in memory:
        ts, vs = m.series
        trend = analyse(ts, vs)
        if trend is None:
            continue
        tte = time_to_limit(ts, vs, m.limit_bytes)
        exhaustion[f"memory:{m.agent_id}"] = tte
        forecasts += [(m.agent_id, "memory_bytes", f) for h in HORIZONS_S if (f := forecast(ts, vs, h)) is not None]
        if (rec := recommend_for_memory(m.agent_id, trend, tte, m.limit_bytes, now)) is not None:
            recommendations.append(rec)
    plans: dict[str, CapacityPlan] = {}
    for q in queues:
        if q.drain_per_s <= 0 or q.concurrency <= 0:
            continue
        plan = capacity_plan(q.arrival_per_s, q.drain_per_s / max(q.busy_slots, 1.0), q.backlog, q.concurrency,
                             drain_target_s)  # fmt: skip
        plans[q.name] = plan
        if (rec := recommend_for_capacity(q.name, plan, now)) is not None:
            recommendations.append(rec)
    return AnalysisResult(now, tuple(trends), tuple(forecasts), exhaustion, plans, tuple(dedupe(recommendations)))
