"""P4: the analysis stage's time per collection cycle at 1,000 agents x 20 metrics, against a raw COPY of the rows.

Stage time per cycle = the aggregate task's wall time for that cycle's collection (claim it for the rollups,
as the chain sends it: with the cycle's start) + writing its real-time window (the persist task does that,
having the collection decoded; persist runs untimed, so the same write is timed here once more, a rewrite of
the slot persist wrote) + the close tasks it set off (the first
collection of a new 5 min window: compute the window that ended from its samples, fold a closed hour or day),
spread over the cycles + one twelfth of an analysis run (beat runs `vsmmon.analysis.run` every 60 s = every 12
cycles: read the fleet's series, trends, forecasts, capacity plans, recommendations, forecast scoring,
storing). The tasks' own bodies run in this process on a simulated clock, against real PostgreSQL and Redis;
persisting each collection (P3's measure) runs untimed before its aggregation, as the pipeline chains it. One
repetition is 60 cycles: exactly one 5 min window, so each repetition closes one; the last full-size
repetition also closes an hour and folds it into its day (once in 240 cycles, three times as often as in
steady state). The real-time window starts with an hour of history, as it has in steady state, so trends and
forecasts see full-length series.

Baseline, alternating with the stage: a raw psycopg binary COPY of the same collection's samples, one
transaction per collection, per cycle. The target is the issue's: under 1 s per cycle, on this machine.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import Result, Stats, Target, alternating
from bench.p3_ingest import COPY_SQL, COPY_TYPES, METRICS, rows_of
from bench.services import database_url, flushed_redis, libpq_conninfo, redis_url, throwaway_database
from vsmmon import names
from vsmmon.config import load_settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.migrations import upgrade
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.store.retention import policies
from vsmmon.workers.app import create_app
from vsmmon.workers.context import build_context

ID = "P4"
TARGET = Target(max_figure=1.0)
INTERVAL_S = 5.0
ANALYSIS_EVERY = 12  # cycles: the analysis beat (60 s) over the collection interval (5 s)
QUEUES = 20
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Shape:
    agents: int
    cycles: int  # per repetition
    repetitions: int
    history_cycles: int  # real-time history written before the first timed cycle


FULL = Shape(agents=1000, cycles=60, repetitions=4, history_cycles=720)
QUICK = Shape(agents=100, cycles=24, repetitions=2, history_cycles=60)


class Fleet:
    """1,000 workers over 20 queues: counters that count, memory that leaks on one worker in ten."""

    def __init__(self, agents: int, seed: int) -> None:
        self.rng = Random(seed)
        self.agents = [f"celery@worker-{a:04d}.host-{a % 62:03d}" for a in range(agents)]

    def collection(self, cycle: int, at: datetime) -> Collection:
        rng, t = self.rng, cycle * INTERVAL_S
        reports = [
            AgentReport(
                agent,
                AgentKind.CELERY_WORKER,
                f"host-{a % 62:03d}",
                self.metrics(a, t, rng),
                version="1.0",
                queues=(f"q{a % QUEUES}",),
            )
            for a, agent in enumerate(self.agents)
        ]
        reports += [
            AgentReport(f"queue:q{q}", AgentKind.QUEUE, "broker", {"messages": max(0.0, 50 + 3 * t + rng.gauss(0, 20))})
            for q in range(QUEUES)
        ]
        return Collection(uuid.uuid4(), at, 900.0, tuple(reports))

    @staticmethod
    def metrics(a: int, t: float, rng: Random) -> dict[str, float]:
        # each gauge wanders 2 % around its own level (a few sketch buckets per window, as real gauges do);
        # counters count; one worker in ten leaks memory
        values = {m: (1 + (a * 7 + i * 13) % 97) * 10.0 * (1 + rng.gauss(0, 0.02)) for i, m in enumerate(METRICS)}
        values.update(
            rss_bytes=(150 + (0.5 * t / 60 if a % 10 == 0 else 0)) * MB + rng.gauss(0, MB),
            children_rss_bytes=200 * MB + rng.gauss(0, MB),
            concurrency=4.0,
            active=float(rng.randint(0, 4)),
            tasks_received_total=8.0 * t,
            tasks_succeeded_total=8.0 * t,
            tasks_failed_total=0.01 * t,
            ctx_switches_total=1000.0 * t,
            uptime_s=3600.0 + t,
            task_runtime_p95_s=rng.lognormvariate(-2.0, 0.5),
            cpu_percent=rng.uniform(5, 95),
        )
        return values


def run(quick: bool) -> Result:
    """Play the cycles through the real task bodies on a throwaway database and a flushed Redis db."""
    shape = QUICK if quick else FULL
    fleet = Fleet(shape.agents, seed=4)
    # the first timed cycle is 15 min before an hour: the 4th repetition closes the hour (and folds it into its day)
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(minutes=15) + timedelta(seconds=1)
    clock = Clock(first)
    with throwaway_database(database_url()) as url, flushed_redis(redis_url()):
        upgrade(url)
        settings = load_settings({}, database_url=url, broker_url=redis_url(), collect_interval_s=INTERVAL_S)
        app = create_app(settings, lambda s: replace(build_context(s), clock=clock.now))
        ctx = app.context()
        ctx.store.maintain(policies(settings), first, timedelta(hours=3))
        write_history(ctx.realtime, fleet, first, shape.history_cycles)
        stage = Stage(app, clock, make_url(url).database or "")
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:
            per_cycle: dict[bool, list[float]] = {True: [], False: []}
            cycle = 0
            for _, measured in alternating(shape.repetitions):
                batch = [fleet.collection(cycle + i, first + timedelta(seconds=INTERVAL_S * (cycle + i)))
                         for i in range(shape.cycles)]  # fmt: skip
                if measured:
                    per_cycle[True].append(stage.play(batch, cycle) / shape.cycles)
                    cycle += shape.cycles
                else:
                    per_cycle[False].append(copy_raw(raw, batch) / shape.cycles)
        detail = stage.detail(shape.cycles)
        app.context().store.engine.dispose()  # type: ignore[attr-defined]
    return Result(
        id=ID,
        what=(
            f"analysis stage per 5 s collection cycle, {shape.agents:,} workers x {len(METRICS)} metrics "
            f"(+{QUEUES} queues): the real-time window write + the aggregate task (claim) + the window closes it "
            "sets off "
            f"(5 min rollups with sketches from the samples, hour and day folds) + 1/{ANALYSIS_EVERY} of the "
            f"analysis task, over {shape.cycles} cycles a repetition (one 5 min close each; one hour close in the run)"
        ),
        unit="s",
        baseline_name="raw psycopg binary COPY of the same collection's samples, one transaction",
        figure_name="real-time window write + aggregate task + analysis share, per cycle",
        baseline=Stats.of(per_cycle[False]),
        figure=Stats.of(per_cycle[True]),
        target=TARGET,
        digits=3,
        figure_detail=detail,
    )


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class Stage:
    """The aggregate and analysis task bodies, timed; persist and staging untimed."""

    def __init__(self, app: Any, clock: Clock, database: str) -> None:
        self.ctx = app.context()
        self.database = database
        self.cpu_s = 0.0  # this process and the database's backends, over the timed parts
        self.clock = clock
        self.persist: Callable[[str], Any] = app.tasks[names.PERSIST_COLLECTION]
        self.aggregate: Callable[[str], Any] = app.tasks[names.AGGREGATE_COLLECTION]
        self.close: Callable[[str], Any] = app.tasks[names.AGGREGATE_CLOSE]
        self.analyse: Callable[[], Any] = app.tasks[names.ANALYSIS_RUN]
        self.aggregate_s: list[float] = []
        self.window_s: list[float] = []
        self.analysis_s: list[float] = []
        self.close_s: list[float] = []

    def play(self, batch: list[Collection], first_cycle: int) -> float:
        """Seconds the stage spent on the batch: every aggregation, and the analyses beat would run meanwhile."""
        spent = 0.0
        for i, collection in enumerate(batch):
            self.clock.at = collection.started_at
            self.ctx.staging.put(collection)
            self.persist(str(collection.id))
            spent += self.timed(self.window_s, functools.partial(self.ctx.realtime.write, collection))[0]
            aggregate = functools.partial(self.aggregate, str(collection.id), collection.started_at.isoformat())
            took, summary = self.timed(self.aggregate_s, aggregate)
            if not summary["merged"]:
                raise RuntimeError(f"collection {collection.id} was not aggregated: {summary}")
            spent += took
            if summary["close_sent"]:  # the task it sent to the analysis queue, run here
                spent += self.timed(self.close_s, functools.partial(self.close, summary["close_due"]))[0]
            if (first_cycle + i) % ANALYSIS_EVERY == ANALYSIS_EVERY - 1:
                self.clock.at = collection.started_at + timedelta(seconds=2)
                spent += self.timed(self.analysis_s, self.analyse)[0]
        return spent

    def timed(self, into: list[float], task: Callable[[], Any]) -> tuple[float, Any]:
        """Run a task body; its wall time (kept in `into`) and its result. CPU is read outside the timed part."""
        cpu = self.cpu()
        started = time.perf_counter()
        result = task()
        took = time.perf_counter() - started
        self.cpu_s += self.cpu() - cpu
        into.append(took)
        return took, result

    def cpu(self) -> float:
        """CPU seconds so far of this process and of the PostgreSQL backends serving the throwaway database."""
        with self.ctx.store.engine.connect() as conn:  # type: ignore[attr-defined]
            pids = [r[0] for r in conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self.database})]  # fmt: skip
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a server on another host, or a backend that just ended
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return time.process_time() + ticks / os.sysconf("SC_CLK_TCK")

    def detail(self, cycles: int) -> str:
        agg, ana, closes = sorted(self.aggregate_s), sorted(self.analysis_s), sorted(self.close_s)
        window = sorted(self.window_s)
        per_cycle_cpu = self.cpu_s / max(1, len(agg))
        return (
            f"CPU {per_cycle_cpu:.3f} s a cycle (this process + its PostgreSQL backends; Redis not counted); "
            f"real-time window write median {window[len(window) // 2]:.3f} s; "
            f"aggregate task median {agg[len(agg) // 2]:.3f} s (max {agg[-1]:.3f} s); "
            f"{len(closes)} window closes, median {closes[len(closes) // 2]:.2f} s (max {closes[-1]:.2f} s); "
            f"analysis run median {ana[len(ana) // 2]:.2f} s (max {ana[-1]:.2f} s)"
        )


def copy_raw(conn: psycopg.Connection[Any], batch: list[Collection]) -> float:
    """Seconds to COPY each collection's samples (rows built before the clock starts)."""
    spent = 0.0
    for collection in batch:
        rows = rows_of(collection)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        spent += time.perf_counter() - started
    return spent


HISTORY_METRICS = {"rss_bytes", "children_rss_bytes", "cpu_percent", "active", "task_runtime_p95_s", "concurrency",
                   "tasks_succeeded_total", "tasks_failed_total", "messages"}  # fmt: skip


def write_history(window: RealtimeWindow, fleet: Fleet, first: datetime, cycles: int) -> None:
    """The real-time window as an hour of running leaves it: the series the analysis and health read."""
    for c in range(-cycles, 0):
        full = fleet.collection(c, first + timedelta(seconds=INTERVAL_S * c))
        reports = tuple(replace(r, metrics={m: v for m, v in r.metrics.items() if m in HISTORY_METRICS})
                        for r in full.reports)  # fmt: skip
        window.write(replace(full, reports=reports))
