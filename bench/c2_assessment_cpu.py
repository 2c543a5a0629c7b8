"""C2: CPU time of one health assessment at 1,000 agents, against the seed's budget (< 1 % of the 30 s interval).

The assessment is the pure stage (`vsmmon.assessment.evaluate`) plus turning its result into the rows the
health task stores: everything the health task computes. Reading its inputs from Redis is I/O, not counted.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from bench.common import Result, Stats, Target
from vsmmon.health.agents import MB, AgentInputs
from vsmmon.health.assessment import evaluate
from vsmmon.health.codec import rows
from vsmmon.health.systems import ControlInputs, QueueFlow

ID = "C2"
INTERVAL_S = 30.0
TARGET = Target(max_ratio=0.01)
AGENTS, QUEUES, POINTS = 1000, 20, 120  # 10 min of pool sizes and backlogs at 5 s


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


def run(quick: bool) -> Result:
    """CPU seconds of evaluate() plus its storage rows, median over repetitions."""
    repetitions = 3 if quick else 9
    cpu_s = []
    for rep in range(repetitions):
        agents, flows, control = inputs(rep)
        started = time.process_time()
        assessment = evaluate(datetime.now(UTC), agents, flows, control)
        list(rows(assessment))  # a generator: made as stored
        cpu_s.append(time.process_time() - started)
    return Result(
        id=ID,
        what=(
            f"health assessment CPU: vsmmon.assessment.evaluate() and its storage rows for {AGENTS:,} workers over "
            f"{QUEUES} queues, with {POINTS} points of backlog and pool-size history each (Redis reads excluded)"
        ),
        unit="s",
        baseline_name="the health interval (seed: an assessment may cost 1 % of it)",
        figure_name="CPU seconds of one assessment",
        baseline=Stats.of([INTERVAL_S] * repetitions),
        figure=Stats.of(cpu_s),
        target=TARGET,
        digits=3,
    )
