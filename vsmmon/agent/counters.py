"""Per-task-name counters and latency percentiles kept inside a worker's main process.

Pure and Celery-free: the plugin feeds it from the worker's request hooks and reads `snapshot()` when
`vsm_metrics` is asked. Memory is bounded: a fixed number of task names (the rest count as `other`),
fixed-size windows of recent runtimes and queue waits (worker-wide and per name), fixed runtime buckets per name
(`names.RUNTIME_BUCKETS_MS`), the last `MAX_FAILURES` failures, and at most `FOLD_EVERY` successes pending.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from vsmmon.names import RUNTIME_BUCKETS_MS, RUNTIME_COUNT, RUNTIME_SUM, runtime_bucket

MAX_TASK_NAMES = 25
OTHER = "other"
RECENT = 1024
RECENT_PER_TASK = 128
MAX_FAILURES = 10
"""Failures kept for the reply (`recent_failures`): exception type and message; arguments only when opted in."""
FOLD_EVERY = 64
"""Successes kept pending at most before they are folded into the counters."""
_BOUNDS_S: tuple[float, ...] = tuple(ms / 1000 for ms in RUNTIME_BUCKETS_MS)


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks, as numpy's default."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed run, as the worker saw it: what raised, when (epoch seconds); its arguments only where the
    operator opted in (`install(app, failure_arguments=True)`), since they can hold secrets."""

    task: str
    task_id: str
    exception: str  # the exception's class, module-qualified unless a builtin
    message: str  # its text, cut to MAX_MESSAGE characters
    at: float
    arguments: str | None = None  # the sender's argsrepr and kwargsrepr, cut to MAX_MESSAGE characters


MAX_MESSAGE = 300


def _reply(f: Failure) -> dict[str, Any]:
    """A failure as a reply carries it: `arguments` only when they were kept."""
    found = asdict(f)
    if f.arguments is None:
        del found["arguments"]
    return found


@dataclass
class _TaskStats:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    rejected: int = 0
    runtimes_s: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_PER_TASK))
    waits_s: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_PER_TASK))
    buckets: list[int] = field(default_factory=lambda: [0] * len(_BOUNDS_S))  # successes per bucket, not cumulative
    runtime_sum_s: float = 0.0

    def observe(self, runtime_s: float) -> None:
        """One success in the histogram (a runtime past the last bound counts in `+Inf` only, as Prometheus')."""
        i = bisect_left(_BOUNDS_S, runtime_s)
        if i < len(_BOUNDS_S):
            self.buckets[i] += 1
        self.runtime_sum_s += runtime_s


class TaskCounters:
    """Thread-safe (the threads pool calls the hooks from several threads), with a lock-free hot path.

    A success, by far the most frequent event, is one `deque.append` (atomic under the GIL) of its name and
    runtime; every `FOLD_EVERY` successes, and before a snapshot, the pending ones are folded into the
    per-name counters under the lock. Queue waits go straight into their bounded deque. The rare
    outcomes (failed, retried, rejected) take the lock.
    """

    def __init__(self, not_load: frozenset[str] = frozenset()) -> None:
        self._not_load = not_load  # counted, with their own runtimes, but left out of the worker's percentiles
        self._lock = threading.Lock()
        self._tasks: dict[str, _TaskStats] = {}
        self._runtimes_s: deque[float] = deque(maxlen=RECENT)
        self._waits_s: deque[float] = deque(maxlen=RECENT)
        self._done: deque[tuple[str, float, float | None]] = deque()
        self._failures: deque[Failure] = deque(maxlen=MAX_FAILURES)

    def _stats(self, name: str) -> _TaskStats:
        stats = self._tasks.get(name)
        if stats is None:
            key = name if len(self._tasks) < MAX_TASK_NAMES else OTHER
            stats = self._tasks.setdefault(key, _TaskStats())
        return stats

    def succeeded(self, name: str, runtime_s: float, wait_s: float | None = None) -> None:
        """One success, with its queue wait (publication to start) when the worker knows it."""
        done = self._done
        done.append((name, runtime_s, wait_s))
        if len(done) >= FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        """Count the pending successes (each exactly once: `popleft` is atomic too)."""
        with self._lock:
            done, stats_of = self._done, self._stats
            for _ in range(len(done)):
                name, runtime_s, wait_s = done.popleft()
                stats = stats_of(name)
                stats.succeeded += 1
                stats.runtimes_s.append(runtime_s)
                stats.observe(runtime_s)
                if name not in self._not_load:
                    self._runtimes_s.append(runtime_s)
                if wait_s is not None and wait_s >= 0:
                    stats.waits_s.append(wait_s)
                    self._waits_s.append(wait_s)

    def failed(
        self, name: str, runtime_s: float | None, wait_s: float | None = None, failure: Failure | None = None
    ) -> None:
        with self._lock:
            stats = self._stats(name)
            stats.failed += 1
            if runtime_s is not None:
                stats.runtimes_s.append(runtime_s)
                if name not in self._not_load:
                    self._runtimes_s.append(runtime_s)
            if wait_s is not None and wait_s >= 0:
                stats.waits_s.append(wait_s)
                self._waits_s.append(wait_s)
            if failure is not None:
                self._failures.append(failure)

    def recent_failures(self, since: float) -> list[dict[str, Any]]:
        """The kept failures at or after `since` (epoch seconds), oldest first, as the reply carries them."""
        with self._lock:
            return [_reply(f) for f in self._failures if f.at >= since]

    def retried(self, name: str) -> None:
        with self._lock:
            self._stats(name).retried += 1

    def rejected(self, name: str) -> None:
        with self._lock:
            self._stats(name).rejected += 1

    def waited(self, wait_s: float) -> None:
        """Queue wait of one task whose name is not known: from its publication to its start in this worker."""
        if wait_s >= 0:
            self._waits_s.append(wait_s)

    def snapshot(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Worker-wide metrics, and per task name its counters, runtime and queue-wait percentiles, and runtime
        histogram (successes)."""
        self._fold()
        with self._lock:
            runtimes = sorted(self._runtimes_s)
            waits = sorted(self._waits_s.copy())  # a copy is atomic; appends go on without the lock
            per_task = {name: _task_metrics(stats) for name, stats in self._tasks.items()}
        totals = {
            f"tasks_{kind}_total": float(sum(t[f"{kind}_total"] for t in per_task.values()))
            for kind in ("succeeded", "failed", "retried", "rejected")
        }
        if runtimes:
            totals.update(
                task_runtime_p50_s=percentile(runtimes, 0.5),
                task_runtime_p95_s=percentile(runtimes, 0.95),
                task_runtime_p99_s=percentile(runtimes, 0.99),
            )
        if waits:
            totals.update(queue_wait_p50_s=percentile(waits, 0.5), queue_wait_p95_s=percentile(waits, 0.95))
        return totals, per_task


def _task_metrics(stats: _TaskStats) -> dict[str, float]:
    metrics = {
        "succeeded_total": float(stats.succeeded),
        "failed_total": float(stats.failed),
        "retried_total": float(stats.retried),
        "rejected_total": float(stats.rejected),
    }
    if stats.runtimes_s:
        runtimes = sorted(stats.runtimes_s)
        for q in (50, 95, 99):
            metrics[f"runtime_p{q}_s"] = percentile(runtimes, q / 100)
    if stats.waits_s:
        waits = sorted(stats.waits_s.copy())
        metrics["wait_p50_s"], metrics["wait_p95_s"] = percentile(waits, 0.5), percentile(waits, 0.95)
    if stats.succeeded:  # the histogram of successes, as celery-exporter's: sparse, a bound only where runs are
        metrics[RUNTIME_COUNT], metrics[RUNTIME_SUM] = float(stats.succeeded), stats.runtime_sum_s
        cumulative = 0
        for bound_ms, count in zip(RUNTIME_BUCKETS_MS, stats.buckets, strict=True):
            cumulative += count
            if count:
                metrics[runtime_bucket(bound_ms)] = float(cumulative)
    return metrics
