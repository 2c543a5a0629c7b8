"""The foundation slice on real services: collect → persist → aggregate with a real Celery worker."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from kombu import Connection, Producer

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.collect.staging import RedisStaging
from vsmmon.models import CollectionSummary
from vsmmon.store.postgres import PostgresStore
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.workers.collect import DISCOVERY_EVERY_S
from vsmmon.workers.context import PipelineApp


def aggregated_collections(store: PostgresStore, after: CollectionSummary | None = None) -> Any:
    latest = store.latest_collection()
    if latest is None or latest.aggregated_at is None or (after and latest.id == after.id):
        return None
    return latest


def test_a_collection_of_the_workers_own_metrics_is_persisted_and_aggregated(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    pipeline_app.send_task(names.COLLECT_RUN)
    latest = poll(lambda: aggregated_collections(store), deadline_s=30, what="an aggregated collection")

    assert latest.agent_count == 3 + len(names.QUEUES)  # host, worker, broker, the pipeline's queues
    assert latest.unreachable == ()
    worker_name = running_worker.hostname
    for metric in ("cpu_percent", "rss_bytes", "threads", "open_fds", "concurrency", "active"):
        rollups = store.rollups(worker_name, metric, 300)
        assert len(rollups) == 1, metric
        assert rollups[0].count == 1
    [active] = store.rollups(worker_name, "active", 300)
    assert active.last == 0  # it was running the collection itself: the observer's probe is not load
    [rss] = store.rollups(worker_name, "rss_bytes", 300)
    assert 10e6 < rss.last < 4e9  # a real Python process
    host_metrics = {"cpu_percent", "memory_available_bytes", "load1", "disk_free_bytes"}
    host_id = next(r.agent_id for r in _agents(store) if r.agent_id.startswith("host:"))
    assert all(store.rollups(host_id, m, 3600) for m in host_metrics)
    broker = next(a for a in _agents(store) if a.agent_id.startswith("broker:redis:"))
    [clients] = store.rollups(broker.agent_id, "connected_clients", 300)
    assert clients.last >= 2  # this worker's connections at least
    [consumers] = store.rollups("queue:vsm.collect", "consumers", 300)
    assert consumers.last == 1  # the worker consumes it; Redis cannot say, the worker's reply does
    assert store.rollups("queue:vsm.s5.policy", "messages", 300)[0].last == 0
    window = RealtimeWindow(redis.Redis.from_url(pipeline_app.vsm_settings.require("redis_url")), 5.0)
    [point] = window.read(worker_name, "rss_bytes", latest.started_at)
    assert point.value == rss.last  # a float64 slot holds the reading as it was stored


def test_the_second_cycle_expects_the_worker_seen_in_the_first(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    pipeline_app.send_task(names.COLLECT_RUN)
    first = poll(lambda: aggregated_collections(store), deadline_s=30, what="the first collection")
    # discovery (ask everyone, wait the whole timeout) runs once per wall-clock slot: take this slot's claim
    # and the next's, so a second cycle that happens to cross a slot boundary is not a discovery cycle
    staging = RedisStaging.from_url(pipeline_app.vsm_settings.require("redis_url"))
    now = datetime.now(UTC)
    for later_s in (0.0, DISCOVERY_EVERY_S):
        staging.claim_discovery(DISCOVERY_EVERY_S, now + timedelta(seconds=later_s))
    pipeline_app.send_task(names.COLLECT_RUN)
    second = poll(lambda: aggregated_collections(store, first), deadline_s=30, what="the second collection")
    assert second.started_at > first.started_at
    assert second.agent_count == 3 + len(names.QUEUES)
    assert second.unreachable == ()
    # the second cycle knew whom to expect, so it ended on the reply instead of the full timeout
    assert second.duration_ms < 1000 * pipeline_app.vsm_settings.collect_timeout_s


def test_a_pickled_message_is_refused_and_the_worker_keeps_serving(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    body = pickle.dumps(((), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}))
    with Connection(pipeline_app.conf.broker_url) as conn:
        Producer(conn).publish(
            body,
            exchange="",  # the default exchange delivers straight to the queue named by the key
            routing_key="vsm.collect",
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"task": names.COLLECT_RUN, "id": "pickled-1", "lang": "py", "argsrepr": "()"},
            declare=[],
        )
    poll(
        lambda: any(
            "Refusing to deserialize untrusted content of type pickle" in r.getMessage() for r in caplog.records
        ),
        deadline_s=15,
        what="the worker to log the refused pickle message",
    )
    assert store.latest_collection() is None  # the refused message ran nothing

    client = redis.Redis.from_url(pipeline_app.vsm_settings.require("redis_url"))
    assert client.llen("vsm.collect") == 0  # not left to be redelivered forever
    client.close()

    pipeline_app.send_task(names.COLLECT_RUN)  # and a JSON message is still served
    latest = poll(lambda: aggregated_collections(store), deadline_s=30, what="a collection after the pickle")
    assert latest.agent_count == 3 + len(names.QUEUES)


def test_persist_and_aggregate_run_twice_store_once(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    pipeline_app.send_task(names.COLLECT_RUN)
    latest = poll(lambda: aggregated_collections(store), deadline_s=30, what="an aggregated collection")
    [before] = store.rollups(running_worker.hostname, "rss_bytes", 300)

    cid = str(latest.id)
    persist = pipeline_app.tasks[names.PERSIST_COLLECTION]
    aggregate = pipeline_app.tasks[names.AGGREGATE_COLLECTION]
    assert persist.apply(args=(cid,)).get() == {"collection_id": cid, "stored": False}
    assert aggregate.apply(args=(cid,)).get() == {"collection_id": cid, "merged": False}
    again = aggregate.apply(args=(cid, latest.started_at.isoformat())).get()  # as the chain sends it
    assert (again["collection_id"], again["merged"]) == (cid, False)
    [after] = store.rollups(running_worker.hostname, "rss_bytes", 300)
    assert after == before
    assert store.get_collection(latest.id).sample_count == latest.sample_count


def _agents(store: PostgresStore) -> list[Any]:
    import sqlalchemy as sa

    from vsmmon.store._tables import agents

    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(agents.c.id.label("agent_id"), agents.c.kind)))


def test_a_collection_that_expired_before_the_database_took_it_is_counted_as_lost(
    pipeline_app: PipelineApp, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    import uuid

    gone = str(uuid.uuid4())  # never staged, never stored: as if the buffer horizon passed
    result = pipeline_app.tasks[names.PERSIST_COLLECTION].apply(args=(gone,)).get()
    assert result == {"collection_id": gone, "stored": False, "lost": True}
    client = redis.Redis.from_url(pipeline_app.vsm_settings.require("redis_url"))
    assert int(client.get("vsm:lost_collections_total") or 0) == 1
    client.close()
    assert any("expired from the staging buffer" in r.getMessage() for r in caplog.records)
    # the chain goes on to aggregate it, with the cycle's start: nothing to count, and no error
    aggregated = pipeline_app.tasks[names.AGGREGATE_COLLECTION].apply(args=(gone, "2026-12-06T12:00:00+00:00")).get()
    assert aggregated == {"collection_id": gone, "merged": False}


def test_discovery_is_its_own_task_and_the_worker_it_finds_is_asked_by_name_from_the_next_cycle(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    staging = RedisStaging.from_url(pipeline_app.vsm_settings.require("redis_url"))
    pipeline_app.send_task(names.COLLECT_RUN)
    first = poll(lambda: aggregated_collections(store), deadline_s=30, what="the first collection")
    staging.client.delete(names.WORKERS_KEY)  # forget the worker: only a discovery finds it again
    staging.mark_seen(["ghost@nowhere"], datetime.now(UTC))  # expected, and never answers
    for key in staging.client.keys(names.DISCOVERY_KEY.format(slot="*")):
        staging.client.delete(key)  # this cycle sends the discovery
    pipeline_app.send_task(names.COLLECT_RUN)
    second = poll(lambda: aggregated_collections(store, first), deadline_s=30, what="the second collection")
    assert second.unreachable == ("ghost@nowhere",)
    assert second.agent_count < first.agent_count  # the forgotten worker was not asked in it
    since = datetime.now(UTC) - timedelta(seconds=10)
    poll(lambda: running_worker.hostname in staging.workers_seen_since(since), deadline_s=20,
         what="the discovery task to find the worker")  # fmt: skip
    now = datetime.now(UTC)
    for later_s in (0.0, DISCOVERY_EVERY_S):  # the third is no discovery cycle: it asks whom it knows
        staging.claim_discovery(DISCOVERY_EVERY_S, now + timedelta(seconds=later_s))
    pipeline_app.send_task(names.COLLECT_RUN)
    third = poll(lambda: aggregated_collections(store, second), deadline_s=30, what="the third collection")
    assert third.agent_count == first.agent_count  # asked by name again, host report and all


def test_a_redis_fault_writing_the_window_is_retried_and_the_collection_stored_once(
    pipeline_app: PipelineApp, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from vsmmon.models import AgentKind, AgentReport, Collection

    ctx = pipeline_app.context()
    report = AgentReport("api-1", AgentKind.API, "h", {"requests_total": 5.0})
    collection = Collection(uuid.uuid4(), datetime.now(UTC), 1.0, (report,))
    ctx.staging.put(collection)
    write, calls = ctx.realtime.write, []

    def failing_once(c: Collection) -> int:
        calls.append(c.id)
        if len(calls) == 1:
            raise redis.ConnectionError("connection refused")
        return write(c)

    monkeypatch.setattr(ctx.realtime, "write", failing_once)
    pipeline_app.tasks[names.PERSIST_COLLECTION].apply(args=(str(collection.id),))  # eager: its retry runs within
    assert calls == [collection.id, collection.id]  # retried, not failed for good
    assert store.get_collection(collection.id).sample_count == 1  # stored once
    assert [p.value for p in ctx.realtime.read("api-1", "requests_total", collection.started_at)] == [5.0]
    assert [a.agent_id for a in store.agents()] == ["api-1"]  # the registry too, on the retry


def test_a_window_close_is_sent_once_however_many_collections_find_it_due(
    pipeline_app: PipelineApp, store: PostgresStore
) -> None:
    """Until the close has run, every collection aggregated in the new window finds the same cutoff due: at 10,000
    agents each shard of each cycle queued another close behind the first (18 waiting)."""
    import uuid

    from vsmmon.models import AgentKind, AgentReport, Collection

    ctx = pipeline_app.context()
    client = redis.Redis.from_url(pipeline_app.vsm_settings.require("redis_url"))
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a window's first seconds
    results = []
    for k in range(3):  # no worker runs the close meanwhile, as when it is slow
        report = AgentReport("api-1", AgentKind.API, "h", {"requests_total": float(k)})
        collection = Collection(uuid.uuid4(), start + timedelta(seconds=5 * k), 1.0, (report,))
        ctx.staging.put(collection)
        pipeline_app.tasks[names.PERSIST_COLLECTION].apply(args=(str(collection.id),)).get()
        aggregate = pipeline_app.tasks[names.AGGREGATE_COLLECTION]
        results.append(aggregate.apply(args=(str(collection.id), collection.started_at.isoformat())).get())
    assert [r["close_due"] for r in results] == [start.isoformat()] * 3  # due for each of them
    assert [r["close_sent"] for r in results] == [True, False, False]  # sent by the first
    assert client.llen(names.ANALYSIS_QUEUE) == 1  # one close waiting, not three
    client.close()
