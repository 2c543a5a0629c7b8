"""`celery_task_runtime` on `/metrics`: celery-exporter's histogram, rebuilt from a worker's sparse buckets."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from vsmmon.agent.counters import TaskCounters
from vsmmon.models import AgentInfo, AgentKind, AgentStatus
from vsmmon.web import metrics_fleet

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RUNS = (0.003, 0.004, 0.04, 0.3, 0.3, 12.0)


def worker(metrics: dict[str, float], status: AgentStatus = AgentStatus.ONLINE) -> AgentInfo:
    return AgentInfo("celery@w1", AgentKind.CELERY_WORKER, "h1", "1", status, NOW, NOW, NOW, 5.0, "", (), metrics, {})


class Fleet(Collector):
    def __init__(self, agents: list[AgentInfo]) -> None:
        self.agents = agents

    def collect(self):  # type: ignore[no-untyped-def]
        yield from metrics_fleet.families(self.agents)


def histogram_samples(registry: CollectorRegistry, family: str) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    (found,) = [f for f in text_string_to_metric_families(text) if f.name == family]
    return {(s.name.removeprefix(family), s.labels.get("le", "")): s.value for s in found.samples}


def test_the_plugins_counts_scrape_as_the_histogram_celery_exporter_keeps_for_the_same_runs() -> None:
    counters = TaskCounters()
    for runtime in RUNS:
        counters.succeeded("app.add", runtime)
    _, per_task = counters.snapshot()
    ours = CollectorRegistry()
    ours.register(Fleet([worker({f"task.app.add.{k}": v for k, v in per_task["app.add"].items()})]))
    theirs = CollectorRegistry()  # celery-exporter: Histogram.DEFAULT_BUCKETS, labels name and hostname
    runtime = Histogram("celery_task_runtime", "runtime", ["name", "hostname"], registry=theirs)
    for value in RUNS:
        runtime.labels("app.add", "celery@w1").observe(value)
    expected = {k: v for k, v in histogram_samples(theirs, "celery_task_runtime").items() if k[0] != "_created"}
    got = histogram_samples(ours, "celery_task_runtime")
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if k[0] != "_sum"} == {k: v for k, v in expected.items() if k[0] != "_sum"}
    assert abs(got["_sum", ""] - expected["_sum", ""]) < 1e-9
    assert got["_bucket", "0.005"] == 2
    assert got["_bucket", "0.01"] == 2  # a bound the reply left out holds what the one below holds
    assert got["_bucket", "10.0"] == 5
    assert got["_bucket", "+Inf"] == got["_count", ""] == 6


def test_a_workers_odd_buckets_are_kept_non_decreasing_and_within_the_count() -> None:
    odd = {"runtime_count": 4.0, "runtime_sum_s": 1.0, "runtime_le_5ms": 3.0, "runtime_le_50ms": 1.0,
           "runtime_le_500ms": 9.0}  # fmt: skip
    buckets = metrics_fleet.buckets(odd)
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert max(values) == 4.0
    assert dict(buckets)["0.05"] == 3.0


def test_no_histogram_without_its_count_and_none_for_an_offline_worker() -> None:
    partial = worker({"task.app.add.runtime_le_5ms": 1.0, "task.app.b.runtime_count": 1.0})
    offline = worker({"task.app.add.runtime_count": 1.0, "task.app.add.runtime_sum_s": 0.1}, AgentStatus.OFFLINE)
    for agent in (partial, offline):
        (family,) = [f for f in metrics_fleet.families([agent]) if f.name == "celery_task_runtime"]
        assert family.samples == []
