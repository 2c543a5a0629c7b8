"""The task and queue tables and one task's or queue's detail as JSON, read from the registry, the real-time
window and the failures.

What the API (`GET /api/v1/tasks`, `/api/v1/queues`) and the CLI (`vsmmon tasks`) answer with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from vsmmon.config import Settings
from vsmmon.health.inputs import queue_flows
from vsmmon.store.base import Store
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.tasks.failures import FailureBook
from vsmmon.tasks.queues import PREFIX, queue_charts, queue_rows
from vsmmon.tasks.table import CHARTED, series_for, task_charts, task_row, task_rows, workers_by_task

SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "rate": lambda r: (-(r["rate_per_s"] or 0.0), r["name"]),
    "failures": lambda r: (-(r["failure_ratio"] or 0.0), -r["failed_total"], r["name"]),
    "p95": lambda r: (-(r["runtime_p95_s"] or 0.0), r["name"]),
    "name": lambda r: r["name"],
}
"""Busiest first, failing first, slowest first, or by name."""


def table(
    store: Store, window: RealtimeWindow, now: datetime, text: str = "", sort: str = "rate"
) -> list[dict[str, Any]]:
    """Every task name the live workers report (those holding `text`, any case), each with its newest failure."""
    agents = store.agents()
    reader = window.prefetch(series_for(workers_by_task(agents, text)))
    rows = [r.to_dict() for r in task_rows(agents, reader, now, window.interval_s, text)]
    last = FailureBook(window.client).last([r["name"] for r in rows], n=1)
    found = [{**r, "last_failure": last[r["name"]][0].to_dict() if last[r["name"]] else None} for r in rows]
    return sorted(found, key=SORTS[sort])


def detail(store: Store, window: RealtimeWindow, name: str, now: datetime) -> dict[str, Any] | None:
    """One task name's row, last failures (newest first) and last hour's charts; None when no live worker has it."""
    workers = workers_by_task(store.agents()).get(name)
    if workers is None:
        return None
    reader = window.prefetch(
        series_for({name: workers}, ("succeeded_total", "failed_total", "retried_total", *CHARTED))
    )
    row = task_row(name, workers, reader, now, window.interval_s)  # only this name's series: all prefetched
    charts = task_charts(name, workers, reader, now, window.interval_s)
    failures = FailureBook(window.client).last([name])[name]
    return {"task": row.to_dict(), "failures": [f.to_dict() for f in failures],
            "charts": {k: [[t, v] for t, v in points] for k, points in charts.items()}}  # fmt: skip


def queues(store: Store, window: RealtimeWindow, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every live queue, longest first: length, consumers, oldest message's age, arrivals, drain, drain time."""
    agents = store.agents()
    return [r.to_dict() for r in queue_rows(agents, queue_flows(agents, window, settings, now))]


def queue_detail(
    store: Store, window: RealtimeWindow, settings: Settings, name: str, now: datetime
) -> dict[str, Any] | None:
    """One queue's row and last hour's charts; None when no live queue has the name."""
    agents = store.agents()
    if not any(a.agent_id == PREFIX + name and a.live for a in agents):
        return None
    flows = [f for f in queue_flows(agents, window, settings, now) if f.name == name]
    row = next(r for r in queue_rows(agents, flows) if r.name == name)
    charts = queue_charts(name, window, now, window.interval_s)
    return {"queue": row.to_dict(), "charts": {k: [[t, v] for t, v in points] for k, points in charts.items()}}
