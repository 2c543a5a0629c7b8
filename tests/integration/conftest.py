"""Real services for integration tests.

VSMMON_TEST_DATABASE_URL / VSMMON_TEST_BROKER_URL name existing PostgreSQL and Redis (CI sets
them: a throw-away database and Redis db index per run); without them the embedded servers are
started for the session, as `vsmmon up` would.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import redis
import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from vsmmon import names
from vsmmon.config import Settings, load_settings
from vsmmon.local.embedded import EmbeddedPostgres, EmbeddedRedis, server_home
from vsmmon.store import migrations
from vsmmon.store.postgres import PostgresStore, create_engine
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

T = TypeVar("T")
TABLES = (
    "agents", "agent_transitions", "collections", "metric_samples", "metric_rollups", "health_assessments",
    "trends", "forecasts", "recommendations", "alerts", "alert_events", "control_actions", "policy_decisions",
    "rollup_state",
)  # fmt: skip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def service_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    db_url = os.environ.get("VSMMON_TEST_DATABASE_URL")
    broker_url = os.environ.get("VSMMON_TEST_BROKER_URL")
    started = []
    data_dir = tmp_path_factory.mktemp("embedded")
    if not db_url:
        pg = EmbeddedPostgres(data_dir)
        started.append(pg.start())
        db_url = pg.admin_url  # the superuser's: fresh_database creates databases
    if not broker_url:
        rd = EmbeddedRedis(data_dir)
        started.append(rd.start())
        broker_url = rd.url
    try:
        yield {"database_url": db_url, "broker_url": broker_url}
    finally:
        for child in reversed(started):
            child.stop(timeout_s=5)
        if started and (home := server_home(data_dir)) != data_dir:  # as root: under /var/lib/vsmmon
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_database(service_urls: dict[str, str]) -> str:
    url = load_settings({}, database_url=service_urls["database_url"]).sqlalchemy_url()
    migrations.upgrade(url)
    return url


@pytest.fixture
def settings(service_urls: dict[str, str], migrated_database: str, tmp_path: Path) -> Settings:
    return load_settings(
        {},
        broker_url=service_urls["broker_url"],
        database_url=migrated_database,
        data_dir=tmp_path / "data",
        collect_timeout_s=1.0,
        http_allowed_hosts="testserver",  # the Host starlette's TestClient sends
    )


@pytest.fixture
def clean_services(settings: Settings) -> None:
    """Empty tables and the Redis db: each test starts from nothing and sees only its own writes."""
    engine = sa.create_engine(settings.sqlalchemy_url())
    with engine.begin() as conn:
        # a connection leaked by an earlier test must fail this one fast and clearly, not hang it
        conn.execute(sa.text("SET LOCAL lock_timeout = '15s'"))
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    engine.dispose()
    client = redis.Redis.from_url(settings.require("redis_url"))
    client.flushdb()
    client.close()


@pytest.fixture
def store(settings: Settings, clean_services: None) -> Iterator[PostgresStore]:
    engine = create_engine(settings.sqlalchemy_url(), pool_size=2)
    yield PostgresStore(engine)
    engine.dispose()


@pytest.fixture
def pipeline_app(settings: Settings, clean_services: None) -> PipelineApp:
    app = create_app(settings)
    app.loader.import_module("celery.contrib.testing.tasks")  # the ping task start_worker checks with
    return app


@pytest.fixture
def running_worker(pipeline_app: PipelineApp) -> Iterator[Any]:
    """A real worker consuming every pipeline queue, in this process (threads pool: the consumer
    stays free to answer broadcasts while a collect task waits for them)."""
    with start_worker(
        pipeline_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=20,
        queues=list(names.QUEUES),
    ) as worker:
        yield worker


def poll(check: Callable[[], T | None], *, deadline_s: float, what: str, every_s: float = 0.1) -> T:
    """Call `check` until it returns something truthy or the deadline passes."""
    import time

    end = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(every_s)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server of `server_url`; returns its SQLAlchemy URL."""
    name = f"vsmmon_t_{uuid.uuid4().hex[:10]}"
    base = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    server, name = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


API_TOKEN = "integration-token"
CYCLE_INTERVAL_S = 2.0  # short intervals for tests that play beat (see cycles.py)
CYCLE_TIMEOUT_S = 1.0


@pytest.fixture
def live_api(settings: Settings, clean_services: None) -> Iterator[str]:
    """The real HTTP service on a free port, in a thread of this process; yields its base URL."""

    import uvicorn
    from pydantic import SecretStr

    from vsmmon.local.embedded import free_port
    from vsmmon.web import create_app

    port = free_port()
    app = create_app(settings.model_copy(update={"api_token": SecretStr(API_TOKEN)}), report_self=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    with in_thread(server, port) as url:
        yield url


@contextmanager
def in_thread(server: Any, port: int) -> Iterator[str]:
    """Run a `uvicorn.Server` in a thread of this process until the block ends; yields its base URL."""
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    poll(lambda: server.started, deadline_s=15, what="the HTTP service to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"collect_interval_s": CYCLE_INTERVAL_S, "collect_timeout_s": CYCLE_TIMEOUT_S})


@pytest.fixture
def pipeline(fast_settings: Settings, clean_services: None) -> Iterator[PipelineApp]:
    app = create_app(fast_settings)
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                      queues=list(names.QUEUES), shutdown_timeout=20):  # fmt: skip
        yield app
