"""Per-process metrics from psutil for a worker's main process and its pool children.

`Process` objects are kept between calls: the first `cpu_percent()` of a Process is meaningless,
and re-creating them every cycle would make every reading the first.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable

import psutil


class ProcessProbe:
    """Reads CPU %, RSS, threads, fds and context switches of one process and the given children."""

    def __init__(self, pid: int) -> None:
        self._main = psutil.Process(pid)
        self._main.cpu_percent(interval=None)
        self._children: dict[int, psutil.Process] = {}

    def read(self, child_pids: Iterable[int] = ()) -> tuple[dict[str, float], dict[str, str]]:
        """Metrics of the main process (`*`) and the sum over `child_pids` (`children_*`)."""
        metrics: dict[str, float] = {}
        errors: dict[str, str] = {}
        try:
            metrics.update(_read_one(self._main))
        except psutil.Error as e:
            errors["process"] = repr(e)
        totals = {"children_cpu_percent": 0.0, "children_rss_bytes": 0.0}
        alive = self._track(child_pids)
        for pid, child in alive.items():
            try:
                with child.oneshot():
                    totals["children_cpu_percent"] += child.cpu_percent(interval=None)
                    totals["children_rss_bytes"] += float(child.memory_info().rss)
            except psutil.Error:
                self._children.pop(pid, None)  # it exited between listing and reading
        metrics.update(totals)
        metrics["children"] = float(len(alive))
        return metrics, errors

    def _track(self, child_pids: Iterable[int]) -> dict[int, psutil.Process]:
        wanted = set(child_pids)
        for pid in list(self._children):
            if pid not in wanted:
                del self._children[pid]
        for pid in wanted - set(self._children):
            try:
                child = psutil.Process(pid)
                child.cpu_percent(interval=None)
                self._children[pid] = child
            except psutil.Error:
                continue
        return dict(self._children)


def _read_one(process: psutil.Process) -> dict[str, float]:
    with process.oneshot():
        switches = process.num_ctx_switches()
        return {
            "cpu_percent": process.cpu_percent(interval=None),
            "rss_bytes": float(process.memory_info().rss),
            "threads": float(process.num_threads()),
            "open_fds": float(process.num_fds()),
            "ctx_switches_total": float(switches.voluntary + switches.involuntary),
        }


def runtime_metrics() -> dict[str, float]:
    """The Python runtime of this process: GC generations and collections, live threads."""
    counts = gc.get_count()
    stats = gc.get_stats()
    return {
        "gc_objects_gen0": float(counts[0]),
        "gc_collections_total": float(sum(s["collections"] for s in stats)),
        "gc_uncollectable_total": float(sum(s["uncollectable"] for s in stats)),
        "python_threads": float(threading.active_count()),
    }
