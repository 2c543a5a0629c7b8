"""`vsmmon.analysis.run` (beat, every minute): trends, forecasts, exhaustion, capacity, recommendations, accuracy."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

import beat_schedule
from vsmmon import names
from vsmmon.alerts.routing import signal_from_recommendation
from vsmmon.analyse.analysis import MemorySeries, QueueDemand, Series, analyse_fleet, observe
from vsmmon.errors import TransientError
from vsmmon.health.inputs import OPERATIONAL, queue_flows
from vsmmon.models import AgentInfo
from vsmmon.store.realtime import SeriesReader
from workers.alerts import report_signals
from workers.context import VsmTask, WorkerContext

EXHAUSTION_KEY = "vsm:analysis:exhaustion"
ACCURACY_KEY = "vsm:analysis:accuracy"
"""`{"smape": float | null, "forecasts": int, "at": iso}`: sMAPE of the forecasts due in the last hour (for S4)."""
ACCURACY_WINDOW_S = 3600
SIGNAL_TTL_S = 3.0 * beat_schedule.ANALYSIS_EVERY_S  # a recommendation holds for three analyses
DUE_LOOKBACK_S = 3000  # forecasts due this long ago can still be scored: the real-time window keeps an hour
MEMORY_METRICS = ("rss_bytes", "children_rss_bytes")
TREND_METRICS = ("cpu_percent", "active", "task_runtime_p95_s")
TREND_WINDOW_S = 300


def as_series(points: list[Any], origin: datetime) -> Series:
    return [(p.ts - origin).total_seconds() for p in points], [p.value for p in points]


def memory_points(window: SeriesReader, agent_id: str, now: datetime) -> dict[int, float]:
    """Main process plus pool children, {cycle: bytes}, over the whole window (oldest first)."""
    main = window.read_cycles(agent_id, "rss_bytes", now)
    children = window.read_cycles(agent_id, "children_rss_bytes", now)
    return {c: v + children.get(c, 0.0) for c, v in main.items()}


def relative(points: dict[int, float], interval_s: float) -> Series:
    """{cycle: value} as seconds since the first cycle, and values."""
    origin = next(iter(points), 0)
    return [(c - origin) * interval_s for c in points], list(points.values())


def demands(registry: list[AgentInfo], flows: list[Any]) -> list[QueueDemand]:
    """Each queue's arrivals and drain, with the concurrency and busy slots of its live consumers."""
    live_workers = [a for a in registry if a.kind == "celery_worker" and a.status != "offline"]
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


def score_forecasts(ctx: WorkerContext, memory: dict[str, dict[int, float]], now: datetime) -> dict[str, Any]:
    """Compare the forecasts that fell due with what happened; the last hour's sMAPE, as S4 reads it."""
    due = ctx.store.due_forecasts(now - timedelta(seconds=DUE_LOOKBACK_S), now)
    interval_s = ctx.realtime.interval_s
    observed = {(f.agent_id, f.metric): [(c * interval_s, v) for c, v in memory.get(f.agent_id, {}).items()]
                for f in due if f.metric == "memory_bytes"}  # fmt: skip
    ctx.store.score_forecasts(observe(due, observed, tolerance_s=ctx.settings.collect_interval_s))
    found, n = ctx.store.forecast_accuracy(now - timedelta(seconds=ACCURACY_WINDOW_S), now)
    return {"smape": found, "forecasts": n, "at": now.isoformat()}


def register(app: Celery) -> None:
    @app.task(
        name=names.ANALYSIS_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False,
        autoretry_for=(TransientError,), retry_backoff=5, max_retries=3,
    )  # fmt: skip
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, now = self.ctx, self.ctx.clock()
        registry = ctx.store.agents()
        operational = [a for a in registry if a.kind in OPERATIONAL and a.status != "offline"]
        wanted = [(a.agent_id, m) for a in operational for m in (*MEMORY_METRICS, *TREND_METRICS)]
        window = ctx.realtime.prefetch(wanted)  # one round trip for the fleet
        points = {a.agent_id: memory_points(window, a.agent_id, now) for a in operational}
        memory = [MemorySeries(a.agent_id, relative(points[a.agent_id], ctx.realtime.interval_s),
                               a.metrics.get("memory_limit_bytes") or ctx.settings.memory_hard_bytes)
                  for a in operational]  # fmt: skip
        series = {
            (a.agent_id, m, TREND_WINDOW_S): as_series(window.read(a.agent_id, m, now, TREND_WINDOW_S), now)
            for a in operational
            for m in TREND_METRICS
        }
        flows = queue_flows(registry, ctx.realtime, ctx.settings, now)
        result = analyse_fleet(now, memory, series, demands(registry, flows))
        accuracy = score_forecasts(ctx, points, now)
        ctx.store.save_analysis(result)
        ctx.realtime.client.set(EXHAUSTION_KEY, json.dumps(dict(result.exhaustion_s)), ex=600)
        ctx.realtime.client.set(ACCURACY_KEY, json.dumps(accuracy), ex=600)
        adjustments = [s for r in result.recommendations if (s := signal_from_recommendation(r, now)) is not None]
        report_signals(self.app, "analysis", adjustments, ttl_s=SIGNAL_TTL_S)  # resource adjustments -> S3
        return {
            "trends": len(result.trends),
            "forecasts": len(result.forecasts),
            "smape": accuracy["smape"],
            "recommendations": [f"{r.kind}:{r.target}:{r.action.get('command')}" for r in result.recommendations],
        }
