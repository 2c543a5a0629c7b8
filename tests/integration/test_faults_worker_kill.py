"""A worker killed with SIGKILL in the middle of a persist task: the task is redelivered and its data
stored exactly once.

The persist task is caught mid-transaction without any test hook in the product: the test holds a lock
on `metric_samples`, so the worker's transaction has inserted the collection row and waits in its COPY
of the samples when the kill comes. The worker runs as `vsmmon worker` (prefork), as in production,
with a short Redis visibility timeout (`VSMMON_VISIBILITY_TIMEOUT_S`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import sqlalchemy as sa

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.errors import NotFound
from vsmmon.store._tables import metric_samples
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.app import create_app

VISIBILITY_TIMEOUT_S = 4


@dataclass
class PipelineProcess:
    """A `vsmmon worker` or `vsmmon beat` subprocess in its own session."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, nothing handed back to the broker."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def pipeline_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update(
        VSMMON_BROKER_URL=settings.require("broker_url"), VSMMON_DATABASE_URL=settings.sqlalchemy_url(),
        VSMMON_DATA_DIR=str(settings.data_dir), VSMMON_COLLECT_TIMEOUT_S="1", VSMMON_LOG_LEVEL="INFO",
        VSMMON_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
    )  # fmt: skip
    env.update(extra)
    return env


@contextmanager
def pipeline_process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[PipelineProcess]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen([sys.executable, "-m", "vsmmon", *argv], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    child = PipelineProcess(popen, log)
    try:
        yield child
    finally:
        child.stop()


@dataclass
class BlockedCopy:
    backend_pid: int
    client_port: int


def blocked_persist(conn: psycopg.Connection) -> BlockedCopy | None:
    """The worker's backend waiting for the test's lock in its COPY of the samples, if any."""
    row = conn.execute(
        "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE 'COPY%'"  # the server is shared with other databases
    ).fetchone()
    return BlockedCopy(row[0], row[1]) if row else None


def staged_collection_id(client: redis.Redis) -> uuid.UUID:
    [key] = client.keys("vsm:staged:*")
    return uuid.UUID(key.decode().rsplit(":", 1)[1])


def unacked_tasks(client: redis.Redis) -> list[str]:
    """Task names of the messages kombu's Redis transport holds as delivered and not acknowledged."""
    found = []
    for raw in client.hvals("unacked"):
        message, _exchange, _routing_key = json.loads(raw)
        found.append(message["headers"]["task"])
    return found


def stored_once(store: PostgresStore, collection_id: uuid.UUID) -> bool:
    try:
        return store.get_collection(collection_id).aggregated_at is not None
    except NotFound:
        return False


def assert_stored_exactly_once(store: PostgresStore, collection_id: uuid.UUID, worker: str) -> None:
    summary = store.get_collection(collection_id)
    with store.engine.connect() as conn:
        samples = conn.execute(
            sa.select(sa.func.count()).select_from(metric_samples).where(metric_samples.c.ts == summary.started_at)
        ).scalar_one()
    assert summary.sample_count > 0
    assert samples == summary.sample_count  # no sample written twice
    # the only collection there is was merged into the rollups once: each counts one sample
    [rollup] = store.rollups(f"{worker}@{socket.gethostname()}", "rss_bytes", 300)
    assert rollup.count == 1, rollup


@pytest.fixture
def db_lock(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection that can lock `metric_samples` and watch the server's activity."""
    url = settings.sqlalchemy_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as watcher:
        yield watcher


@contextmanager
def samples_locked(settings: Settings) -> Iterator[None]:
    url = settings.sqlalchemy_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE metric_samples IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_persist_has_its_task_redelivered_and_stored_once(
    settings: Settings, clean_services: None, store: PostgresStore, db_lock: psycopg.Connection, tmp_path: Path
) -> None:
    app = create_app(settings)
    client = redis.Redis.from_url(settings.require("redis_url"))
    env = pipeline_env(settings)
    worker_argv = ["worker", "--role", "all", "--concurrency", "2"]
    with samples_locked(settings), pipeline_process([*worker_argv, "--hostname", "victim@%h"], env,
                                                    tmp_path / "victim.log") as victim:  # fmt: skip
        app.send_task(names.COLLECT_RUN)
        poll(lambda: blocked_persist(db_lock), deadline_s=60, what=f"persist waiting in its COPY; {victim.tail()}")
        collection_id = staged_collection_id(client)
        victim.kill()
        assert unacked_tasks(client) == [names.PERSIST_COLLECTION]  # taken, never acknowledged
    # the lock is released: the dead worker's transaction (collection row inserted, samples not) aborts
    poll(lambda: blocked_persist(db_lock) is None, deadline_s=30, what="the dead worker's backend to end")
    with pytest.raises(NotFound):
        store.get_collection(collection_id)

    with pipeline_process([*worker_argv, "--hostname", "heir@%h"], env, tmp_path / "heir.log") as heir:
        poll(lambda: stored_once(store, collection_id), deadline_s=60,
             what=f"the redelivered persist and its aggregate; {heir.tail()}")  # fmt: skip
        poll(lambda: unacked_tasks(client) == [] or None, deadline_s=15, what="every task acknowledged")
    assert_stored_exactly_once(store, collection_id, "victim")
    client.close()


@pytest.mark.timeout(120)
def test_a_pool_process_killed_mid_persist_has_its_task_requeued_at_once_and_stored_once(
    settings: Settings, clean_services: None, store: PostgresStore, db_lock: psycopg.Connection, tmp_path: Path
) -> None:
    """Only the prefork child dies: the worker itself requeues the task (task_reject_on_worker_lost)."""
    app = create_app(settings)
    client = redis.Redis.from_url(settings.require("redis_url"))
    env = pipeline_env(settings, VSMMON_VISIBILITY_TIMEOUT_S="600")  # redelivery must not wait for the sweep
    argv = ["worker", "--role", "all", "--concurrency", "2", "--hostname", "survivor@%h"]
    with pipeline_process(argv, env, tmp_path / "survivor.log") as worker:
        with samples_locked(settings):
            app.send_task(names.COLLECT_RUN)
            blocked = poll(lambda: blocked_persist(db_lock), deadline_s=60, what=f"a blocked COPY; {worker.tail()}")
            collection_id = staged_collection_id(client)
            pool = psutil.Process(worker.process.pid).children(recursive=True)
            [child] = [p for p in pool if any(c.laddr.port == blocked.client_port for c in p.net_connections("tcp"))]
            child.kill()
            child.wait(timeout=10)
        poll(lambda: stored_once(store, collection_id), deadline_s=60,
             what=f"the requeued persist and its aggregate; {worker.tail()}")  # fmt: skip
        assert "WorkerLostError" in worker.tail()
        assert worker.process.poll() is None  # the worker itself lived on
    assert_stored_exactly_once(store, collection_id, "survivor")
    client.close()


def test_the_visibility_timeout_must_be_below_the_staging_horizon() -> None:
    from vsmmon.config import load_settings
    from vsmmon.errors import ConfigError
    from vsmmon.workers.app import transport_options

    with pytest.raises(ConfigError, match="VSMMON_VISIBILITY_TIMEOUT_S: must be below BUFFER_HORIZON_S"):
        load_settings({"VSMMON_VISIBILITY_TIMEOUT_S": "900"})
    production = load_settings({"VSMMON_BROKER_URL": "redis://127.0.0.1:6379/0"})
    assert transport_options(production) == {
        "visibility_timeout": 300, "unacked_restore_interval": 10, "unacked_restore_throttle": 1,
    }  # fmt: skip
    assert transport_options(load_settings({"VSMMON_BROKER_URL": "amqp://h//", "VSMMON_REDIS_URL": "redis://h"})) == {}
