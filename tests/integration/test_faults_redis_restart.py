"""Redis (broker and staging buffer) restarted in the middle of a cycle: the pipeline resumes by itself
within 2 cycles.

The pipeline runs as in production — `vsmmon worker --role all` and `vsmmon beat` subprocesses — against
a redis-server of this test's own on a free port (the shared one is never touched), which is stopped
while a pipeline task is being worked on (SIGTERM: it writes its append-only file, as a restart does)
and started again on the same port. Nothing restarts the worker or beat.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import poll
from tests.integration.test_faults_worker_kill import pipeline_env, pipeline_process, unacked_tasks
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.local.embedded import EmbeddedRedis, free_port
from vsmmon.models import CollectionSummary
from vsmmon.store.postgres import PostgresStore

INTERVAL_S = 5.0  # the default collection interval
DOWN_S = 2.0
SENT = re.compile(rb"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Scheduler: Sending due task "
                  rb".*\(" + re.escape(names.COLLECT_RUN.encode()) + rb"\)", re.MULTILINE)  # fmt: skip


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port())
    server.start()
    yield server
    server.child.stop(timeout_s=5)
    if server.dir.parent != (tmp_path / "own-redis").resolve():  # as root: under /var/lib/vsmmon
        shutil.rmtree(server.dir.parent, ignore_errors=True)


def collections_since(store: PostgresStore, since: datetime) -> list[CollectionSummary]:
    import sqlalchemy as sa

    from vsmmon.store._tables import collections

    query = sa.select(collections.c.id).where(collections.c.started_at > since).order_by(collections.c.started_at)
    with store.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    return [store.get_collection(i) for i in ids]


def aggregated_since(store: PostgresStore, since: datetime) -> CollectionSummary | None:
    return next((c for c in collections_since(store, since) if c.aggregated_at is not None), None)


def collect_sends(beat_log: Path) -> list[datetime]:
    """When beat sent each collect run, from its log (local time, as Celery writes it)."""
    return [datetime.strptime(m.decode(), "%Y-%m-%d %H:%M:%S,%f") for m in SENT.findall(beat_log.read_bytes())]


@pytest.mark.timeout(150)
def test_the_pipeline_resumes_within_two_cycles_of_a_redis_restart_mid_cycle(
    settings: Settings, clean_services: None, store: PostgresStore, own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    on_own = settings.model_copy(update={"broker_url": own_redis.url, "redis_url": None})
    env = pipeline_env(on_own, VSMMON_COLLECT_INTERVAL_S=str(INTERVAL_S), VSMMON_DATA_DIR=str(tmp_path / "data"))
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    worker_argv = ["worker", "--role", "all", "--concurrency", "2", "--hostname", "restart@%h"]
    with (
        pipeline_process(worker_argv, env, tmp_path / "worker.log") as worker,
        pipeline_process(["beat"], env, tmp_path / "beat.log") as beat,
    ):
        started = datetime.now().astimezone()
        poll(lambda: len([c for c in collections_since(store, started) if c.aggregated_at]) >= 2, deadline_s=60,
             what=f"two cycles before the restart; {worker.tail()}")  # fmt: skip

        def mid_cycle() -> list[str]:
            return [t for t in unacked_tasks(client) if t in {names.COLLECT_RUN, names.PERSIST_COLLECTION}]

        caught = poll(mid_cycle, deadline_s=30, every_s=0.02, what="a cycle's task being worked on")
        own_redis.child.stop(timeout_s=10)
        time.sleep(DOWN_S)  # down for most of a cycle
        own_redis.start()
        back_local, back = datetime.now(), datetime.now().astimezone()

        resumed = poll(lambda: aggregated_since(store, back), deadline_s=60,
                       what=f"a cycle stored after the restart; {worker.tail()} {beat.tail()}")  # fmt: skip
        sends_before = [t for t in collect_sends(beat.log) if back_local < t <= resumed.started_at.astimezone()
                        .replace(tzinfo=None) + timedelta(seconds=0.5)]  # fmt: skip
        assert 1 <= len(sends_before) <= 2, (caught, sends_before, resumed)
        # and the cycles after it are whole again: collected, stored, aggregated, one per interval
        poll(lambda: len([c for c in collections_since(store, back) if c.aggregated_at]) >= 3, deadline_s=30,
             what="three cycles after the restart")  # fmt: skip
        assert worker.process.poll() is None
        assert beat.process.poll() is None  # neither process needed a restart
    client.close()
