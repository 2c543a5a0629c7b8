"""PostgreSQL unreachable while collection goes on: nothing collected in the meantime is lost."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from celery.contrib.testing.worker import start_worker

from tests.integration.conftest import poll
from tests.integration.proxy import TcpProxy
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.errors import NotFound
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

OUTAGE_S = float(os.environ.get("VSMMON_TEST_OUTAGE_S", "60"))
INTERVAL_S = 2.0


@pytest.fixture
def proxy(settings: Settings) -> Iterator[TcpProxy]:
    target = urlsplit(settings.sqlalchemy_url())
    p = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield p
    p.stop()


@pytest.fixture
def pipeline_behind_proxy(settings: Settings, proxy: TcpProxy, clean_services: None) -> Iterator[PipelineApp]:
    target = urlsplit(settings.sqlalchemy_url())
    via_proxy = settings.sqlalchemy_url().replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    app = create_app(settings.model_copy(update={"database_url": via_proxy, "collect_timeout_s": 0.5}))
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="ERROR",
                      queues=list(names.QUEUES), shutdown_timeout=30):  # fmt: skip
        yield app


def stored(store: PostgresStore, collection_id: str) -> bool:
    try:
        return store.get_collection(uuid.UUID(collection_id)).aggregated_at is not None
    except NotFound:
        return False


def test_every_collection_made_while_the_database_was_down_is_stored_when_it_returns(
    pipeline_behind_proxy: PipelineApp, proxy: TcpProxy, store: PostgresStore
) -> None:
    app = pipeline_behind_proxy
    first = app.send_task(names.COLLECT_RUN).get(timeout=20)["collection_id"]
    poll(lambda: stored(store, first), deadline_s=20, what="a collection before the outage")

    proxy.cut()
    made: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < OUTAGE_S:  # beat keeps collecting during the outage
        made.append(app.send_task(names.COLLECT_RUN).get(timeout=20)["collection_id"])
        next_at = started + len(made) * INTERVAL_S
        while time.monotonic() < next_at:
            time.sleep(0.05)
    assert not any(stored(store, cid) for cid in made)  # none could reach the database
    proxy.restore()

    poll(lambda: all(stored(store, cid) for cid in made), deadline_s=60, what="every collection of the outage")
    assert len(made) >= OUTAGE_S / INTERVAL_S - 1
    for cid in made:
        summary = store.get_collection(uuid.UUID(cid))
        assert summary.sample_count > 0
