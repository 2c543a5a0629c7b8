"""P1's collector: a thread that broadcasts `vsm_metrics` on a fixed period while it is enabled."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from celery import Celery

TIMEOUT_S = 1.5
TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class Call:
    """One broadcast: when it started (monotonic s), how long it took, whether the worker answered."""

    started: float
    duration_s: float
    answered: bool


@dataclass
class Collector:
    """Broadcasts like the pipeline's collect task (timeout 1.5 s, limit 1) every `every_s` while enabled.

    The period runs on enabled time only: spans shorter than `every_s` still get calls at its rate.
    """

    app: Celery
    destination: str
    every_s: float
    calls: list[Call] = field(default_factory=list)
    error: Exception | None = None
    enabled: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Collector:
        self._thread = threading.Thread(target=self._loop, name="vsm-collector", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT_S + 5)

    def answered_between(self, start: float, end: float) -> int:
        """How many answered calls started within [start, end] (monotonic s)."""
        return sum(1 for c in self.calls if c.answered and start <= c.started <= end)

    def _loop(self) -> None:
        enabled_s, last = 0.0, time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            if self.enabled.is_set():
                enabled_s += now - last
                if enabled_s >= self.every_s:
                    enabled_s -= self.every_s
                    try:
                        self.calls.append(self._call())
                    except Exception as e:  # kept for the measure to raise: a thread cannot
                        self.error = e
                        return
            last = now

    def _call(self) -> Call:
        started = time.monotonic()
        replies = self.app.control.broadcast(
            "vsm_metrics", reply=True, timeout=TIMEOUT_S, limit=1, destination=[self.destination]
        )
        answered = any("metrics" in (reply.get(self.destination) or {}) for reply in replies or [])
        return Call(started, time.monotonic() - started, answered)
