"""C3: what a Prometheus scrape of the fleet costs at 1,000 workers, against a same-size prometheus_client registry.

vsmmon's side is what `/metrics` runs per scrape for the fleet: `metrics_fleet.families` over the registry's
agents (their latest report), exposed by `generate_latest` through a collector. The baseline holds the same
series in prometheus_client's own Gauges and Counters (the way an exporter keeps them, set between
scrapes), exposed by the same `generate_latest`. Both expose the same number of samples (asserted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from bench.common import Result, Stats, Target, alternating
from vsmmon.agent.counters import TaskCounters
from vsmmon.models import AgentInfo, AgentKind, AgentStatus
from vsmmon.web import metrics_fleet

ID = "C3"
TARGET = Target(max_ratio=2.0)
TASK_NAMES = 5  # per worker: 4 outcome counters, a runtime p95 and a runtime histogram each
RUNS_S = (0.004, 0.04, 0.3)  # each task's runs, in three of the histogram's buckets
QUEUES = 20


@dataclass(frozen=True, slots=True)
class Shape:
    workers: int
    repetitions: int


FULL = Shape(workers=1000, repetitions=15)
QUICK = Shape(workers=1000, repetitions=3)


def run(quick: bool) -> Result:
    shape = QUICK if quick else FULL
    agents = fleet(shape.workers)
    ours, theirs = CollectorRegistry(), baseline_registry(agents)
    ours.register(FleetCollector(agents))
    disable_created_metrics()  # type: ignore[no-untyped-call]  # families carry no `_created` samples: the baseline's are left out too
    try:
        counts = {name: samples(generate_latest(r)) for name, r in (("vsmmon", ours), ("baseline", theirs))}
        if counts["vsmmon"] != counts["baseline"]:
            raise RuntimeError(f"the two sides expose different sample counts: {counts}")
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _, measured in alternating(shape.repetitions):
            registry = ours if measured else theirs
            started = time.perf_counter()
            generate_latest(registry)
            seconds[measured].append(time.perf_counter() - started)
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide (read at exposition): the other measures get the default
    return Result(
        id=ID,
        what=(
            f"scrape cost: `/metrics`' fleet families at {shape.workers:,} workers x {TASK_NAMES} task names "
            f"(+{QUEUES} queues), {counts['vsmmon']:,} samples, built from the agents' latest reports at each scrape "
            f"and exposed by prometheus_client's generate_latest"
        ),
        unit="s",
        baseline_name="the same series kept in a prometheus_client registry (Gauge / Counter with labels)",
        figure_name="vsmmon's families built at scrape time",
        baseline=Stats.of(seconds[False]),
        figure=Stats.of(seconds[True]),
        target=TARGET,
        digits=3,
        notes=(f"{shape.repetitions} scrapes a side, alternating",),
    )


class FleetCollector(Collector):
    def __init__(self, agents: Sequence[AgentInfo]) -> None:
        self.agents = agents

    def collect(self) -> Iterator[Metric]:
        yield from metrics_fleet.families(self.agents)


def fleet(workers: int) -> list[AgentInfo]:
    """`workers` live Celery workers reporting TASK_NAMES task names each, and QUEUES queues."""
    now = datetime.now(UTC)

    def agent(agent_id: str, kind: AgentKind, metrics: dict[str, float]) -> AgentInfo:
        return AgentInfo(agent_id, kind, "bench", "1", AgentStatus.ONLINE, now, now, now, 5.0, "", (), metrics, {})

    found = []
    for w in range(workers):
        metrics = {
            "active": 1.0,
            "cpu_percent": 12.5 + w % 7,
            "concurrency": 4.0,
            "rss_bytes": 2e8,
            "children_rss_bytes": 3e8,
        }
        for t in range(TASK_NAMES):
            for outcome in metrics_fleet.OUTCOMES:
                metrics[f"task.app.task_{t}.{outcome}_total"] = float(w * 10 + t)
            metrics[f"task.app.task_{t}.runtime_p95_s"] = 0.01 * (t + 1)
            metrics.update({f"task.app.task_{t}.{k}": v for k, v in HISTOGRAM.items()})
        found.append(agent(f"celery@worker-{w:04d}", AgentKind.CELERY_WORKER, metrics))
    found += [agent(f"queue:q{q}", AgentKind.QUEUE, {"messages": float(q), "consumers": 2.0}) for q in range(QUEUES)]
    return found


def _histogram() -> dict[str, float]:
    """The plugin's histogram figures of one task name that ran RUNS_S (as a reply carries them)."""
    counters = TaskCounters()
    for runtime in RUNS_S:
        counters.succeeded("t", runtime)
    return {
        k: v for k, v in counters.snapshot()[1]["t"].items() if k.startswith(("runtime_le_", "runtime_c", "runtime_s"))
    }


HISTOGRAM = _histogram()


def baseline_registry(agents: Sequence[AgentInfo]) -> CollectorRegistry:
    """The same series as `families(agents)`, in prometheus_client's own metric objects."""
    registry = CollectorRegistry()

    def gauge(name: str, labels: Sequence[str]) -> Gauge:
        return Gauge(name, name, labels, registry=registry)

    up, active = gauge("celery_worker_up", ["hostname"]), gauge("celery_worker_tasks_active", ["hostname"])
    cpu, memory = gauge("vsmmon_worker_cpu_percent", ["hostname"]), gauge("vsmmon_worker_memory_bytes", ["hostname"])
    pool = gauge("vsmmon_worker_pool_size", ["hostname"])
    tasks = {o: Counter(f"celery_task_{o}", o, ["name", "hostname"], registry=registry) for o in metrics_fleet.OUTCOMES}
    runtime = gauge("vsmmon_task_runtime_p95_seconds", ["name", "hostname"])
    histogram = Histogram(
        "celery_task_runtime", "runtime", ["name", "hostname"], registry=registry
    )  # celery-exporter's
    length, consumers = (
        gauge("celery_queue_length", ["queue_name"]),
        gauge("celery_active_consumer_count", ["queue_name"]),
    )
    for a in agents:
        m = a.metrics
        if a.kind is AgentKind.QUEUE:
            name = a.agent_id.removeprefix("queue:")
            length.labels(name).set(m["messages"])
            consumers.labels(name).set(m["consumers"])
            continue
        host = a.agent_id
        up.labels(host).set(1.0)
        active.labels(host).set(m["active"])
        cpu.labels(host).set(m["cpu_percent"])
        pool.labels(host).set(m["concurrency"])
        memory.labels(host).set(m["rss_bytes"] + m["children_rss_bytes"])
        for key, value in m.items():
            if key.startswith("task."):
                name, _, figure = key.removeprefix("task.").rpartition(".")
                if figure == "runtime_p95_s":
                    runtime.labels(name, host).set(value)
                elif figure == "runtime_count":
                    for run in RUNS_S:
                        histogram.labels(name, host).observe(run)
                elif not figure.startswith("runtime_"):
                    tasks[figure.removesuffix("_total")].labels(name, host).inc(value)
    return registry


def samples(exposition: bytes) -> int:
    return sum(1 for line in exposition.splitlines() if line and not line.startswith(b"#"))
