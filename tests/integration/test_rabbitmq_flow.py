"""The main flow with RabbitMQ as the broker (Redis still holds staging and pub/sub)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

AMQP_URL = os.environ.get("VSMMON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_pipeline(settings: Settings, clean_services: None) -> Iterator[PipelineApp]:
    if not rabbit_up() and not os.environ.get("CI"):  # in CI (.ci/run starts it) they run, or fail
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)")
    amqp = settings.model_copy(update={"broker_url": AMQP_URL, "redis_url": settings.require("redis_url")})
    app = create_app(amqp)
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                      queues=list(names.QUEUES), shutdown_timeout=20):  # fmt: skip
        yield app


def test_collect_persist_aggregate_on_rabbitmq(amqp_pipeline: PipelineApp, store: PostgresStore) -> None:
    amqp_pipeline.send_task(names.COLLECT_RUN)

    def aggregated() -> Any:
        latest = store.latest_collection()
        return latest if latest and latest.aggregated_at else None

    latest = poll(aggregated, deadline_s=30, what="a collection over RabbitMQ")
    agents = {a.agent_id: a for a in store.agents()}
    worker = next(a for a in agents.values() if a.kind == "celery_worker")
    assert worker.metrics["rss_bytes"] > 1e6
    assert sorted(worker.queues) == sorted(names.QUEUES)
    collect_queue = agents["queue:vsm.collect"]
    assert collect_queue.metrics["consumers"] >= 1  # RabbitMQ counts consumers itself
    assert "broker:amqp:127.0.0.1:5672/" in agents
    assert latest.unreachable == ()
