"""`GET /metrics` on real PostgreSQL and Redis, read back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.browser.seed import assessment, raise_alert, seed, store_and_publish
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.aggregator import window_start
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app

FAMILIES = {
    "vsmmon_viability": "gauge",
    "vsmmon_overall_health": "gauge",
    "vsmmon_system_health": "gauge",
    "vsmmon_system_state": "gauge",
    "vsmmon_assessment_timestamp_seconds": "gauge",
    "vsmmon_agent_health": "gauge",
    "vsmmon_agent_up": "gauge",
    "vsmmon_alerts_firing": "gauge",
    "vsmmon_alerts_open": "gauge",
    "vsmmon_collection_duration_seconds": "histogram",
    "vsmmon_queue_messages": "gauge",
    "vsmmon_queue_consumers": "gauge",
    "vsmmon_pipeline_tasks": "counter",
    "vsmmon_lost_collections": "counter",
    "vsmmon_alert_deliveries": "counter",
    "celery_worker_up": "gauge",
    "celery_worker_tasks_active": "gauge",
    "celery_task_succeeded": "counter",
    "celery_task_failed": "counter",
    "celery_task_runtime": "histogram",
    "celery_queue_length": "gauge",
    "vsmmon_worker_memory_bytes": "gauge",
    "vsmmon_source_up": "gauge",
    "vsmmon_rollups_pending_collections": "gauge",
}


@pytest.fixture
def client(settings: Settings, clean_services: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings, report_self=False)) as c:
        yield c


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.require("redis_url"))
    yield client
    client.close()


def scrape(client: TestClient) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name, kind in FAMILIES.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, (name, families[name].type)
    return {name: list(f.samples) for name, f in families.items()}


def value(samples: list[Sample], suffix: str = "", **labels: str) -> float:
    found = [
        s.value for s in samples if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (labels, samples)
    return found[0]


def test_an_empty_system_still_exposes_every_family_with_zero_alerts(client: TestClient) -> None:
    metrics = scrape(client)
    assert {s.labels["severity"]: s.value for s in metrics["vsmmon_alerts_firing"]} == {
        "info": 0.0, "warning": 0.0, "critical": 0.0,
    }  # fmt: skip
    assert value(metrics["vsmmon_collection_duration_seconds"], "_count") == 0
    assert metrics["vsmmon_agent_up"] == []
    assert value(metrics["vsmmon_source_up"], source="database") == 1
    assert value(metrics["vsmmon_source_up"], source="redis") == 1
    assert value(metrics["vsmmon_rollups_pending_collections"]) == 0
    assert "vsmmon_rollups_closed_to_timestamp_seconds" not in metrics  # no window stored yet


def test_metrics_hold_the_current_state(
    client: TestClient, store: PostgresStore, redis_client: redis.Redis, settings: Settings
) -> None:
    fleet = seed(store, redis_client, agents=6, offline=2, cycles=3)
    summary = store_and_publish(store, redis_client, assessment(fleet))
    raise_alert(store, redis_client, settings, fleet.workers[0])
    metrics = scrape(client)

    assert value(metrics["vsmmon_viability"]) == pytest.approx(summary["viability"], abs=1e-6)
    assert value(metrics["vsmmon_assessment_timestamp_seconds"]) == datetime.fromisoformat(summary["at"]).timestamp()
    for name, system in summary["systems"].items():
        assert value(metrics["vsmmon_system_state"], system=name, state=system["state"]) == 1
        if system["score"] is not None:
            assert value(metrics["vsmmon_system_health"], system=name) == pytest.approx(system["score"], abs=1e-6)
    up = {s.labels["agent"]: s.value for s in metrics["vsmmon_agent_up"]}
    assert up == {name: 0.0 if name in fleet.offline else 1.0 for name in fleet.workers}
    health = {s.labels["agent"]: s.value for s in metrics["vsmmon_agent_health"]}
    assert set(health) == set(fleet.workers)
    assert all(health[name] == 0 for name in fleet.offline)  # liveness 0: h = 0
    assert value(metrics["vsmmon_alerts_firing"], severity="critical") == 1
    assert value(metrics["vsmmon_alerts_firing"], severity="warning") == 0
    assert value(metrics["vsmmon_alerts_open"], severity="critical", status="firing") == 1
    assert {s.labels["queue"] for s in metrics["vsmmon_queue_messages"]} == {
        "vsm.collect", "vsm.analysis", "orders", "emails",
    }  # fmt: skip
    stored = [c.duration_ms / 1000 for c in [store.latest_collection()] if c is not None]
    histogram = metrics["vsmmon_collection_duration_seconds"]
    assert value(histogram, "_count") == 3
    buckets = [s.value for s in histogram if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 3
    assert value(histogram, "_bucket", le="0.05") == 3  # the seed's cycles take 8-38 ms
    assert value(histogram, "_sum") >= stored[0]
    # 6 workers each report their own `vsmmon.collect.run` counter (102 after 3 cycles)
    tasks = value(metrics["vsmmon_pipeline_tasks"], "_total", task="vsmmon.collect.run", outcome="succeeded")
    assert tasks == pytest.approx(6 * 102)
    # the same reports under celery-exporter's names, and what an exporter fed by events cannot see
    assert {s.labels["hostname"]: s.value for s in metrics["celery_worker_up"]} == up
    live = [name for name in fleet.workers if name not in fleet.offline]
    succeeded = {s.labels["hostname"] for s in metrics["celery_task_succeeded"]
                 if s.name == "celery_task_succeeded_total" and s.labels["name"] == "vsmmon.collect.run"}  # fmt: skip
    assert succeeded == set(live)  # an offline worker's last counters are not current: left out
    worker = live[0]
    assert value(metrics["celery_task_succeeded"], "_total", name="vsmmon.collect.run", hostname=worker) == 102
    assert value(metrics["vsmmon_worker_pool_size"], hostname=worker) == 4
    i = fleet.workers.index(worker)  # the seed's runtime p95 of vsmmon.collect.run on worker i: 0.05 + 0.001 i
    runtime = metrics["vsmmon_task_runtime_p95_seconds"]
    assert value(runtime, name="vsmmon.collect.run", hostname=worker) == pytest.approx(0.05 + 0.001 * i)
    assert {s.labels["hostname"] for s in runtime} == set(live)
    histogram = {
        s.labels["le"]: s.value
        for s in metrics["celery_task_runtime"]
        if s.name.endswith("_bucket") and (s.labels["name"], s.labels["hostname"]) == ("vsmmon.collect.run", worker)
    }
    assert histogram["0.025"] == 0
    assert histogram["0.05"] == histogram["0.075"] == pytest.approx(0.4 * 102)  # a bound left out holds the one below
    assert histogram["0.1"] == histogram["10.0"] == histogram["+Inf"] == 102
    assert value(metrics["celery_task_runtime"], "_count", name="vsmmon.collect.run", hostname=worker) == 102
    with store.engine.connect() as conn:  # the registry keeps them; no series does
        stored = conn.execute(
            sa.text("SELECT count(*) FROM metric_samples WHERE metric LIKE 'task.vsmmon.collect.run.runtime_%'")
        )
        assert stored.scalar_one() == 3 * 6  # the p95 of each worker in each of the 3 stored cycles, no bucket
        buckets = conn.execute(sa.text(r"SELECT count(*) FROM metric_samples WHERE metric LIKE 'task.%runtime\_le\_%'"))
        assert buckets.scalar_one() == 0
    assert value(metrics["vsmmon_worker_memory_bytes"], hostname=worker) > 80 * 1024 * 1024  # main + children
    assert 0 <= value(metrics["vsmmon_worker_cpu_percent"], hostname=worker) <= 100
    assert 0 <= value(metrics["celery_worker_tasks_active"], hostname=worker) <= 4
    assert {s.labels["queue_name"] for s in metrics["celery_queue_length"]} == {
        "vsm.collect", "vsm.analysis", "orders", "emails",
    }  # fmt: skip
    assert value(metrics["vsmmon_rollups_pending_collections"]) == 3  # aggregated, their window still open
    latest = store.latest_collection()
    assert latest is not None
    cutoff = window_start(latest.started_at, 300) + timedelta(seconds=300)
    store.close_windows(cutoff, datetime.now(UTC))
    closed = scrape(client)
    assert value(closed["vsmmon_rollups_pending_collections"]) == 0
    assert value(closed["vsmmon_rollups_closed_to_timestamp_seconds"]) == cutoff.timestamp()


def test_new_collections_add_to_the_histogram_and_purged_agents_disappear(
    client: TestClient, store: PostgresStore, redis_client: redis.Redis, settings: Settings
) -> None:
    fleet = seed(store, redis_client, agents=4, offline=1, cycles=3)
    store_and_publish(store, redis_client, assessment(fleet))
    first = scrape(client)
    assert fleet.offline[0] in {s.labels["agent"] for s in first["vsmmon_agent_up"]}
    assert value(first["vsmmon_collection_duration_seconds"], "_count") == 3

    seed(store, redis_client, agents=4, offline=1, cycles=3)  # three more collections
    past_purge = datetime.now(UTC) - timedelta(seconds=settings.purge_after_s + 60)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE agents SET status_since = :t WHERE id = :id"), {"t": past_purge, "id": fleet.offline[0]}
        )
    second = scrape(client)
    assert value(second["vsmmon_collection_duration_seconds"], "_count") == 6
    for family in ("vsmmon_agent_up", "vsmmon_agent_health"):
        agents = {s.labels["agent"] for s in second[family]}
        assert fleet.offline[0] not in agents
        assert set(fleet.workers) - set(fleet.offline) <= agents


def test_alert_deliveries_are_counted_by_receiver_url_and_outcome(
    client: TestClient, redis_client: redis.Redis
) -> None:
    redis_client.hset(names.ALERT_DELIVERIES_KEY, mapping={
        "alertmanager|http://am:9093|sent": 3, "webhook|https://hooks:8443|refused": 1,
    })  # fmt: skip
    samples = scrape(client)["vsmmon_alert_deliveries"]
    found = {(s.labels["receiver"], s.labels["url"], s.labels["outcome"]): s.value for s in samples}
    assert found == {("alertmanager", "http://am:9093", "sent"): 3.0,
                     ("webhook", "https://hooks:8443", "refused"): 1.0}  # fmt: skip
