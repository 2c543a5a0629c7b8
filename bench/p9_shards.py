"""P9: a cycle of 10,000 pushed agents split into 2 shards on 2 cores, against the same cycle as 1 shard.

Two real `vsmmon worker --role collector --concurrency 2` processes (prefork: collect, persist, aggregate)
run side by side, each on its own Redis db, on one PostgreSQL database; they differ only in
`VSMMON_CYCLE_SHARD_AGENTS`: the baseline's takes the whole cycle in one shard, the measured one's splits it
in two, so its two pool processes share it. A repetition stages the same 10,000 agents' reports (9 metrics
each, as `vsmmon simulate --profile mixed` pushes them) and sends `vsmmon.collect.run`; it ends when every
shard's collection of that cycle is aggregated (polled in PostgreSQL every 10 ms). Repetitions alternate
(ABBA). Beside the wall time, the CPU seconds of the worker's processes give the cost of one shard.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import psutil
import sqlalchemy as sa
from celery import Celery

from bench.common import Result, Stats, Target, alternating, stop
from bench.services import database_url, flushed_redis, redis_url, throwaway_database
from vsmmon import names
from vsmmon.agent import simulator
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import load_settings
from vsmmon.models import AgentKind, AgentReport
from vsmmon.store import migrations
from vsmmon.workers.app import create_app

ID = "P9"
TARGET = Target(
    max_ratio=0.65
)  # "about half": the two halves are not equal (ids hash to 16 slots) and share one PostgreSQL
ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
CYCLE_TIMEOUT_S = 60.0
POLL_S = 0.01
COLLECT_TIMEOUT_S = 0.05  # the broadcast to the workers (none but the pipeline's): the same short wait on both sides


@dataclass(frozen=True, slots=True)
class Shape:
    agents: int
    repetitions: int
    warmup: int


FULL = Shape(agents=10_000, repetitions=6, warmup=1)
QUICK = Shape(agents=2_000, repetitions=2, warmup=1)


@dataclass
class Side:
    """One collector worker and the broker it consumes."""

    app: Celery
    process: subprocess.Popen[bytes]
    staging: RedisStaging

    def cpu_s(self) -> float:
        """CPU so far of the worker and its pool processes."""
        total = 0.0
        try:
            main = psutil.Process(self.process.pid)
            for p in (main, *main.children(recursive=True)):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
        return total


def other_db(url: str) -> str:
    """The same Redis server, the next db index (the measured side's broker)."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


@contextmanager
def collector(broker_url: str, db: str, shard_agents: int) -> Iterator[Side]:
    """`vsmmon worker --role collector --concurrency 2` on `broker_url`, ready when it answers a ping."""
    env = {**os.environ, "VSMMON_BROKER_URL": broker_url, "VSMMON_DATABASE_URL": db, "VSMMON_LOG_LEVEL": "WARNING",
           "VSMMON_CYCLE_SHARD_AGENTS": str(shard_agents),
           "VSMMON_COLLECT_TIMEOUT_S": str(COLLECT_TIMEOUT_S)}  # fmt: skip
    command = [sys.executable, "-m", "vsmmon", "worker", "--role", "collector", "--concurrency", "2",
               "--hostname", f"bench-p9-{secrets.token_hex(3)}@localhost"]  # fmt: skip
    log = open(os.devnull, "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    app = create_app(load_settings({}, broker_url=broker_url))
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not app.control.ping(timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the collector worker did not start")
        yield Side(app, process, RedisStaging.from_url(broker_url))
    finally:
        stop(process)
        log.close()


def reports(agents: list[simulator.SimAgent], t_s: float) -> list[AgentReport]:
    """What the agents push at `t_s`, as the HTTP service stages it."""
    return [AgentReport(str(r["agent_id"]), AgentKind(str(r["type"])), "bench", cast(dict[str, float], r["metrics"]),
                        str(r["version"]), interval_s=5.0) for r in simulator.reports_at(agents, t_s, 5.0)]  # fmt: skip


def cycle(side: Side, engine: sa.Engine, staged: list[AgentReport]) -> tuple[float, float, int]:
    """(wall s, CPU s, shards) of one cycle of `staged` through `side`'s worker, until every shard is aggregated."""
    side.staging.push(staged)
    since = datetime.now(UTC)
    cpu0, started = side.cpu_s(), time.perf_counter()
    side.app.send_task(names.COLLECT_RUN)
    query = sa.text("SELECT count(*), count(aggregated_at), max(shards) FROM collections WHERE started_at >= :since")
    deadline = time.monotonic() + CYCLE_TIMEOUT_S
    with engine.connect() as conn:
        while True:
            total, done, shards = conn.execute(query, {"since": since}).one()
            conn.rollback()
            if shards and done == shards == total:
                return time.perf_counter() - started, side.cpu_s() - cpu0, int(shards)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cycle was not aggregated within {CYCLE_TIMEOUT_S:g} s ({done}/{total} shards)")
            time.sleep(POLL_S)


def run(quick: bool) -> Result:
    shape = QUICK if quick else FULL
    fleet = simulator.fleet(shape.agents, "mixed", seed=9)
    baseline_url = redis_url()
    measured_url = other_db(baseline_url)
    with ExitStack() as stack:
        stack.enter_context(flushed_redis(baseline_url))
        stack.enter_context(flushed_redis(measured_url))
        db = stack.enter_context(throwaway_database(database_url()))
        migrations.upgrade(db)
        engine = sa.create_engine(db, pool_size=1)
        stack.callback(engine.dispose)
        sides = {
            False: stack.enter_context(collector(baseline_url, db, shard_agents=shape.agents)),  # one shard
            True: stack.enter_context(collector(measured_url, db, shard_agents=shape.agents // 2)),  # two
        }
        tick = iter(range(1, 10**6))
        for _ in range(shape.warmup):
            for side in sides.values():
                cycle(side, engine, reports(fleet, 5.0 * next(tick)))
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        shards: dict[bool, int] = {}
        for _, measured in alternating(shape.repetitions):
            seconds, cpu_s, shards[measured] = cycle(sides[measured], engine, reports(fleet, 5.0 * next(tick)))
            wall[measured].append(seconds)
            cpu[measured].append(cpu_s)
    if shards != {False: 1, True: 2}:
        raise RuntimeError(f"expected 1 shard against 2, the cycles had {shards}")
    one, two = Stats.of(cpu[False]), Stats.of(cpu[True])
    return Result(
        id=ID,
        what=(
            f"sharded cycle: wall s from `vsmmon.collect.run` sent until every shard of a cycle of {shape.agents:,} "
            "pushed agents (9 metrics each) is collected, stored and aggregated, on a real collector worker "
            "(prefork 2, Redis, PostgreSQL); 2 shards against the same cycle in 1 shard, alternating"
        ),
        unit="s",
        baseline_name=f"1 shard of {shape.agents:,} agents (VSMMON_CYCLE_SHARD_AGENTS={shape.agents})",
        figure_name=f"2 shards of ~{shape.agents // 2:,} (VSMMON_CYCLE_SHARD_AGENTS={shape.agents // 2})",
        baseline=Stats.of(wall[False]),
        figure=Stats.of(wall[True]),
        target=TARGET,
        digits=2,
        figure_detail=(
            f"per shard: CPU {two.median / 2:.2f} s of the worker's processes (the whole cycle {two.median:.2f} s, "
            f"against {one.median:.2f} s in 1 shard)"
        ),
    )
