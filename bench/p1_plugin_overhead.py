"""P1: no-op task throughput of a worker with the vsmmon plugin being collected from, against one without."""

from __future__ import annotations

import secrets
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass

import redis
from celery import Celery

from bench.celery_worker import Producer, Worker, running_producer, running_worker
from bench.collector_thread import Collector
from bench.common import Result, Stats, Target, alternating
from bench.fleet_app import COUNTER_KEY, DONE_KEY, MARKS_KEY, create_app
from bench.services import flushed_redis, redis_url

ID = "P1"
TARGET = Target(min_ratio=0.99)
CONCURRENCY = 2
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Shape:
    """How much one repetition runs, and how often the collector calls while the plugin is measured."""

    tasks: int
    warmup: int
    repetitions: int
    collect_every_s: float


FULL = Shape(tasks=800, warmup=100, repetitions=20, collect_every_s=5.0)
QUICK = Shape(tasks=300, warmup=30, repetitions=3, collect_every_s=1.0)


@dataclass(frozen=True, slots=True)
class Side:
    """One variant of the monitored app: its worker and its producer, both running."""

    worker: Worker
    producer: Producer


@dataclass(frozen=True, slots=True)
class Window:
    """The measured span of one repetition, on the monotonic clock shared by every local process."""

    start: float
    end: float
    tasks: int

    @property
    def rate(self) -> float:
        return self.tasks / (self.end - self.start)


def run(quick: bool) -> Result:
    """Alternate repetitions between a plugin worker under collection and a plain worker."""
    shape = QUICK if quick else FULL
    url, token = redis_url(), secrets.token_hex(3)
    control = create_app(url, plugin=False)  # broadcasts only: this process never imports the plugin
    with ExitStack() as stack:
        client = stack.enter_context(flushed_redis(url))
        sides = {plugin: start_side(stack, url, token, plugin=plugin) for plugin in (True, False)}
        for side in sides.values():
            side.worker.wait_ready(control, READY_TIMEOUT_S)
        check_plugin(control, plugin=sides[True].worker, plain=sides[False].worker)
        collector = stack.enter_context(
            Collector(create_app(url, plugin=False), sides[True].worker.hostname, shape.collect_every_s)
        )
        windows: dict[bool, list[Window]] = {True: [], False: []}
        answered = 0
        for rep, with_plugin in alternating(shape.repetitions):
            queue = f"bench.{token}.{rep}.{'plugin' if with_plugin else 'plain'}"
            watching = collector if with_plugin else None
            window = one_repetition(control, client, sides[with_plugin], queue, shape, collector=watching)
            windows[with_plugin].append(window)
            if with_plugin:
                answered += collector.answered_between(window.start, window.end)
    if collector.error is not None:
        raise RuntimeError("the collector's broadcast failed") from collector.error
    if not any(c.answered for c in collector.calls):
        raise RuntimeError("the collector got no vsm_metrics answer: the plugin was not exercised")
    measured_s = sum(w.end - w.start for w in windows[True])
    call_ms = statistics.median(c.duration_s for c in collector.calls) * 1000
    return Result(
        id=ID,
        what=(
            f"plugin overhead: no-op tasks/s of a prefork worker (concurrency {CONCURRENCY}, Redis, JSON), "
            f"{shape.tasks:,} tasks per repetition, vsm_metrics collected every {shape.collect_every_s:g} s"
        ),
        unit="tasks/s",
        baseline_name="same worker without the plugin, no collection",
        figure_name="worker with vsmmon.agent.install(app), collected",
        baseline=Stats.of([w.rate for w in windows[False]]),
        figure=Stats.of([w.rate for w in windows[True]]),
        target=TARGET,
        digits=1,
        notes=(
            f"collector: {len(collector.calls)} vsm_metrics calls during plugin repetitions "
            f"({sum(c.answered for c in collector.calls)} answered, median {call_ms:.1f} ms), "
            f"{answered} of them inside the {measured_s:.1f} s of measured windows",
        ),
    )


def start_side(stack: ExitStack, url: str, token: str, *, plugin: bool) -> Side:
    """Start one variant's worker, on an idle queue of its own, and producer; `stack` stops them."""
    name = f"bench-{'plugin' if plugin else 'plain'}-{token}"
    env = {"VSMMON_BENCH_REDIS_URL": url, "VSMMON_BENCH_PLUGIN": "1" if plugin else "0"}
    worker = stack.enter_context(running_worker(name, env, concurrency=CONCURRENCY, queue=f"{name}.idle"))
    return Side(worker, stack.enter_context(running_producer(env)))


def check_plugin(control: Celery, *, plugin: Worker, plain: Worker) -> None:
    """Fail unless only the plugin worker answers `vsm_metrics` with metrics."""
    for worker, expected in ((plugin, True), (plain, False)):
        replies = control.control.broadcast(
            "vsm_metrics", reply=True, timeout=1.5, limit=1, destination=[worker.hostname]
        )
        has_metrics = any("metrics" in (r.get(worker.hostname) or {}) for r in replies or [])
        if has_metrics != expected:
            raise RuntimeError(f"{worker.hostname} answered vsm_metrics with {replies!r}")


def one_repetition(
    control: Celery, client: redis.Redis, side: Side, queue: str, shape: Shape, *, collector: Collector | None
) -> Window:
    """Pre-fill `queue` from the side's producer, let its worker consume it, time the tasks after warm-up."""
    worker = side.worker
    client.delete(COUNTER_KEY, MARKS_KEY, DONE_KEY)
    side.producer.publish(queue, shape.tasks, shape.warmup, timeout_s=max(60.0, shape.tasks / 50))
    if collector is not None:
        collector.enabled.set()
    try:
        control.control.add_consumer(queue, destination=[worker.hostname], reply=True)
        wait_done(client, worker, timeout_s=max(60.0, shape.tasks / 20))
    finally:
        if collector is not None:
            collector.enabled.clear()
    control.control.cancel_consumer(queue, destination=[worker.hostname], reply=True)
    marks = {int(k): float(v) for k, v in client.hgetall(MARKS_KEY).items()}
    return Window(marks[shape.warmup], marks[shape.tasks], shape.tasks - shape.warmup)


def wait_done(client: redis.Redis, worker: Worker, timeout_s: float) -> None:
    """Block until the last task has run; fail when the worker dies or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not client.blpop([DONE_KEY], timeout=1):
        worker.check_alive()
        if time.monotonic() > deadline:
            count = client.get(COUNTER_KEY)
            raise TimeoutError(f"{worker.hostname} ran {count!r} tasks by the deadline:\n{worker.log_tail()}")
