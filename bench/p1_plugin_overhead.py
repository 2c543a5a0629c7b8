"""P1: no-op task throughput of a worker with the vsmmon plugin being collected from, against one without.

Both workers run at the same time, each draining its own pre-filled queue, so whatever the shared machine
does weighs on both alike; each repetition gives one ratio over a window common to both. Each worker's
tasks are published once, by a producer of its variant of the app, into a template list; a repetition
copies both templates into the workers' queues in one Redis transaction, so both start at the same instant.
A/A repetitions (one plain worker against the other) show how far noise alone moves that ratio.
"""

from __future__ import annotations

import math
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import redis
from celery import Celery

from bench.celery_worker import Worker, running_producer, running_worker, wait_all_ready
from bench.collector_thread import Collector
from bench.common import Result, Stats, Target
from bench.fleet_app import create_app
from bench.services import flushed_redis, redis_url

ID = "P1"
TARGET = Target(min_ratio=0.99)
CONCURRENCY = 2
READY_TIMEOUT_S = 60.0
POLL_S = 0.02
NEAR_END_TASKS = 20
MAX_RATE = 1000.0
"""Tasks/s per worker the queues are sized for; a faster worker ends its window early, on its count."""


@dataclass(frozen=True, slots=True)
class Shape:
    """How long one repetition measures, how many there are, and how often the collector calls."""

    window_s: float
    warmup_tasks: int
    repetitions: int
    aa_repetitions: int
    collect_every_s: float


FULL = Shape(window_s=4.0, warmup_tasks=200, repetitions=24, aa_repetitions=12, collect_every_s=5.0)
QUICK = Shape(window_s=2.0, warmup_tasks=50, repetitions=2, aa_repetitions=1, collect_every_s=1.0)


@dataclass(frozen=True, slots=True)
class Side:
    """One worker, the queue it consumes, the template list of its tasks, and the counter they increment."""

    worker: Worker
    queue: str
    template: str
    counter: str


@dataclass(frozen=True, slots=True)
class Race:
    """Tasks each side ran within one window common to both (monotonic s)."""

    start: float
    end: float
    measured: int
    baseline: int

    @property
    def measured_rate(self) -> float:
        return self.measured / (self.end - self.start)

    @property
    def baseline_rate(self) -> float:
        return self.baseline / (self.end - self.start)

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline


def run(quick: bool) -> Result:
    """Race a collected plugin worker against a plain one, and a plain one against another (A/A)."""
    shape = QUICK if quick else FULL
    url, token = redis_url(), secrets.token_hex(3)
    control = create_app(url, plugin=False)  # broadcasts only: this process never installs the plugin
    tasks = shape.warmup_tasks + math.ceil(MAX_RATE * shape.window_s)
    with ExitStack() as stack:
        client = stack.enter_context(flushed_redis(url))
        plugin, plain, other = (
            start_side(stack, url, f"bench-{name}-{token}", plugin=name == "plugin")
            for name in ("plugin", "plain", "plain2")
        )
        fill_templates(url, [(plugin, True), (plain, False), (other, False)], tasks)
        wait_all_ready(control, [s.worker for s in (plugin, plain, other)], READY_TIMEOUT_S)
        check_plugin(control, plugin=plugin.worker, plain=plain.worker)
        collector_app = create_app(url, plugin=False)  # its own connections: it broadcasts from a thread
        collector = stack.enter_context(Collector(collector_app, plugin.worker.hostname, shape.collect_every_s))
        race(client, (plugin, plain), tasks=tasks, shape=shape)  # warm-up, not counted
        races: dict[bool, list[Race]] = {True: [], False: []}
        for n, (aa, pair) in enumerate(pairs(shape, plugin, (plain, other))):
            watching = None if aa else collector
            races[not aa].append(race(client, pair, tasks=tasks, shape=shape, collector=watching, swap=n % 2 == 1))
    if collector.error is not None:
        raise RuntimeError("the collector's broadcast failed") from collector.error
    if not any(c.answered for c in collector.calls):
        raise RuntimeError("the collector got no vsm_metrics answer: the plugin was not exercised")
    measured = races[True]
    inside = sum(collector.answered_between(r.start, r.end) for r in measured)
    window_s = sum(r.end - r.start for r in measured)
    call_ms = statistics.median(c.duration_s for c in collector.calls) * 1000
    return Result(
        id=ID,
        what=(
            f"plugin overhead: no-op tasks/s of a prefork worker (concurrency {CONCURRENCY}, Redis, JSON) running "
            f"at the same time as the baseline worker, each on its own queue pre-filled with {tasks:,} tasks, "
            f"over a {shape.window_s:g} s window common to both per repetition; vsm_metrics collected every "
            f"{shape.collect_every_s:g} s; ratio = median of the per-repetition ratios"
        ),
        unit="tasks/s",
        baseline_name="same worker without the plugin, not collected",
        figure_name="worker with vsmmon.agent.install(app), collected",
        baseline=Stats.of([r.baseline_rate for r in measured]),
        figure=Stats.of([r.measured_rate for r in measured]),
        target=TARGET,
        digits=1,
        ratios=Stats.of([r.ratio for r in measured]),
        aa_ratios=Stats.of([r.ratio for r in races[False]]),
        notes=(
            f"collector: {len(collector.calls)} vsm_metrics calls ({sum(c.answered for c in collector.calls)} "
            f"answered, median {call_ms:.1f} ms), {inside} answered inside the {window_s:.1f} s of measured windows",
        ),
    )


def env_of(url: str, *, plugin: bool) -> dict[str, str]:
    return {"VSMMON_BENCH_REDIS_URL": url, "VSMMON_BENCH_PLUGIN": "1" if plugin else "0"}


def start_side(stack: ExitStack, url: str, name: str, *, plugin: bool) -> Side:
    """Start one worker on a queue of its own, empty until a race copies its template into it."""
    queue = f"{name}.race"
    worker = stack.enter_context(running_worker(name, env_of(url, plugin=plugin), concurrency=CONCURRENCY, queue=queue))
    return Side(worker, queue, f"{name}.template", f"{name}.count")


def fill_templates(url: str, sides: Sequence[tuple[Side, bool]], tasks: int) -> None:
    """Publish each side's tasks once into its template, each through a producer of its variant, in parallel."""
    with ExitStack() as stack:
        producers = [stack.enter_context(running_producer(env_of(url, plugin=plugin))) for _, plugin in sides]
        for producer, (side, _) in zip(producers, sides, strict=True):
            producer.request(side.template, tasks, side.counter)
        for producer in producers:
            producer.wait(timeout_s=max(60.0, tasks / 100))


def pairs(shape: Shape, plugin: Side, plains: tuple[Side, Side]) -> Iterator[tuple[bool, tuple[Side, Side]]]:
    """(is A/A, (measured side, baseline side)) of each repetition, A/A ones spread among the measured ones.

    The two plain workers take turns as the baseline, and swap places in A/A repetitions, so each plain
    worker races as often as the plugin worker and in both places.
    """
    aa_done = 0
    for i in range(shape.repetitions):
        yield False, (plugin, plains[i % 2])
        if aa_done < shape.aa_repetitions and i % 2 == 0:
            yield True, (plains[1 - aa_done % 2], plains[aa_done % 2])
            aa_done += 1
    for a in range(aa_done, shape.aa_repetitions):
        yield True, (plains[1 - a % 2], plains[a % 2])


def check_plugin(control: Celery, *, plugin: Worker, plain: Worker) -> None:
    """Fail unless only the plugin worker answers `vsm_metrics` with metrics."""
    for worker, expected in ((plugin, True), (plain, False)):
        replies = control.control.broadcast(
            "vsm_metrics", reply=True, timeout=1.5, limit=1, destination=[worker.hostname]
        )
        has_metrics = any("metrics" in (r.get(worker.hostname) or {}) for r in replies or [])
        if has_metrics != expected:
            raise RuntimeError(f"{worker.hostname} answered vsm_metrics with {replies!r}")


def race(
    client: redis.Redis,
    pair: tuple[Side, Side],
    *,
    tasks: int,
    shape: Shape,
    collector: Collector | None = None,
    swap: bool = False,
) -> Race:
    """Copy both sides' templates into their queues at once, count what each side ran in a common window.

    The window opens when both sides ran their warm-up tasks and closes after `shape.window_s`, or earlier
    when a side nears the end of its queue; then both queues are deleted. `swap` copies the baseline's
    queue first within the transaction (Redis serves the blocked workers in that order).
    """
    counters = [side.counter for side in pair]
    client.delete(*counters)
    if collector is not None:
        collector.enabled.set()
    try:
        with client.pipeline(transaction=True) as both:
            for side in reversed(pair) if swap else pair:
                both.copy(side.template, side.queue)
            both.execute()
        start, first = wait_counts(client, pair, lambda c, _: min(c) >= shape.warmup_tasks)
        end, last = wait_counts(
            client, pair, lambda c, t: t - start >= shape.window_s or max(c) >= tasks - NEAR_END_TASKS
        )
    finally:
        if collector is not None:
            collector.enabled.clear()
        client.delete(*(side.queue for side in pair))
    settle(client, counters)
    return Race(start, end, last[0] - first[0], last[1] - first[1])


def wait_counts(
    client: redis.Redis,
    pair: Sequence[Side],
    done: Callable[[list[int], float], bool],
    timeout_s: float = 60.0,
) -> tuple[float, list[int]]:
    """Poll both counters in one MGET until `done(counts, now)`; return that instant and the counts."""
    deadline = time.monotonic() + timeout_s
    counters = [side.counter for side in pair]
    while True:
        values = client.mget(counters)
        now = time.monotonic()
        counts = [int(v or 0) for v in values]
        if done(counts, now):
            return now, counts
        if now > deadline:
            for side in pair:
                side.worker.check_alive()
            raise TimeoutError(f"counters {counters} at {counts} by the deadline:\n{pair[0].worker.log_tail()}")
        time.sleep(POLL_S)


def settle(client: redis.Redis, counters: list[str], quiet_s: float = 0.2) -> None:
    """Wait until the tasks a worker had already fetched have run, so none overlaps the next repetition."""
    last: list[bytes | str | None] = []
    while True:
        values = client.mget(counters)
        if values == last:
            return
        last = values
        time.sleep(quiet_s)
