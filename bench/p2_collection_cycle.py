"""P2: wall time of one `vsm_metrics` collection cycle over 20 workers, against Celery's own `stats` broadcast.

A cycle asks the workers seen in the last two intervals by name and ends on the last reply. Discovery (asking
everyone, so waiting the whole timeout for whoever else may answer) is not part of a cycle: it runs every 30 s
as its own task (`vsmmon.collect.discover`). Its wall time is measured too and shown beside the figure."""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from celery import Celery

from bench.celery_worker import running_fleet
from bench.common import Result, Stats, Target, alternating
from bench.services import flushed_redis, redis_url
from vsmmon.workers.fleet import FleetPoller, control_app

ID = "P2"
TARGET = Target(max_ratio=1.5)
TIMEOUT_S = 3.0
SHARD_SIZE = 200
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Shape:
    """How many workers answer and how many cycles of each kind are timed."""

    workers: int
    repetitions: int
    warmup: int


FULL = Shape(workers=20, repetitions=15, warmup=3)
QUICK = Shape(workers=20, repetitions=3, warmup=1)
DISCOVERIES = 3


def run(quick: bool) -> Result:
    """Start the fleet, then alternate timed `vsm_metrics` cycles and `stats` broadcasts."""
    shape = QUICK if quick else FULL
    url, token = redis_url(), secrets.token_hex(3)
    env = {"VSMMON_BENCH_REDIS_URL": url, "VSMMON_BENCH_PLUGIN": "1"}
    names = [f"bench-p2-{i:02d}-{token}" for i in range(shape.workers)]
    app = control_app(url)
    with ExitStack() as stack:
        stack.enter_context(flushed_redis(url))
        fleet = stack.enter_context(
            running_fleet(names, env, app, queue=f"bench.{token}.idle", ready_timeout_s=READY_TIMEOUT_S, pool="solo")
        )
        hostnames = sorted(w.hostname for w in fleet)
        poller = FleetPoller(app, shard_size=SHARD_SIZE)
        cycles: dict[bool, Callable[[], dict[str, Any]]] = {
            True: lambda: poller.ask("vsm_metrics", hostnames, timeout_s=TIMEOUT_S, everyone=False),
            False: lambda: stats(app, len(hostnames)),
        }
        for _ in range(shape.warmup):
            for measured, cycle in cycles.items():
                timed(cycle, hostnames, measured)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _, measured in alternating(shape.repetitions):
            seconds[measured].append(timed(cycles[measured], hostnames, measured))
        discover = functools.partial(poller.ask, "vsm_metrics", (), timeout_s=TIMEOUT_S, everyone=True)
        discoveries = Stats.of([timed(discover, hostnames, True) * 1000 for _ in range(DISCOVERIES)])
    return Result(
        id=ID,
        what=(
            f"collection cycle: wall ms of one broadcast answered by {shape.workers} solo workers with the plugin "
            f"(one subprocess each, Redis), ending on the last reply (timeout {TIMEOUT_S:g} s); discovery, every "
            "30 s in its own task off the cycle's path, shown beside"
        ),
        unit="ms",
        baseline_name=f"app.control.inspect(timeout={TIMEOUT_S:g}, limit={shape.workers}).stats()",
        figure_name=f'FleetPoller(app, shard_size={SHARD_SIZE}).ask("vsm_metrics", <{shape.workers} hostnames>)',
        baseline=Stats.of([s * 1000 for s in seconds[False]]),
        figure=Stats.of([s * 1000 for s in seconds[True]]),
        target=TARGET,
        digits=1,
        figure_detail=(
            f"discovery (everyone asked, the whole timeout waited): {discoveries.median:,.1f} ms "
            f"(min {discoveries.min:,.1f}), {DISCOVERIES} runs"
        ),
    )


def stats(app: Celery, workers: int) -> dict[str, Any]:
    """Celery's own per-worker statistics, through a broadcast that ends on the `workers`-th reply."""
    replies = app.control.inspect(timeout=TIMEOUT_S, limit=workers).stats()
    return dict(replies or {})


def timed(cycle: Callable[[], dict[str, Any]], hostnames: list[str], measured: bool) -> float:
    """Seconds one cycle took; fail unless every worker answered, with metrics when `measured`."""
    started = time.perf_counter()
    replies = cycle()
    elapsed = time.perf_counter() - started
    missing = sorted(set(hostnames) - set(replies))
    if missing:
        raise RuntimeError(f"{len(missing)} workers did not answer within {TIMEOUT_S} s: {', '.join(missing)}")
    if measured and not all("metrics" in (replies[h] or {}) for h in hostnames):
        raise RuntimeError(f"a vsm_metrics reply has no metrics: {replies!r}"[:2000])
    return elapsed
