"""P1: instructions per no-op task of a prefork worker with the vsmmon plugin, against the same worker without.

A wall-clock race cannot resolve the 1 % the target allows on a shared 2-core machine (its own A/A noise was
0.95-1.12), so P1 counts instructions with Valgrind's callgrind, which counts the same whatever else the
machine runs. Each worker (main process and pool children, see `bench.p1_callgrind`) drains windows of
pre-filled tasks; a task's cost is the marginal cost between a small and a large window, so what any window
costs once (its commands, the idle second before its dump) cancels. A worker whose throughput is bound by
its CPU runs tasks at a rate inverse to that cost, so the figure is tasks per 10^9 instructions and the ratio
is cost without the plugin / cost with it.

Collection follows the task count, not the clock, since Valgrind slows the worker ~50x: at the real rate
(~370 tasks/s, collected every 5 s) one `vsm_metrics` call falls on 1,850 tasks. The plugin worker runs one
more small window in which the calls are made, spread over its tasks; a call's marginal cost divided by 1,850
is added to the plugin's per-task cost.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

from bench.celery_worker import Worker, running_producer, running_worker
from bench.common import Result, Stats, Target
from bench.fleet_app import create_app
from bench.p1_callgrind import Callgrind, callgrind_prefix, require_valgrind
from bench.services import flushed_redis, redis_url

ID = "P1"
TARGET = Target(min_ratio=0.99)
CONCURRENCY = 2
COLLECT_INTERVAL_S = 5.0
REAL_TASKS_PER_S = 370.0
"""The plain worker's no-op throughput on 2 cores, from the earlier wall-clock races (BENCHMARKS.md history)."""
TASKS_PER_CALL = round(COLLECT_INTERVAL_S * REAL_TASKS_PER_S)
"""Tasks a worker runs between two collections at the real rate: 1,850."""
START_TIMEOUT_S = 180.0
WINDOW_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 60.0
SETTLE_S = 1.0
"""Idle time after a window's last task before its dump, so the main process has handled every result."""
POLL_S = 0.05
GIGA = 1e9


@dataclass(frozen=True, slots=True)
class Shape:
    """Window sizes (tasks), `vsm_metrics` calls in the collected window, and repetitions of the set."""

    warmup: int
    small: int
    large: int
    calls: int
    repetitions: int


FULL = Shape(warmup=50, small=100, large=500, calls=4, repetitions=2)
QUICK = Shape(warmup=20, small=20, large=80, calls=1, repetitions=1)


@dataclass(frozen=True, slots=True)
class Side:
    """One callgrind-run worker, the queue it drains, its template of published tasks, and their counter."""

    worker: Worker
    callgrind: Callgrind
    queue: str
    template: str
    counter: str
    plugin: bool


@dataclass(frozen=True, slots=True)
class Costs:
    """One repetition of one side: instructions per task, and per `vsm_metrics` call (plugin side only)."""

    per_task: float
    per_call: float | None
    windows: tuple[int, ...]
    """Instructions of each window, in the order run: small, large, then small with calls."""

    @property
    def per_task_collected(self) -> float:
        """Per task, with the collection's share at one call per `TASKS_PER_CALL` tasks."""
        return self.per_task + (self.per_call or 0.0) / TASKS_PER_CALL


def run(quick: bool) -> Result:
    """Count both workers' instructions, each window by window, at the same time."""
    require_valgrind()
    shape = QUICK if quick else FULL
    url, token = redis_url(), secrets.token_hex(3)
    with flushed_redis(url) as client, tempfile.TemporaryDirectory(prefix="vsmmon-p1-") as tmp:
        names = {True: f"bench-plugin-{token}", False: f"bench-plain-{token}"}
        fill_templates(url, client, names, max(shape.large, shape.warmup))
        with ExitStack() as stack, ThreadPoolExecutor(max_workers=2) as pool:
            dirs = {plugin: Path(tmp) / name for plugin, name in names.items()}
            workers = {
                plugin: stack.enter_context(
                    started_worker(url, client, name, dirs[plugin], plugin=plugin, warmup=shape.warmup)
                )
                for plugin, name in names.items()
            }
            sides = [
                instrumented(url, client, workers[plugin], dirs[plugin], plugin=plugin, warmup=shape.warmup)
                for plugin in (True, False)
            ]
            with_plugin, without = (future.result() for future in [pool.submit(measure, url, s, shape) for s in sides])
    return result(shape, with_plugin, without)


def env_of(url: str, *, plugin: bool) -> dict[str, str]:
    return {"VSMMON_BENCH_REDIS_URL": url, "VSMMON_BENCH_PLUGIN": "1" if plugin else "0"}


def fill_templates(url: str, client: redis.Redis, names: dict[bool, str], tasks: int) -> None:
    """Publish each side's tasks once into `<name>.template`, through a producer of its variant of the app."""
    for plugin, name in names.items():
        with running_producer(env_of(url, plugin=plugin)) as producer:
            producer.request(f"{name}.template", tasks, f"{name}.count")
            producer.wait(timeout_s=60.0)
    for name in names.values():
        if client.llen(f"{name}.template") != tasks:
            raise RuntimeError(f"{name}.template holds {client.llen(f'{name}.template')} tasks, not {tasks}")


@contextmanager
def started_worker(
    url: str, client: redis.Redis, name: str, out_dir: Path, *, plugin: bool, warmup: int
) -> Iterator[Worker]:
    """Start a worker under callgrind (uninstrumented) with `warmup` tasks already in its queue."""
    out_dir.mkdir()
    push(client, f"{name}.template", f"{name}.queue", warmup)
    env, wrapper = env_of(url, plugin=plugin), callgrind_prefix(out_dir)
    with running_worker(name, env, queue=f"{name}.queue", concurrency=CONCURRENCY, wrapper=wrapper) as worker:
        yield worker


def instrumented(url: str, client: redis.Redis, worker: Worker, out_dir: Path, *, plugin: bool, warmup: int) -> Side:
    """Once the worker ran its warm-up tasks and answered a first `vsm_metrics`, switch callgrind on."""
    name = worker.hostname.split("@", 1)[0]
    wait_count(client, f"{name}.count", warmup, worker, START_TIMEOUT_S)
    # the first call builds the plugin's process probes: outside the windows, as at a worker's start
    answered = collect(create_app(url, plugin=False), worker.hostname)
    if answered != plugin:
        raise RuntimeError(f"{worker.hostname} answered vsm_metrics with metrics: {answered}, expected {plugin}")
    callgrind = Callgrind(worker.pid, out_dir, CONCURRENCY)
    callgrind.switch_on()
    return Side(worker, callgrind, f"{name}.queue", f"{name}.template", f"{name}.count", plugin)


def measure(url: str, side: Side, shape: Shape) -> list[Costs]:
    """Run each repetition's windows on one side; return its costs per repetition."""
    control = create_app(url, plugin=False)  # this thread's own connections
    client = redis.Redis.from_url(url)
    try:
        costs = []
        for _ in range(shape.repetitions):
            small = window(client, side, shape.small)
            large = window(client, side, shape.large)
            per_task = (large - small) / (shape.large - shape.small)
            if not side.plugin:
                costs.append(Costs(per_task, None, (small, large)))
                continue
            called = window(client, side, shape.small, calls=shape.calls, control=control)
            costs.append(Costs(per_task, (called - small) / shape.calls, (small, large, called)))
        return costs
    finally:
        client.close()


def window(client: redis.Redis, side: Side, tasks: int, *, calls: int = 0, control: Celery | None = None) -> int:
    """Instructions of the whole worker while it runs `tasks` tasks and answers `calls` spread among them."""
    side.callgrind.zero()
    start = int(client.get(side.counter) or 0)
    push(client, side.template, side.queue, tasks)
    for i in range(calls):  # by task count: at ~1/50 of the real speed, a clock would call 50x too often
        wait_count(client, side.counter, start + tasks * (i + 1) // (calls + 1), side.worker, WINDOW_TIMEOUT_S)
        if control is None or not collect(control, side.worker.hostname):
            raise RuntimeError(f"{side.worker.hostname} did not answer vsm_metrics with metrics")
    wait_count(client, side.counter, start + tasks, side.worker, WINDOW_TIMEOUT_S)
    time.sleep(SETTLE_S)
    return sum(side.callgrind.dump())


def push(client: redis.Redis, template: str, queue: str, tasks: int) -> None:
    """Copy the first `tasks` published messages of `template` into `queue`, in one command."""
    messages = client.lrange(template, 0, tasks - 1)
    client.lpush(queue, *messages)


def collect(control: Celery, hostname: str) -> bool:
    """One `vsm_metrics` broadcast as the collector sends it; whether `hostname` answered with metrics."""
    replies = control.control.broadcast(
        "vsm_metrics", reply=True, timeout=CALL_TIMEOUT_S, limit=1, destination=[hostname]
    )
    return any("metrics" in (reply.get(hostname) or {}) for reply in replies or [])


def wait_count(client: redis.Redis, counter: str, target: int, worker: Worker, timeout_s: float) -> None:
    """Poll `counter` until it reaches `target`; fail when the worker dies or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while int(client.get(counter) or 0) < target:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{counter} below {target} after {timeout_s} s:\n{worker.log_tail()}")
        time.sleep(POLL_S)


def result(shape: Shape, with_plugin: list[Costs], without: list[Costs]) -> Result:
    plugin_cost = statistics.median(c.per_task_collected for c in with_plugin)
    plugin_tasks = statistics.median(c.per_task for c in with_plugin)
    call_cost = statistics.median(c.per_call or 0.0 for c in with_plugin)
    plain_cost = statistics.median(c.per_task for c in without)
    spread = max(spread_of([c.per_task for c in costs]) for costs in (with_plugin, without))
    return Result(
        id=ID,
        what=(
            f"plugin overhead: callgrind instructions per no-op task of a whole prefork worker (main process and "
            f"{CONCURRENCY} pool children, Redis, JSON), marginal between windows of {shape.small} and "
            f"{shape.large} tasks; vsm_metrics collected once per {TASKS_PER_CALL:,} tasks (5 s at "
            f"{REAL_TASKS_PER_S:.0f} tasks/s); figure = tasks per 10^9 instructions, the throughput of a "
            "CPU-bound worker"
        ),
        unit="tasks/Ginstr",
        baseline_name="same worker without the plugin",
        figure_name="worker with vsmmon.agent.install(app), collected",
        baseline=Stats.of([GIGA / c.per_task for c in without]),
        figure=Stats.of([GIGA / c.per_task_collected for c in with_plugin]),
        target=TARGET,
        digits=2,
        figure_detail=(
            f"{plugin_cost:,.0f} instructions/task (tasks {plugin_tasks:,.0f} + collection "
            f"{call_cost / TASKS_PER_CALL:,.0f}) against {plain_cost:,.0f} without the plugin"
        ),
        notes=(
            f"instructions per task: without the plugin {plain_cost:,.0f}; with it {plugin_cost:,.0f} = tasks "
            f"{plugin_tasks:,.0f} + collection {call_cost / TASKS_PER_CALL:,.0f} ({call_cost:,.0f} per "
            f"vsm_metrics call, {shape.calls} calls among {shape.small} tasks, / {TASKS_PER_CALL:,})",
            f"repeatability: per-task costs of a side within {spread:.2%} of each other over {shape.repetitions} "
            f"repetition(s); windows (instructions) with {[c.windows for c in with_plugin]}, without "
            f"{[c.windows for c in without]}",
        ),
    )


def spread_of(values: list[float]) -> float:
    """(max - min) / median of one side's repetitions."""
    return (max(values) - min(values)) / statistics.median(values)
