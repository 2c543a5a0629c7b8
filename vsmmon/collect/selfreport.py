"""vsmmon's own processes that are not Celery workers (HTTP service, beat) report themselves.

Each pushes a `pipeline` report every interval into the staging buffer, as a pushed agent would:
its process figures (CPU, memory, threads, fds, GC), plus what the caller adds (the HTTP service's
request rate and latency).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from time import monotonic

from vsmmon import __version__
from vsmmon.agent.counters import percentile
from vsmmon.agent.process import ProcessProbe, runtime_metrics
from vsmmon.collect.staging import Staging
from vsmmon.models import AgentKind, AgentReport

log = logging.getLogger(__name__)


def self_report(agent_id: str, probe: ProcessProbe, extra: dict[str, float], interval_s: float) -> AgentReport:
    """This process's report: psutil figures, runtime figures and `extra`."""
    metrics, errors = probe.read()
    metrics.update(runtime_metrics())
    metrics.update(extra)
    return AgentReport(
        agent_id, AgentKind.PIPELINE, socket.gethostname(), metrics, f"vsmmon {__version__}", errors,
        interval_s=interval_s,
    )  # fmt: skip


def process_agent_id(role: str) -> str:
    return f"vsmmon-{role}@{socket.gethostname()}"


class SelfReporter:
    """A daemon thread pushing this process's report every interval until `stop()`."""

    def __init__(
        self,
        role: str,
        staging: Staging,
        interval_s: float,
        extra: Callable[[], dict[str, float]] = dict,
    ) -> None:
        self.agent_id = process_agent_id(role)
        self._staging, self._interval_s, self._extra = staging, interval_s, extra
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vsmmon-self-{role}", daemon=True)

    def start(self) -> SelfReporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        probe = ProcessProbe(os.getpid())
        failing: str | None = None  # logged when it starts, changes and ends: not every interval
        while not self._stop.wait(self._interval_s):
            try:
                self._staging.push([self_report(self.agent_id, probe, self._extra(), self._interval_s)])
            except Exception as e:  # the thread must outlive any fault; each fault is logged
                if repr(e) != failing:
                    log.warning("self-report of %s failed, retrying every %.0f s: %r", self.agent_id,
                                self._interval_s, e)  # fmt: skip
                failing = repr(e)
                continue
            if failing is not None:
                log.warning("self-report of %s works again", self.agent_id)
                failing = None


class RequestStats:
    """Request count, 5xx count and recent latencies of the HTTP service (thread-safe)."""

    def __init__(self, recent: int = 2048) -> None:
        self._lock = threading.Lock()
        self._latencies_s: deque[float] = deque(maxlen=recent)
        self.requests_total = 0
        self.errors_total = 0
        self._last_total = 0
        self._last_at = monotonic()

    def observe(self, status: int, latency_s: float) -> None:
        with self._lock:
            self.requests_total += 1
            self.errors_total += status >= 500
            self._latencies_s.append(latency_s)

    def metrics(self) -> dict[str, float]:
        """Totals, the request rate since the previous call, and latency percentiles."""
        with self._lock:
            now = monotonic()
            rate = (self.requests_total - self._last_total) / max(now - self._last_at, 1e-9)
            self._last_total, self._last_at = self.requests_total, now
            latencies = sorted(self._latencies_s)
            figures = {
                "http_requests_total": float(self.requests_total),
                "http_5xx_total": float(self.errors_total),
                "http_requests_per_s": rate,
            }
        if latencies:
            figures["http_latency_p50_s"] = percentile(latencies, 0.5)
            figures["http_latency_p95_s"] = percentile(latencies, 0.95)
        return figures
