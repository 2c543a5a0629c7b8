"""C1: what one `vsm_metrics` call costs: its broadcast round trip against `ping`'s, and its in-process time."""

from __future__ import annotations

import fcntl
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
from celery import Celery

from bench.celery_worker import Worker, running_fleet
from bench.common import Result, Stats, Target, alternating
from bench.fleet_app import create_app
from bench.services import flushed_redis, redis_url
from vsmmon.agent import plugin
from vsmmon.agent.hostlock import HostReporterLock

ID = "C1"
TARGET = Target(max_ratio=2.0)
CONCURRENCY = 2
TIMEOUT_S = 1.5
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Shape:
    """Round trips per timed batch and batches per side; in-process calls per round and rounds."""

    calls: int
    repetitions: int
    direct_calls: int
    direct_rounds: int


FULL = Shape(calls=20, repetitions=15, direct_calls=500, direct_rounds=9)
QUICK = Shape(calls=10, repetitions=3, direct_calls=100, direct_rounds=3)


def run(quick: bool) -> Result:
    """Time round trips to one idle prefork worker with the plugin, then the command's function in-process."""
    shape = QUICK if quick else FULL
    url, token = redis_url(), secrets.token_hex(3)
    env = {"VSMMON_BENCH_REDIS_URL": url, "VSMMON_BENCH_PLUGIN": "1"}
    control = create_app(url, plugin=False)
    with ExitStack() as stack:
        stack.enter_context(flushed_redis(url))
        (worker,) = stack.enter_context(
            running_fleet(
                [f"bench-c1-{token}"], env, control, queue=f"bench.{token}.idle",
                ready_timeout_s=READY_TIMEOUT_S, concurrency=CONCURRENCY,
            )
        )  # fmt: skip
        reporter = round_trip(control, worker, "vsm_metrics").get("host_metrics") is not None
        for command in ("vsm_metrics", "ping"):  # warm-up: connections, reply queue, psutil history
            batch(control, worker, command, shape.calls)
        ms: dict[bool, list[float]] = {True: [], False: []}
        for _, measured in alternating(shape.repetitions):
            ms[measured].append(batch(control, worker, "vsm_metrics" if measured else "ping", shape.calls))
        children = [p.pid for p in psutil.Process(worker.pid).children()]
        direct = {role: in_process_us(children, shape, reporter=role) for role in (False, True)}
    plain, host = direct[False], direct[True]
    role = "is" if reporter else "is not"
    return Result(
        id=ID,
        what=(
            f"probe cost: round trip of one broadcast to an idle prefork worker (concurrency {CONCURRENCY}, Redis) "
            f"with the plugin, destination=[worker], limit=1, median of {shape.calls} calls per repetition; "
            f"and the inspect command's function called in-process with a stand-in state "
            f"(real psutil readings of this process and the worker's {len(children)} pool children)"
        ),
        unit="ms",
        baseline_name='broadcast("ping") round trip',
        figure_name=f'broadcast("vsm_metrics") round trip (the worker {role} its host\'s reporter)',
        figure_detail=(
            f"in-process vsm_metrics(): {plain.median:,.0f} µs per call (min {plain.min:,.0f}, max {plain.max:,.0f}), "
            f"{host.median:,.0f} µs as its host's reporter (min {host.min:,.0f}, max {host.max:,.0f})"
        ),
        baseline=Stats.of(ms[False]),
        figure=Stats.of(ms[True]),
        target=TARGET,
        digits=2,
        notes=(f"in-process: {shape.direct_rounds} rounds of {shape.direct_calls} calls, each round's mean per call",),
    )


def round_trip(control: Celery, worker: Worker, command: str) -> dict[str, Any]:
    """One broadcast of `command` to `worker` that ends on its reply; its answer."""
    replies = control.control.broadcast(command, destination=[worker.hostname], limit=1, reply=True, timeout=TIMEOUT_S)
    for reply in replies or []:
        answer = reply.get(worker.hostname)
        if isinstance(answer, dict) and ("metrics" in answer or answer.get("ok") == "pong"):
            return answer
    worker.check_alive()
    raise RuntimeError(f"{worker.hostname} did not answer {command} within {TIMEOUT_S} s: {replies!r}")


def batch(control: Celery, worker: Worker, command: str, calls: int) -> float:
    """Median milliseconds of `calls` round trips of `command`."""
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        round_trip(control, worker, command)
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def in_process_us(children: list[int], shape: Shape, *, reporter: bool) -> Stats:
    """Microseconds per call of `vsm_metrics(state)` in this process, as its host's reporter or not."""
    info = {"processes": children}
    state = SimpleNamespace(
        consumer=SimpleNamespace(
            pool=SimpleNamespace(info=info),
            controller=SimpleNamespace(concurrency=len(children)),
            task_consumer=SimpleNamespace(queues=[SimpleNamespace(name="celery")]),
        )
    )
    with host_role(reporter=reporter):
        plugin.vsm_metrics(state)  # the first reading of a kept psutil.Process is not representative
        rounds = []
        for _ in range(shape.direct_rounds):
            started = time.perf_counter()
            for _ in range(shape.direct_calls):
                reply = plugin.vsm_metrics(state)
            rounds.append((time.perf_counter() - started) / shape.direct_calls * 1e6)
    if reply["errors"] or (reply["host_metrics"] is not None) != reporter:
        raise RuntimeError(f"the in-process call did not read what a worker would: {reply!r}"[:2000])
    return Stats.of(rounds)


@contextmanager
def host_role(*, reporter: bool) -> Iterator[None]:
    """Make this process its host's reporter, or a worker that finds the host lock taken, for a while."""
    kept = plugin._state.host_lock  # the plugin's per-process state: which role is timed is chosen here
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "host.lock"
        taken = os.open(path, os.O_RDWR | os.O_CREAT)
        if not reporter:  # another open file holds the lock, as in every worker but one per host
            fcntl.flock(taken, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock = plugin._state.host_lock = HostReporterLock(path)
        try:
            yield
        finally:
            plugin._state.host_lock = kept
            if lock._fd is not None:  # the lock keeps its file open for the process's life; not this one
                os.close(lock._fd)
            os.close(taken)
