"""The broker queue probes against a real Redis and a real RabbitMQ, fed by kombu's own producers."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from celery import Celery
from kombu import Connection, Exchange, Queue

import vsmmon.agent
from tests.integration.proxy import TcpProxy
from vsmmon.collect.broker import AmqpQueueProbe, QueueStats, RedisQueueProbe, queue_probe

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("VSMMON_TEST_QUEUE_REDIS_URL", "redis://127.0.0.1:6379/13")
AMQP_URL = os.environ.get("VSMMON_TEST_QUEUE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
NOW = 2_000_000_000.0


def by_name(stats: Sequence[QueueStats]) -> dict[str, QueueStats]:
    return {s.name: s for s in stats}


def kombu_queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments={"x-max-priority": 10})


def publish(
    url: str,
    name: str,
    messages: Sequence[tuple[int | None, float | None]],
    transport_options: dict[str, Any] | None = None,
) -> None:
    """Publish one message per (priority, vsm_sent_at header) with kombu, as Celery would."""
    queue = kombu_queue(name)
    with Connection(url, transport_options=transport_options or {}) as conn, conn.Producer() as producer:
        for n, (priority, sent_at) in enumerate(messages):
            producer.publish(
                {"n": n},
                exchange=queue.exchange,
                routing_key=name,
                declare=[queue],
                priority=priority,
                headers={} if sent_at is None else {"vsm_sent_at": sent_at},
                serializer="json",
            )


def kombu_size(url: str, name: str, transport_options: dict[str, Any] | None = None) -> int:
    """kombu's own count of a Redis queue's ready messages, the reference for the probe.

    A plain declare, not a passive one: kombu's passive check uses EXISTS, which its key prefixing
    leaves out, so with a `global_keyprefix` it calls every queue missing.
    """
    with Connection(url, transport_options=transport_options or {}) as conn:
        count: int = conn.default_channel.queue_declare(queue=name).message_count
        return count


# --- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_probe(redis_url: str) -> Iterator[RedisQueueProbe]:
    probe = RedisQueueProbe.from_url(redis_url)
    yield probe
    probe.close()


PRIORITIES = [None, 0, 1, 3, 5, 6, 9, 10]
"""kombu files these under steps 0, 0, 0, 3, 3, 6, 9, 9 of its default [0, 3, 6, 9]."""


def test_redis_counts_every_priority_sub_queue(redis_url: str, redis_probe: RedisQueueProbe) -> None:
    publish(redis_url, "vsm.t.pri", [(p, None) for p in PRIORITIES])
    publish(redis_url, "vsm.t.plain", [(None, None)] * 2)
    stats, errors = redis_probe.read(["vsm.t.pri", "vsm.t.plain"], NOW)
    assert errors == {}
    got = by_name(stats)
    assert got["vsm.t.pri"] == QueueStats("vsm.t.pri", 8, None, None, {0: 3, 3: 2, 6: 1, 9: 2})
    assert got["vsm.t.pri"].messages == kombu_size(redis_url, "vsm.t.pri")
    assert got["vsm.t.plain"] == QueueStats("vsm.t.plain", 2, None, None, {0: 2})


def test_redis_honours_global_keyprefix_on_both_sides(redis_url: str) -> None:
    options = {"global_keyprefix": "tenant-a:"}
    publish(redis_url, "vsm.t.prefixed", [(p, None) for p in PRIORITIES], options)
    keys = redis.Redis.from_url(redis_url).keys("vsm.t.prefixed*")
    assert keys == [], "kombu should have written every list under the prefix"
    prefixed = queue_probe(redis_url, options)
    unprefixed = RedisQueueProbe(redis.Redis.from_url(redis_url))
    try:
        stats, errors = prefixed.read(["vsm.t.prefixed"], NOW)
        bare, _ = unprefixed.read(["vsm.t.prefixed"], NOW)
    finally:
        prefixed.close()
        unprefixed.close()
    assert errors == {}
    assert stats[0].messages == 8 == kombu_size(redis_url, "vsm.t.prefixed", options)
    assert stats[0].by_priority == {0: 3, 3: 2, 6: 1, 9: 2}
    assert bare[0].messages == 0


def test_redis_honours_celerys_recommended_priority_steps_and_sep(redis_url: str) -> None:
    options = {"priority_steps": list(range(10)), "sep": ":", "queue_order_strategy": "priority"}
    publish(redis_url, "vsm.t.steps", [(p, None) for p in PRIORITIES], options)
    probe = queue_probe(redis_url, options)
    try:
        stats, errors = probe.read(["vsm.t.steps"], NOW)
    finally:
        probe.close()
    assert errors == {}
    assert stats[0].by_priority == {0: 2, 1: 1, 3: 1, 5: 1, 6: 1, 9: 2}
    assert stats[0].messages == 8 == kombu_size(redis_url, "vsm.t.steps", options)


def test_redis_counts_a_queue_nobody_consumes_and_an_unknown_one_as_empty(
    redis_url: str, redis_probe: RedisQueueProbe
) -> None:
    publish(redis_url, "vsm.t.orphan", [(None, None), (9, None), (None, None)])
    stats, errors = redis_probe.read(["vsm.t.orphan", "vsm.t.never-used"], NOW)
    assert errors == {}
    got = by_name(stats)
    assert got["vsm.t.orphan"].messages == 3
    assert got["vsm.t.orphan"].by_priority == {0: 2, 9: 1}
    assert got["vsm.t.never-used"] == QueueStats("vsm.t.never-used", 0, None, None, {})


def test_redis_oldest_age_is_the_oldest_sent_at_across_sub_queues(redis_url: str, redis_probe: RedisQueueProbe) -> None:
    publish(redis_url, "vsm.t.age", [(None, NOW - 1000), (9, NOW - 1100), (None, NOW - 800), (9, NOW - 700)])
    publish(redis_url, "vsm.t.noheader", [(None, None), (6, None)])
    publish(redis_url, "vsm.t.future", [(None, NOW + 50)])
    stats, errors = redis_probe.read(["vsm.t.age", "vsm.t.noheader", "vsm.t.future"], NOW)
    assert errors == {}
    got = by_name(stats)
    assert got["vsm.t.age"].oldest_age_s == pytest.approx(1100)
    assert got["vsm.t.noheader"].oldest_age_s is None
    assert got["vsm.t.future"].oldest_age_s == 0.0, "a clock ahead of ours must not give a negative age"


def test_redis_oldest_message_is_the_one_kombu_delivers_next(redis_url: str, redis_probe: RedisQueueProbe) -> None:
    publish(redis_url, "vsm.t.fifo", [(None, NOW - 300), (None, NOW - 200), (None, NOW - 100)])
    assert redis_probe.read(["vsm.t.fifo"], NOW)[0][0].oldest_age_s == pytest.approx(300)
    with Connection(redis_url) as conn:
        message = kombu_queue("vsm.t.fifo")(conn.default_channel).get(no_ack=True)
    assert message is not None
    assert message.headers["vsm_sent_at"] == NOW - 300
    stats, _ = redis_probe.read(["vsm.t.fifo"], NOW)
    assert stats[0].messages == 2
    assert stats[0].oldest_age_s == pytest.approx(200)


def test_redis_ages_messages_a_celery_app_with_the_plugin_publishes(
    redis_url: str, redis_probe: RedisQueueProbe
) -> None:
    app = Celery("vsm-probe-test", broker=redis_url, set_as_current=False)
    vsmmon.agent.install(app)
    before = time.time()
    try:
        app.send_task("vsm.t.any", queue="vsm.t.celery", priority=9)
        app.send_task("vsm.t.any", queue="vsm.t.celery")
    finally:
        app.close()
    stats, errors = redis_probe.read(["vsm.t.celery"], before + 60)
    assert errors == {}
    assert (stats[0].messages, stats[0].by_priority) == (2, {0: 1, 9: 1})
    assert stats[0].oldest_age_s is not None
    assert 55 < stats[0].oldest_age_s <= 60


def test_redis_one_bad_key_is_an_error_for_its_queue_only(redis_url: str, redis_probe: RedisQueueProbe) -> None:
    redis.Redis.from_url(redis_url).set("vsm.t.bad\x06\x163", "not a list")
    publish(redis_url, "vsm.t.good", [(None, None)])
    stats, errors = redis_probe.read(["vsm.t.bad", "vsm.t.good"], NOW)
    assert [s.name for s in stats] == ["vsm.t.good"]
    assert set(errors) == {"vsm.t.bad"}
    assert "priority 3" in errors["vsm.t.bad"]
    assert "WRONGTYPE" in errors["vsm.t.bad"]


def test_a_down_redis_gives_an_error_per_queue_quickly_and_hides_the_password() -> None:
    probe = RedisQueueProbe.from_url("redis://:hunter22@127.0.0.1:1/0")
    started = time.monotonic()
    try:
        stats, errors = probe.read(["vsm.a", "vsm.b"], NOW)
    finally:
        probe.close()
    assert time.monotonic() - started < 3
    assert stats == []
    assert set(errors) == {"vsm.a", "vsm.b"}
    assert all(e.startswith("broker unreachable: ") for e in errors.values()), errors
    assert "hunter22" not in repr(errors)


# --- RabbitMQ ------------------------------------------------------------------------------------


def amqp_reachable() -> bool:
    parts = urlsplit(AMQP_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


needs_rabbitmq = pytest.mark.skipif(  # in CI (.ci/run starts RabbitMQ) they run, or fail
    not amqp_reachable() and not os.environ.get("CI"),
    reason=f"RabbitMQ does not accept connections at {urlsplit(AMQP_URL).netloc}",
)


@pytest.fixture
def amqp_queue() -> Iterator[str]:
    """A uniquely named queue on RabbitMQ holding 3 messages, deleted afterwards."""
    name = f"vsm.t.{uuid.uuid4().hex}"
    publish(AMQP_URL, name, [(None, None)] * 3, {"confirm_publish": True})
    try:
        yield name
    finally:
        with Connection(AMQP_URL) as conn:
            conn.default_channel.queue_delete(name)


@pytest.fixture
def amqp_probe() -> Iterator[AmqpQueueProbe]:
    probe = AmqpQueueProbe.from_url(AMQP_URL)
    yield probe
    probe.close()


@needs_rabbitmq
def test_amqp_counts_ready_messages_and_consumers(amqp_queue: str, amqp_probe: AmqpQueueProbe) -> None:
    stats, errors = amqp_probe.read([amqp_queue], NOW)
    assert errors == {}
    assert stats == [QueueStats(amqp_queue, 3, 0, None, {})]


@needs_rabbitmq
def test_amqp_sees_a_consumer_and_counts_only_ready_messages(amqp_queue: str, amqp_probe: AmqpQueueProbe) -> None:
    received: list[Any] = []
    with (
        Connection(AMQP_URL) as conn,
        conn.Consumer(kombu_queue(amqp_queue), callbacks=[lambda _, m: received.append(m)], prefetch_count=1),
    ):
        conn.drain_events(timeout=2)  # one message delivered, unacked: no longer ready
        stats, errors = amqp_probe.read([amqp_queue], NOW)
    assert len(received) == 1
    assert errors == {}
    assert (stats[0].messages, stats[0].consumers) == (2, 1)


@needs_rabbitmq
def test_amqp_a_queue_not_declared_is_an_error_and_the_next_queue_is_still_read(
    amqp_queue: str, amqp_probe: AmqpQueueProbe
) -> None:
    missing = f"vsm.t.missing.{uuid.uuid4().hex}"
    stats, errors = amqp_probe.read([missing, amqp_queue, missing + "2"], NOW)
    assert errors == {missing: "not declared", missing + "2": "not declared"}
    assert [(s.name, s.messages) for s in stats] == [(amqp_queue, 3)]
    again, _ = amqp_probe.read([amqp_queue], NOW)  # the kept connection still serves
    assert again[0].messages == 3


@needs_rabbitmq
def test_amqp_a_connection_dropped_between_reads_is_replaced_within_the_read(amqp_queue: str) -> None:
    parts = urlsplit(AMQP_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    probe = AmqpQueueProbe.from_url(AMQP_URL.replace(f":{parts.port}", f":{proxy.port}", 1))
    try:
        assert probe.read([amqp_queue], NOW) == ([QueueStats(amqp_queue, 3, 0, None, {})], {})
        proxy.break_connections()
        time.sleep(0.1)
        assert probe.read([amqp_queue], NOW) == ([QueueStats(amqp_queue, 3, 0, None, {})], {})
    finally:
        probe.close()
        proxy.stop()


def test_a_down_amqp_broker_gives_an_error_per_queue_quickly_and_hides_the_password() -> None:
    probe = queue_probe("amqp://guest:hunter22@127.0.0.1:1//")
    started = time.monotonic()
    try:
        stats, errors = probe.read(["vsm.a", "vsm.b"], NOW)
    finally:
        probe.close()
    assert time.monotonic() - started < 3
    assert stats == []
    assert set(errors) == {"vsm.a", "vsm.b"}
    assert all(e.startswith("broker unreachable: ") for e in errors.values()), errors
    assert "hunter22" not in repr(errors)


@needs_rabbitmq
def test_amqp_wrong_credentials_are_an_error_per_queue_without_the_password() -> None:
    parts = urlsplit(AMQP_URL)
    wrong = parts._replace(netloc=f"{parts.username}:not-hunter22@{parts.hostname}:{parts.port}").geturl()
    with closing(AmqpQueueProbe.from_url(wrong)) as probe:
        stats, errors = probe.read(["vsm.a", "vsm.b"], NOW)
    assert stats == []
    assert set(errors) == {"vsm.a", "vsm.b"}
    assert errors["vsm.a"].startswith("broker refused the connection: ")
    assert "ACCESS_REFUSED" in errors["vsm.a"]
    assert "not-hunter22" not in errors["vsm.a"]


def test_redis_server_figures_and_address(redis_probe: RedisQueueProbe) -> None:
    figures, errors = redis_probe.server()
    assert errors == {}
    assert figures["connected_clients"] >= 1
    assert figures["used_memory_bytes"] > 0
    assert {"ops_per_s", "rejected_connections_total", "uptime_s"} <= set(figures)
    assert redis_probe.address == "redis:127.0.0.1:6379/13"


def test_a_down_redis_has_no_server_figures_but_an_error_without_the_password() -> None:
    probe = RedisQueueProbe.from_url("redis://:sekrit@127.0.0.1:1/0")
    figures, errors = probe.server()
    probe.close()
    assert figures == {}
    assert errors["broker"].startswith("broker unreachable")
    assert "sekrit" not in errors["broker"]


def test_amqp_has_no_server_figures_and_says_nothing_wrong(amqp_probe: AmqpQueueProbe) -> None:
    assert amqp_probe.server() == ({}, {})
    assert amqp_probe.address == "amqp:127.0.0.1:5672/"
