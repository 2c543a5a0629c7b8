"""`vsmmon.analysis.run` (beat, every minute): trends, forecasts, exhaustion, capacity, recommendations, accuracy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from vsmmon import names
from vsmmon.alerts.routing import signal_from_recommendation
from vsmmon.analyse import inputs
from vsmmon.analyse.analysis import AnalysisResult, DueForecast, analyse_fleet, merged, observe
from vsmmon.errors import TransientError
from vsmmon.health.inputs import OPERATIONAL, queue_flows
from vsmmon.store.realtime import batches
from vsmmon.workers import beat_schedule
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.context import VsmTask, WorkerContext

ACCURACY_WINDOW_S = 3600
SIGNAL_TTL_S = 3.0 * beat_schedule.ANALYSIS_EVERY_S  # a recommendation holds for three analyses
DUE_LOOKBACK_S = 3000  # forecasts due this long ago can still be scored: the real-time window keeps an hour


def observed_in(
    due: Mapping[str, list[DueForecast]],
    memory: Mapping[str, Mapping[int, float]],
    interval_s: float,
    tolerance_s: float,
) -> list[tuple[DueForecast, float]]:
    """The due memory forecasts of a batch's agents with what was observed; the batch's hour of memory is then let
    go (held for the whole fleet until the end, 10,000 agents' hours were hundreds of MB once forecasts fell due)."""
    observed = {(a, "memory_bytes"): [(c * interval_s, v) for c, v in memory[a].items()] for a in memory if a in due}
    return observe([f for a in memory for f in due.get(a, ())], observed, tolerance_s=tolerance_s)


def score_forecasts(ctx: WorkerContext, scored: list[tuple[DueForecast, float]], now: datetime) -> dict[str, Any]:
    """Store how the forecasts that fell due did; the last hour's sMAPE, as S4 reads it."""
    ctx.store.score_forecasts(scored)
    found, n = ctx.store.forecast_accuracy(now - timedelta(seconds=ACCURACY_WINDOW_S), now)
    return {"smape": found, "forecasts": n, "at": now.isoformat()}


def register(app: Celery) -> None:
    @app.task(
        name=names.ANALYSIS_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False,
        autoretry_for=(TransientError,), retry_backoff=5, max_retries=3,
    )  # fmt: skip
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, now = self.ctx, self.ctx.clock()
        registry = ctx.store.agents(inputs.REGISTRY_METRICS)
        operational = [a for a in registry if a.kind in OPERATIONAL and a.live]
        due = ctx.store.due_forecasts(now - timedelta(seconds=DUE_LOOKBACK_S), now)
        due_memory: dict[str, list[DueForecast]] = {}
        for f in due:
            if f.metric == "memory_bytes":
                due_memory.setdefault(f.agent_id, []).append(f)
        parts: list[AnalysisResult] = []
        scored: list[tuple[DueForecast, float]] = []
        tolerance_s = ctx.settings.collect_interval_s
        for batch in batches(operational, inputs.BATCH_AGENTS):  # an hour of rings of a batch in memory at a time
            window = ctx.realtime.prefetch(inputs.wanted(batch))  # one round trip for the batch
            read = inputs.read(batch, window, ctx.realtime.interval_s, ctx.settings.memory_hard_bytes, now)
            parts.append(analyse_fleet(now, read.memory, read.series, []))
            scored += observed_in(due_memory, read.points, ctx.realtime.interval_s, tolerance_s)
        flows = queue_flows(registry, ctx.realtime, ctx.settings, now)
        parts.append(analyse_fleet(now, [], {}, inputs.demands(registry, flows)))
        result = merged(now, parts)
        accuracy = score_forecasts(ctx, scored, now)
        ctx.store.save_analysis(result)
        ctx.realtime.client.set(names.ANALYSED_AT_KEY, now.isoformat(), ex=600)
        ctx.realtime.client.set(names.EXHAUSTION_KEY, json.dumps(dict(result.exhaustion_s)), ex=600)
        ctx.realtime.client.set(names.ACCURACY_KEY, json.dumps(accuracy), ex=600)
        adjustments = [s for r in result.recommendations if (s := signal_from_recommendation(r, now)) is not None]
        report_signals(self.app, "analysis", adjustments, ttl_s=SIGNAL_TTL_S)  # resource adjustments -> S3
        return {
            "trends": len(result.trends),
            "forecasts": len(result.forecasts),
            "smape": accuracy["smape"],
            # the first 50 (Flower shows them; the store has all): each result passes through the worker's main process
            "recommendations": [f"{r.kind}:{r.target}:{r.action.get('command')}" for r in result.recommendations[:50]],
            "recommendations_total": len(result.recommendations),
        }
