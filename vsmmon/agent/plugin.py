"""The worker-side plugin: inspect commands that answer from inside each Celery worker.

`vsm_metrics` replies with psutil readings of the worker's main process and its pool children,
its concurrency and its active and reserved task counts, and the software version. Every probe is
bounded and an error becomes a field of the reply: the command never raises inside the worker.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from celery import Celery
from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from vsmmon import __version__
from vsmmon.sources.process import ProcessProbe

_probes: dict[int, ProcessProbe] = {}  # one per worker main process, kept for cpu_percent's sake
_started = time.monotonic()


def install(app: Celery) -> None:
    """Register the commands (Celery keeps a process-wide registry; registering twice is harmless)."""
    app.conf.setdefault("vsmmon_plugin", __version__)


@inspect_command(name="vsm_metrics")
def vsm_metrics(state: Any, **_: Any) -> dict[str, Any]:
    """CPU, memory, threads, fds and task counts of this worker, read now."""
    metrics: dict[str, float] = {}
    errors: dict[str, str] = {}
    try:
        pool = state.consumer.pool
        info = getattr(pool, "info", None) or {}
        children = [int(pid) for pid in info.get("processes", []) if isinstance(pid, int)]
        metrics["concurrency"] = float(getattr(state.consumer.controller, "concurrency", 0) or 0)
    except Exception as e:
        children = []
        errors["pool"] = repr(e)
    try:
        probe = _probes.get(os.getpid()) or _probes.setdefault(os.getpid(), ProcessProbe(os.getpid()))
        readings, probe_errors = probe.read(children)
        metrics.update(readings)
        errors.update(probe_errors)
    except Exception as e:
        errors["psutil"] = repr(e)
    metrics["active"] = float(len(worker_state.active_requests))
    metrics["reserved"] = float(len(worker_state.reserved_requests))
    metrics["tasks_received_total"] = float(sum(worker_state.total_count.values()))
    metrics["uptime_s"] = time.monotonic() - _started
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": __version__,
        "metrics": metrics,
        "errors": errors,
    }


@inspect_command(name="vsm_health")
def vsm_health(state: Any, **_: Any) -> dict[str, Any]:
    """A cheap liveness answer: the worker's consumer loop is running."""
    return {"ok": True, "pid": os.getpid(), "version": __version__, "uptime_s": time.monotonic() - _started}
