"""`vsmmon.analysis.run` (beat, every minute): trends, forecasts, exhaustion, capacity, recommendations."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from celery import Celery

from vsmmon.analysis import MemorySeries, QueueDemand, Series, analyse_fleet
from vsmmon.errors import TransientError
from vsmmon.health_inputs import OPERATIONAL, gather
from vsmmon.models import AgentInfo
from vsmmon.realtime import RealtimeWindow
from workers import names
from workers.context import VsmTask

EXHAUSTION_KEY = "vsm:analysis:exhaustion"
TREND_METRICS = ("cpu_percent", "active", "task_runtime_p95_s")
TREND_WINDOW_S = 300


def as_series(points: list[Any], origin: datetime) -> Series:
    return [(p.ts - origin).total_seconds() for p in points], [p.value for p in points]


def memory_series(window: RealtimeWindow, agent_id: str, now: datetime) -> Series:
    """Main process plus pool children, per cycle, over the whole window."""
    main = {p.ts: p.value for p in window.read(agent_id, "rss_bytes", now)}
    children = {p.ts: p.value for p in window.read(agent_id, "children_rss_bytes", now)}
    stamps = sorted(main)
    origin = stamps[0] if stamps else now
    return [(t - origin).total_seconds() for t in stamps], [main[t] + children.get(t, 0.0) for t in stamps]


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
        found.append(QueueDemand(q.name, q.in_per_s, q.out_per_s, busy, q.backlog, concurrency))
    return found


def register(app: Celery) -> None:
    @app.task(
        name=names.ANALYSIS_RUN, base=VsmTask, bind=True, shared=False, ignore_result=False,
        autoretry_for=(TransientError,), retry_backoff=5, max_retries=3,
    )  # fmt: skip
    def run(self: VsmTask) -> dict[str, Any]:
        ctx, now = self.ctx, self.ctx.clock()
        registry = ctx.store.agents()
        operational = [a for a in registry if a.kind in OPERATIONAL and a.status != "offline"]
        memory = [
            MemorySeries(
                a.agent_id,
                memory_series(ctx.realtime, a.agent_id, now),
                a.metrics.get("memory_limit_bytes") or ctx.settings.memory_hard_bytes,
            )
            for a in operational
        ]
        series = {
            (a.agent_id, m, TREND_WINDOW_S): as_series(ctx.realtime.read(a.agent_id, m, now, TREND_WINDOW_S), now)
            for a in operational
            for m in TREND_METRICS
        }
        flows = gather(registry, ctx.realtime, ctx.settings, now).queues
        result = analyse_fleet(now, memory, series, demands(registry, flows))
        ctx.store.save_analysis(result)
        ctx.realtime.client.set(EXHAUSTION_KEY, json.dumps(dict(result.exhaustion_s)), ex=600)
        return {
            "trends": len(result.trends),
            "forecasts": len(result.forecasts),
            "recommendations": [f"{r.kind}:{r.target}:{r.action.get('command')}" for r in result.recommendations],
        }
