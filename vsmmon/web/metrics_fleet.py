"""The fleet on `/metrics` as celery-exporter (danihodovic/celery-exporter) names it, plus what it cannot see.

Pure: families from the registry's agents (their latest report). Dashboards and alerting rules written for
celery-exporter keep working — `celery_worker_up`, `celery_worker_tasks_active`,
`celery_task_{succeeded,failed,retried,rejected}_total{name, hostname}`, `celery_queue_length` and
`celery_active_consumer_count{queue_name}` — and vsmmon adds per worker what an exporter fed by events cannot
know: CPU, memory (main process and pool children), pool size, and per task name the 95th percentile of its
recent runtimes (the plugin keeps the last runtimes of each name; a percentile, not celery-exporter's
`celery_task_runtime` histogram, whose buckets a plugin reply does not carry). Label cardinality is bounded where it is
made: the plugin counts at most 25 task names per worker (the rest as `other`), a collection holds at most
500 metrics per agent, and only workers the live views show (offline ones for `VSMMON_PURGE_AFTER_S`) appear.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vsmmon.models import AgentInfo, AgentKind

OUTCOMES = ("succeeded", "failed", "retried", "rejected")


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
        _add_tasks(a.agent_id, m, tasks, runtime)
    yield from (up, active, cpu, memory, pool, *tasks.values(), runtime, length, consumers)


def _add_tasks(
    hostname: str, m: Mapping[str, float], tasks: Mapping[str, CounterMetricFamily], runtime: GaugeMetricFamily
) -> None:
    """One worker's per-task-name counters (`task.NAME.OUTCOME_total`) and runtime p95 (`task.NAME.runtime_p95_s`)."""
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
