"""P5: from a critical sample's arrival to its message on `vsm.s5.policy`, through the real alert manager.

The sample: a collection in which a queue holds messages and no worker consumes it (algedonic pain).
Its arrival is the moment the collect task has it: the bench runs the collect task's own code from there
(`screen(collection)` then `report_signals`), a real `vsmmon worker --role alerts` (prefork, Redis,
PostgreSQL) evaluates it (ledger under its lock, step, routing) and sends the S5 message; the time
ends when a blocking pop on the Redis list `vsm.s5.policy` returns it.

Baseline, in the same run and alternating: the same two hops without the alert manager: a notification
handed to the same worker's `vsmmon.alerts.deliver`, which routes it to `vsm.s5.policy` the same way.
Each repetition is the p99 (nearest rank) of `samples` arrivals; the figure is the median repetition.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from bench.common import Result, Stats, Target, alternating, stop
from bench.services import database_url, flushed_redis, redis_url, throwaway_database
from vsmmon import names
from vsmmon.alerts.codec import notification_to_dict
from vsmmon.alerts.model import Alert, AlertStatus, Notification, Severity
from vsmmon.collect.screen import screen
from vsmmon.config import load_settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.names import ALERTS_DELIVER
from vsmmon.store import migrations
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.app import create_app

ID = "P5"
TARGET = Target(max_figure=100.0)
ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
WAIT_S = 5.0  # one arrival may take this long before the run fails
PAUSE_S = 0.02


@dataclass(frozen=True, slots=True)
class Shape:
    repetitions: int
    samples: int
    warmup: int


FULL = Shape(repetitions=5, samples=100, warmup=10)
QUICK = Shape(repetitions=2, samples=30, warmup=3)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class S5Listener:
    """Pops `vsm.s5.policy` in a thread; `wait(target)` returns when a firing about `target` arrived."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.arrived: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            popped = self.client.brpop([names.S5_POLICY_QUEUE], timeout=1)
            if popped is None:
                continue
            at = time.perf_counter()
            envelope = json.loads(popped[1])
            (notification,), _, _ = json.loads(base64.b64decode(envelope["body"]))
            if notification["kind"] == "firing":
                with self.cond:
                    self.arrived[notification["alert"]["target"]] = at
                    self.cond.notify_all()

    def wait(self, target: str) -> float:
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while target not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no S5 message about {target} within {WAIT_S:g} s")
                self.cond.wait(left)
            return self.arrived.pop(target)

    def close(self) -> None:
        self.stop = True
        self.thread.join(timeout=5)
        self.client.close()


@contextmanager
def alerts_worker(env: dict[str, str], url: str) -> Iterator[None]:
    """`vsmmon worker --role alerts` as a subprocess, ready when it answers a ping."""
    command = [sys.executable, "-m", "vsmmon", "worker", "--role", "alerts", "--concurrency", "1",
               "--hostname", f"bench-p5-{uuid.uuid4().hex[:6]}@localhost"]  # fmt: skip
    log = open(os.devnull, "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=log)
    try:
        app = create_app(load_settings({}, broker_url=url))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not app.control.ping(timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the alerts worker did not start")
        yield
    finally:
        stop(process)
        log.close()


def pain_collection(target: str) -> Collection:
    worker = AgentReport("w1@bench", AgentKind.CELERY_WORKER, "bench", {"active": 1.0}, queues=("default",))
    orphan = AgentReport(f"queue:{target}", AgentKind.QUEUE, "", {"messages": 12.0})
    return Collection(uuid.uuid4(), datetime.now(UTC), 10.0, (worker, orphan))


def relay_notification(target: str) -> dict[str, object]:
    now = datetime.now(UTC)
    alert = Alert(uuid.uuid4(), uuid.uuid4().hex[:16], "algedonic", f"queue {target}", Severity.CRITICAL,
                  {"condition": "no_consumer"}, AlertStatus.FIRING, now, now, system_wide=True)  # fmt: skip
    return notification_to_dict(Notification(alert, "firing", ("dashboard", "s5"), now))


def run(quick: bool) -> Result:
    shape = QUICK if quick else FULL
    url = redis_url()
    with ExitStack() as stack:
        stack.enter_context(flushed_redis(url))
        db = stack.enter_context(throwaway_database(database_url()))
        migrations.upgrade(db)
        # the alert settings are the defaults: an orphan's alert stays firing until clear for 60 s, so the ledger
        # evaluated under its lock holds every alert of the last minute (hundreds), as in an incident
        env = {"VSMMON_BROKER_URL": url, "VSMMON_DATABASE_URL": db, "VSMMON_LOG_LEVEL": "WARNING"}
        stack.enter_context(alerts_worker(env, url))
        settings = load_settings({}, broker_url=url, database_url=db)
        app = create_app(settings)
        listener = S5Listener(url)
        stack.callback(listener.close)
        counter = iter(range(10**9))

        def through_manager() -> float:
            target = f"orphan-{next(counter)}"
            started = time.perf_counter()
            report_signals(app, "screen", screen(pain_collection(target)), ttl_s=15.0)  # the collect task's code
            return listener.wait(f"queue {target}") - started

        def relayed() -> float:
            target = f"orphan-{next(counter)}"
            started = time.perf_counter()
            app.send_task(ALERTS_DELIVER, args=([relay_notification(target)],))
            return listener.wait(f"queue {target}") - started

        sides = {True: through_manager, False: relayed}
        for _ in range(shape.warmup):
            for side in sides.values():
                side()
                time.sleep(PAUSE_S)
        reps: dict[bool, list[float]] = {True: [], False: []}
        for _, measured in alternating(shape.repetitions):
            latencies = []
            for _ in range(shape.samples):
                latencies.append(sides[measured]() * 1000)
                time.sleep(PAUSE_S)
            reps[measured].append(p99(latencies))
    return Result(
        id=ID,
        what=(
            "critical alert latency: p99 ms from a collection showing algedonic pain (a queue with messages and "
            f"no consumer) to its message popped from vsm.s5.policy, {shape.samples} arrivals per repetition, each "
            "a new queue, so the ledger holds every alert of the last minute (default settings: resolved once "
            "clear 60 s); a real `vsmmon worker --role alerts` (prefork 1, Redis, PostgreSQL)"
        ),
        unit="ms",
        baseline_name="the same hops without the manager: vsmmon.alerts.deliver relaying a notification to S5",
        figure_name="screen + vsmmon.alerts.evaluate (ledger lock, step, routing) -> vsm.s5.policy",
        baseline=Stats.of(reps[False]),
        figure=Stats.of(reps[True]),
        target=TARGET,
        digits=1,
    )
