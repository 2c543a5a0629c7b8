"""P8: CPU seconds spent on monitoring a 6-worker fleet under load, vsmmon against Flower with task events.

Three phases under the same fixed-rate load, each with a fresh fleet: the plugin installed and the whole
vsmmon pipeline watching it (`vsmmon up` on the same Redis and a throwaway PostgreSQL database: its collector,
analysis and control workers, beat and HTTP service, collecting, storing, aggregating, assessing and analysing
as deployed); plain workers with nothing watching (the bare cost); plain workers sending task events to a
running Flower. A monitor's cost is its own processes' CPU (vsmmon's: every process `vsmmon up` runs, and the
PostgreSQL backends of its database) plus the extra CPU of the workers against the bare phase, scaled to the
same number of tasks run. Redis's own CPU is left out on both sides.
"""

from __future__ import annotations

import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace

import redis
from celery import Celery

from bench.celery_worker import Worker, running_fleet, spawned
from bench.common import Result, Stats, Target
from bench.fleet_app import create_app
from bench.monitors import Flower, Pipeline, cpu_s, running_flower, running_pipeline
from bench.services import database_url, flushed_redis, redis_url, throwaway_database

ID = "P8"
TARGET = Target(max_ratio=0.25)
WORKERS = 6
POOL = "solo"
"""Not prefork: 6 prefork workers (concurrency 2) sending task events saturate 2 cores at 200 tasks/s (that
phase ran only 89-96 % of the load in trial runs), so it would no longer be the same load."""
COLLECT_EVERY_S = 5.0
READY_TIMEOUT_S = 90.0
KEPT_UP = 0.95
"""Share of the published tasks the fleet must run within the window for the load to count as carried."""
Monitor = Pipeline | Flower | None


@dataclass(frozen=True, slots=True)
class Shape:
    """The load and how long it is measured."""

    rate: float
    warmup_s: float
    window_s: float


FULL = Shape(rate=200.0, warmup_s=5.0, window_s=60.0)
QUICK = Shape(rate=100.0, warmup_s=1.0, window_s=10.0)


@dataclass(frozen=True, slots=True)
class Phase:
    """One configuration of the fleet and what watches it."""

    name: str
    plugin: bool = False
    events: bool = False


VSMMON, BARE, FLOWER = Phase("vsmmon", plugin=True), Phase("bare"), Phase("flower", events=True)


@dataclass(frozen=True, slots=True)
class Reading:
    """CPU seconds over the window: of the whole fleet, of the monitor's process; tasks the fleet ran."""

    workers_s: float
    monitor_s: float
    tasks: int
    check: str = ""
    """What was verified about the monitor: that it saw the fleet's work."""


@dataclass(frozen=True, slots=True)
class Rig:
    """What every phase shares: the load's shape, the broker, a control app and a Redis client."""

    shape: Shape
    url: str
    token: str
    control: Celery
    client: redis.Redis


def run(quick: bool) -> Result:
    """Measure the vsmmon phase, the bare phase and the Flower phase, in that order, then compare."""
    shape = QUICK if quick else FULL
    url = redis_url()
    with flushed_redis(url) as client:
        rig = Rig(shape, url, secrets.token_hex(3), create_app(url, plugin=False), client)
        readings = {phase: measure(rig, phase) for phase in (VSMMON, BARE, FLOWER)}
    bare = readings[BARE]
    extra = {p: readings[p].workers_s - bare.workers_s * readings[p].tasks / bare.tasks for p in (VSMMON, FLOWER)}
    total = {p: extra[p] + readings[p].monitor_s for p in (VSMMON, FLOWER)}
    return Result(
        id=ID,
        what=(
            f"monitoring CPU: CPU seconds over a {shape.window_s:g} s window while {WORKERS} {POOL} workers "
            f"(Redis) run ~{shape.rate:g} no-op tasks/s from a producer at a fixed rate; "
            f"a monitor's own processes plus the workers' extra CPU against the same fleet unwatched "
            f"({bare.workers_s:.2f} CPU s for {bare.tasks:,} tasks), scaled to the same task count"
        ),
        unit="CPU s",
        baseline_name=(
            f"Flower 2.x with task events (workers -E, task_send_sent_event): flower process "
            f"{readings[FLOWER].monitor_s:.2f} + workers' extra {extra[FLOWER]:.2f}"
        ),
        figure_name=(
            f"vsmmon: plugin installed, the whole pipeline (vsmmon up: 3 workers, beat, HTTP; collection every "
            f"{COLLECT_EVERY_S:g} s; with its PostgreSQL backends) {readings[VSMMON].monitor_s:.2f} + workers' extra "
            f"{extra[VSMMON]:.2f}"
        ),
        baseline=Stats.of([total[FLOWER]]),
        figure=Stats.of([total[VSMMON]]),
        target=TARGET,
        digits=2,
        notes=(
            *(
                f"{phase.name}: workers {r.workers_s:.2f} CPU s, monitor {r.monitor_s:.2f} CPU s, {r.tasks:,} tasks run"
                for phase, r in readings.items()
            ),
            *(r.check for r in readings.values() if r.check),
        ),
    )


def measure(rig: Rig, phase: Phase) -> Reading:
    """Start the phase's fleet and monitor, load them, read CPU over the window; stop everything."""
    shape, token = rig.shape, rig.token
    env = {
        "VSMMON_BENCH_REDIS_URL": rig.url,
        "VSMMON_BENCH_PLUGIN": "1" if phase.plugin else "0",
        "VSMMON_BENCH_EVENTS": "1" if phase.events else "0",
    }
    queue, counter = f"bench.{token}.p8.{phase.name}", f"bench:{token}:p8:{phase.name}"
    names = [f"bench-p8-{phase.name}-{i}-{token}" for i in range(WORKERS)]
    with ExitStack() as stack:
        fleet = stack.enter_context(
            running_fleet(
                names, env, rig.control, queue=queue, ready_timeout_s=READY_TIMEOUT_S,
                pool=POOL, events=phase.events,
            )
        )  # fmt: skip
        hostnames = [w.hostname for w in fleet]
        monitor: Monitor = None
        if phase is VSMMON:
            db = stack.enter_context(throwaway_database(database_url()))
            monitor = stack.enter_context(running_pipeline(env, db, COLLECT_EVERY_S))
            monitor.wait_watching(hostnames)
        elif phase is FLOWER:
            monitor = stack.enter_context(running_flower(env))
        load_s = shape.warmup_s + shape.window_s + 5.0
        load = [sys.executable, "-m", "bench.fleet_app", "load", queue, str(shape.rate), str(load_s), counter]
        producer = stack.enter_context(spawned("load producer", load, env))
        time.sleep(shape.warmup_s)
        producer.check_alive()
        succeeded = monitor.events("task-succeeded") if isinstance(monitor, Flower) else 0.0
        cycles = monitor.collections() if isinstance(monitor, Pipeline) else 0
        before = read(rig, fleet, monitor, counter)
        time.sleep(shape.window_s)
        after = read(rig, fleet, monitor, counter)
        reading = Reading(after[0] - before[0], after[1] - before[1], after[2] - before[2])
        check_load(phase, reading, shape, fleet)
        if isinstance(monitor, Flower):
            return replace(reading, check=check_flower(monitor, succeeded, reading, hostnames))
        if isinstance(monitor, Pipeline):
            return replace(reading, check=check_pipeline(monitor, cycles, shape, hostnames))
        return reading


def read(rig: Rig, fleet: list[Worker], monitor: Monitor, counter: str) -> tuple[float, float, int]:
    """CPU seconds of the fleet and of the monitor so far, and tasks run so far."""
    workers_s = cpu_s(w.pid for w in fleet)
    monitor_s = cpu_s([monitor.process.pid]) if monitor is not None else 0.0
    if isinstance(monitor, Pipeline):
        monitor_s += monitor.backends_cpu_s()
    return workers_s, monitor_s, int(rig.client.get(counter) or 0)


def check_load(phase: Phase, reading: Reading, shape: Shape, fleet: list[Worker]) -> None:
    """Fail unless the fleet ran (nearly) the whole load within the window."""
    expected = shape.rate * shape.window_s
    if reading.tasks < KEPT_UP * expected:
        for worker in fleet:
            worker.check_alive()
        raise RuntimeError(f"{phase.name}: the fleet ran {reading.tasks} of ~{expected:.0f} tasks in the window")


def check_flower(flower: Flower, succeeded_before: float, reading: Reading, hostnames: list[str]) -> str:
    """Fail unless Flower received the task events of (nearly) every task run in the window."""
    seen = flower.events("task-succeeded") - succeeded_before
    if seen < KEPT_UP * reading.tasks:
        raise RuntimeError(f"flower counted {seen:.0f} task-succeeded events for {reading.tasks} tasks run")
    kept = flower.tasks("SUCCESS", limit=10)
    workers = {str(task.get("worker")) for task in kept.values()}
    if not kept or not workers <= set(hostnames):
        raise RuntimeError(f"flower's /api/tasks does not show the fleet's tasks: {kept!r}"[:2000])
    return (
        f"flower: {seen:,.0f} task-succeeded events in the window, {reading.tasks:,} tasks run; /api/tasks lists them"
    )


def check_pipeline(pipeline: Pipeline, cycles_before: int, shape: Shape, hostnames: list[str]) -> str:
    """Fail unless the pipeline stored and aggregated a collection every interval of the window and has every
    worker of the fleet online."""
    cycles = pipeline.collections() - cycles_before
    expected = shape.window_s / COLLECT_EVERY_S
    if cycles < expected - 1:
        raise RuntimeError(f"vsmmon stored and aggregated {cycles} collections in the window, ~{expected:.0f} due")
    online = pipeline.online(hostnames)
    if online != len(hostnames):
        raise RuntimeError(f"vsmmon's registry has {online} of the fleet's {len(hostnames)} workers online")
    return f"vsmmon: {cycles} collections stored and aggregated in the window; all {online} workers online"
