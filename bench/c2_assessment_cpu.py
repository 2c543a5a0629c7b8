"""C2: CPU time of one health assessment at 1,000 agents, against the seed's budget (< 1 % of the 30 s interval).

The assessment is what the health task computes: `vsmmon.health.inputs.gather` reading the agents' series from
a real Redis real-time window (10 min of 1,000 workers and 20 queues, written by `RealtimeWindow.write` as the
persist task writes them), the pure stage (`vsmmon.health.assessment.evaluate`) and its storage rows. The CPU is
this process's own (`time.process_time`: Redis's is not counted); the registry is given as read (its PostgreSQL
query aside). The pure stage alone is shown beside it.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import Result, Stats, Target
from bench.services import flushed_redis, redis_url
from vsmmon.config import load_settings
from vsmmon.health.agents import MB, AgentInputs
from vsmmon.health.assessment import evaluate
from vsmmon.health.codec import rows
from vsmmon.health.inputs import gather
from vsmmon.health.systems import ControlInputs, QueueFlow
from vsmmon.models import AgentInfo, AgentKind, AgentReport, AgentStatus, Collection
from vsmmon.store.realtime import RealtimeWindow

ID = "C2"
INTERVAL_S = 30.0
TARGET = Target(max_ratio=0.01)
AGENTS, QUEUES, POINTS = 1000, 20, 120  # 10 min of pool sizes and backlogs at 5 s
INTERVAL = 5.0


def inputs(seed: int) -> tuple[list[AgentInputs], list[QueueFlow], ControlInputs]:
    """A fleet of 1,000 workers over 20 queues, with the figures a real registry and window give."""
    rng = random.Random(seed)
    agents = [
        AgentInputs(
            f"celery@w{i}",
            "celery_worker",
            rng.random() > 0.02,
            {
                "rss_bytes": rng.uniform(100, 900) * MB,
                "children_rss_bytes": rng.uniform(50, 300) * MB,
                "concurrency": 4.0,
                "active": float(rng.randint(0, 4)),
                "task_runtime_p95_s": rng.uniform(0.05, 2),
            },
            512 * MB,
            1024 * MB,
            float(rng.randint(50, 500)),
            float(rng.randint(0, 20)),
            rng.random(),
            0.5,
        )
        for i in range(AGENTS)
    ]
    flows = [
        QueueFlow(
            f"q{k}",
            rng.uniform(0, 500),
            rng.uniform(5, 50),
            rng.uniform(5, 50),
            [rng.uniform(0, 500) for _ in range(POINTS)],
            [rng.random() for _ in range(AGENTS // QUEUES)],
        )
        for k in range(QUEUES)
    ]
    control = ControlInputs(
        active_total=sum(a.metrics["active"] for a in agents), concurrency_total=4.0 * AGENTS,
        pool_series={a.agent_id: [4.0] * POINTS for a in agents},
        identities=[(f"q{i % QUEUES}", "v1|abc") for i in range(AGENTS)],
    )  # fmt: skip
    return agents, flows, control


def reports(rng: random.Random, k: int) -> tuple[AgentReport, ...]:
    """Collection `k` of a fleet of 1,000 workers over 20 queues: counters rising, gauges moving."""
    workers = tuple(
        AgentReport(
            f"celery@w{i}", AgentKind.CELERY_WORKER, f"host{i % 50}",
            {"rss_bytes": rng.uniform(100, 900) * MB, "children_rss_bytes": rng.uniform(50, 300) * MB,
             "concurrency": 4.0, "active": float(rng.randint(0, 4)), "task_runtime_p95_s": rng.uniform(0.05, 2),
             "tasks_succeeded_total": 40.0 * k + i, "tasks_failed_total": float(k // 10)},
            queues=(f"q{i % QUEUES}",),
        )
        for i in range(AGENTS)
    )  # fmt: skip
    queues = tuple(
        AgentReport(f"queue:q{q}", AgentKind.QUEUE, "", {"messages": rng.uniform(0, 500)}) for q in range(QUEUES)
    )
    return workers + queues


def registry(last: tuple[AgentReport, ...], now: datetime) -> list[AgentInfo]:
    """The registry as the health task reads it: every agent online, with its latest figures."""
    since = now - timedelta(hours=1)
    info = (AgentStatus.ONLINE, since, since, now, INTERVAL, "abc")
    return [AgentInfo(r.agent_id, r.kind, r.host, "5.4", *info, r.queues, r.metrics, {}) for r in last]


def filled_window(window: RealtimeWindow, now: datetime, points: int, seed: int) -> list[AgentInfo]:
    """`points` collections of the fleet written into the window, the last at `now`; the registry after them."""
    rng = random.Random(seed)
    last: tuple[AgentReport, ...] = ()
    for k in range(points):
        last = reports(rng, k)
        at = now - timedelta(seconds=INTERVAL * (points - 1 - k))
        window.write(Collection(uuid.uuid4(), at, 10.0, last, interval_s=INTERVAL))
    return registry(last, now)


def run(quick: bool) -> Result:
    """CPU seconds of gather() on Redis, evaluate() and its storage rows, median over repetitions."""
    repetitions = 3 if quick else 9
    points = 30 if quick else POINTS
    settings = load_settings({}, broker_url=redis_url())
    whole_s, pure_s = [], []
    with flushed_redis(redis_url()) as client:
        window = RealtimeWindow(client, INTERVAL)
        now = datetime.now(UTC)
        agents = filled_window(window, now, points, seed=1)
        for rep in range(repetitions):
            started = time.process_time()
            gathered = gather(agents, window, settings, now)
            assessment = evaluate(now, gathered.agents, gathered.queues, gathered.control)
            list(rows(assessment))  # a generator: made as stored
            whole_s.append(time.process_time() - started)
            pure = inputs(rep)  # the same fleet's shape, as built figures: the pure stage alone
            started = time.process_time()
            list(rows(evaluate(now, *pure)))
            pure_s.append(time.process_time() - started)
    pure_stats = Stats.of(pure_s)
    return Result(
        id=ID,
        what=(
            f"health assessment CPU: vsmmon.health.inputs.gather() reading {points} points of each series of "
            f"{AGENTS:,} workers over {QUEUES} queues from a real Redis window, vsmmon.assessment.evaluate() and "
            "its storage rows; this process's CPU (Redis's and the registry's PostgreSQL read excluded)"
        ),
        unit="s",
        baseline_name="the health interval (seed: an assessment may cost 1 % of it)",
        figure_name="CPU seconds of one assessment, gather() included",
        baseline=Stats.of([INTERVAL_S] * repetitions),
        figure=Stats.of(whole_s),
        target=TARGET,
        digits=3,
        figure_detail=f"evaluate() and rows alone {pure_stats.median:.3f} s (min {pure_stats.min:.3f})",
    )
