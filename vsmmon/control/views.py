"""What S3 knows of the workers it may act on, pure: the registry's candidates for an alert, inspect
`stats` replies read as `WorkerView`s, and the cooldown's last action per target."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vsmmon.control.s3 import WorkerView
from vsmmon.models import AgentInfo, AgentKind
from vsmmon.store.alert_records import ControlAction

MAX_CANDIDATES = 20

Known = tuple[str, tuple[str, ...], float | None, float | None]  # hostname, queues, saturation, their backlog
"""A worker as the registry knows it: hostname, the queues it consumes, its last saturation."""


def saturation(metrics: Mapping[str, float]) -> float:
    """active / concurrency of the last collection (0 without a concurrency)."""
    concurrency = metrics.get("concurrency") or 0.0
    return float(metrics.get("active", 0.0)) / concurrency if concurrency else 0.0


def candidates(agents: Iterable[AgentInfo], target: str) -> list[Known]:
    """Live Celery workers that an alert on `target` (a worker, "queue NAME", a system) may concern, busiest
    first, at most `MAX_CANDIDATES`."""
    live = [a for a in agents if a.kind is AgentKind.CELERY_WORKER and a.live]
    if target.startswith("queue "):
        live = [a for a in live if target.removeprefix("queue ") in a.queues]
    elif any(a.agent_id == target for a in live):
        live = [a for a in live if a.agent_id == target]
    busiest = sorted(live, key=lambda a: -saturation(a.metrics))[:MAX_CANDIDATES]
    waiting = {a.agent_id.removeprefix("queue:"): a.metrics["messages"] for a in agents
               if a.kind is AgentKind.QUEUE and "messages" in a.metrics}  # fmt: skip
    return [(a.agent_id, tuple(a.queues), saturation(a.metrics), backlog(a.queues, waiting)) for a in busiest]


def backlog(queues: Iterable[str], waiting: Mapping[str, float]) -> float | None:
    """Messages waiting in these queues at the last collection; None when none of them was read."""
    known = [waiting[q] for q in queues if q in waiting]
    return sum(known) if known else None


def worker_view(
    hostname: str, stats: Mapping[str, Any], queues: tuple[str, ...], sat: float | None, waiting: float | None = None
) -> WorkerView:
    """One worker's inspect `stats` reply: its pool type, process count and autoscale range."""
    pool = stats.get("pool") or {}
    implementation = str(pool.get("implementation", ""))  # e.g. "celery.concurrency.prefork:TaskPool"
    kind = implementation.split(":", maxsplit=1)[0].rsplit(".", 1)[-1] or "unknown"
    processes = pool.get("processes")
    count = len(processes) if isinstance(processes, list) else int(pool.get("max-concurrency") or 0)
    scaler = stats.get("autoscaler") or None
    autoscale = (int(scaler["max"]), int(scaler["min"])) if isinstance(scaler, dict) and "max" in scaler else None
    return WorkerView(hostname, kind, count, queues, autoscale, sat, waiting)


def worker_views(known: Sequence[Known], replies: Mapping[str, Any]) -> list[WorkerView]:
    """The known workers that answered `stats` (one that did not, or answered garbage, is left out)."""
    return [
        worker_view(host, s, queues, sat, waiting)
        for host, queues, sat, waiting in known
        if isinstance(s := replies.get(host), dict)
    ]


def shown(view: WorkerView | None) -> dict[str, Any]:
    """A view as an action's recorded "before" / "after"."""
    if view is None:
        return {}
    return {"processes": view.processes, "pool": view.pool, "autoscale": list(view.autoscale or []) or None}


def last_actions(actions: Iterable[ControlAction]) -> dict[str, datetime]:
    """The newest applied (not dry-run, not "none") action per target, from recorded actions newest first."""
    last: dict[str, datetime] = {}
    for done in actions:
        if done.applied:
            last.setdefault(done.target, done.at)
    return last
