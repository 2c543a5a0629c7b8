"""The fleet on `/metrics` as celery-exporter (danihodovic/celery-exporter) names it, plus what it cannot see.

Pure: families from the registry's agents (their latest report). Dashboards and alerting rules written for
celery-exporter keep working — `celery_worker_up`, `celery_worker_tasks_active`,
`celery_task_{succeeded,failed,retried,rejected}_total{name, hostname}`, `celery_queue_length` and
`celery_active_consumer_count{queue_name}` — and vsmmon adds per worker what an exporter fed by events cannot
know: CPU, memory (main process and pool children), pool size, and per task name the 95th percentile of its
recent runtimes. `celery_task_runtime{name, hostname}` is celery-exporter's histogram of successful runtimes,
with its default buckets (`names.RUNTIME_BUCKETS_MS`), counted by the plugin since the worker started; a reply
carries only the buckets that hold runs and this fills the rest. Label cardinality is bounded where it is
made: the plugin counts at most 25 task names per worker (the rest as `other`), a collection holds at most
500 metrics per agent (and 500 histogram figures), and only workers the live views show (offline ones for
`VSMMON_PURGE_AFTER_S`) appear.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from vsmmon.models import AgentInfo, AgentKind
from vsmmon.names import RUNTIME_BUCKETS_MS, RUNTIME_COUNT, RUNTIME_SUM, runtime_bucket

OUTCOMES = ("succeeded", "failed", "retried", "rejected")
_BOUNDS = tuple(
    (runtime_bucket(ms), repr(ms / 1000)) for ms in RUNTIME_BUCKETS_MS
)  # `le` as prometheus_client writes it


def families(agents: Sequence[AgentInfo]) -> Iterator[Metric]:
    """celery-exporter's worker, task and queue families, and vsmmon's per-worker resources."""
    up = GaugeMetricFamily("celery_worker_up", "1 when the worker answered within two collections", labels=["hostname"])
    active = GaugeMetricFamily(
        "celery_worker_tasks_active", "Tasks the worker is running (the observer's own probes left out)",
        labels=["hostname"],
    )  # fmt: skip
    cpu = GaugeMetricFamily("vsmmon_worker_cpu_percent", "CPU of the worker, pool included (100 = one core)",
                            labels=["hostname"])  # fmt: skip
    memory = GaugeMetricFamily("vsmmon_worker_memory_bytes", "RSS of the worker's main process and pool children",
                               labels=["hostname"])  # fmt: skip
    pool = GaugeMetricFamily("vsmmon_worker_pool_size", "Pool processes or threads of the worker", labels=["hostname"])
    tasks = {o: CounterMetricFamily(f"celery_task_{o}", f"Tasks {o} by the worker since it started",
                                    labels=["name", "hostname"]) for o in OUTCOMES}  # fmt: skip
    runtime = GaugeMetricFamily(
        "vsmmon_task_runtime_p95_seconds", "95th percentile of the task's recent runtimes on the worker",
        labels=["name", "hostname"],
    )  # fmt: skip
    histogram = HistogramMetricFamily("celery_task_runtime", "Runtime of the task's successful runs on the worker",
                                      labels=["name", "hostname"])  # fmt: skip
    length = GaugeMetricFamily("celery_queue_length", "Messages waiting in the queue", labels=["queue_name"])
    consumers = GaugeMetricFamily("celery_active_consumer_count", "Live consumers of the queue", labels=["queue_name"])
    for a in agents:
        m = a.metrics
        if a.kind is AgentKind.QUEUE:
            name = a.agent_id.removeprefix("queue:")
            if "messages" in m:
                length.add_metric([name], m["messages"])
            if "consumers" in m:
                consumers.add_metric([name], m["consumers"])
            continue
        if a.kind is not AgentKind.CELERY_WORKER:
            continue
        host = [a.agent_id]
        up.add_metric(host, 1.0 if a.live else 0.0)
        if not a.live:
            continue  # its last figures are not its current ones
        for family, key in ((active, "active"), (cpu, "cpu_percent"), (pool, "concurrency")):
            if key in m:
                family.add_metric(host, m[key])
        if "rss_bytes" in m:
            memory.add_metric(host, m["rss_bytes"] + m.get("children_rss_bytes", 0.0))
        _add_tasks(a.agent_id, m, tasks, runtime, histogram)
    yield from (up, active, cpu, memory, pool, *tasks.values(), runtime, histogram, length, consumers)


def _add_tasks(
    hostname: str,
    m: Mapping[str, float],
    tasks: Mapping[str, CounterMetricFamily],
    runtime: GaugeMetricFamily,
    histogram: HistogramMetricFamily,
) -> None:
    """One worker's per-task-name counters (`task.NAME.OUTCOME_total`), runtime p95 (`task.NAME.runtime_p95_s`)
    and runtime histogram (`task.NAME.runtime_count`, `.runtime_sum_s`, `.runtime_le_<ms>ms`)."""
    histograms: dict[str, dict[str, float]] = {}
    for metric, value in m.items():
        if not metric.startswith("task."):
            continue
        name, _, figure = metric.removeprefix("task.").rpartition(".")
        if not name:
            continue
        if figure == "runtime_p95_s":
            runtime.add_metric([name, hostname], value)
        elif figure.endswith("_total") and (outcome := figure.removesuffix("_total")) in tasks:
            tasks[outcome].add_metric([name, hostname], value)
        elif figure.startswith("runtime_"):
            histograms.setdefault(name, {})[figure] = value
    for name, figures in histograms.items():
        if RUNTIME_COUNT in figures and RUNTIME_SUM in figures:
            histogram.add_metric([name, hostname], buckets(figures), figures[RUNTIME_SUM])


def buckets(figures: Mapping[str, float]) -> list[tuple[str, float]]:
    """Prometheus' cumulative buckets from a reply's sparse ones: a bound the reply leaves out holds what the one
    below it holds; kept non-decreasing and at most the count, whatever a worker sent."""
    count = max(0.0, figures[RUNTIME_COUNT])
    held, found = 0.0, []
    for figure, le in _BOUNDS:
        held = min(count, max(held, figures.get(figure, held)))
        found.append((le, held))
    return [*found, ("+Inf", count)]
