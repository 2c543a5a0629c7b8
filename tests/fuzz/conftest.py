# ruff: noqa: F811 - fixtures imported from the integration tier are used as parameters of the same name
"""The fuzz tier: hypothesis throws bad input at the real HTTP app and the workers' message readers.

Every HTTP case goes into the real FastAPI app (its ASGI interface, `AppClient`) with its real resources
(PostgreSQL, Redis), carrying the API token. `VSMMON_FUZZ_SCALE` scales every test's number of cases
(1 = the full tier, over 10,000 cases); the terminal summary prints how many ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr

from tests.integration.conftest import (  # noqa: F401 - the real services these tests use
    TABLES,
    clean_services,
    migrated_database,
    service_urls,
    settings,
    store,
)
from tests.store_contract import make_collection
from vsmmon.collect.staging import Staging
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app

TOKEN = "fuzz-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCALE = float(os.environ.get("VSMMON_FUZZ_SCALE", "1"))
CASES: Counter[str] = Counter()

pytestmark = pytest.mark.integration


def examples(n: int) -> hypothesis_settings:
    """Hypothesis settings for `n` cases (scaled), no deadline (the machine is shared), fixtures kept."""
    return hypothesis_settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
            HealthCheck.filter_too_much, HealthCheck.large_base_example,
        ],
    )  # fmt: skip


def count(test: str) -> None:
    CASES[test] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        parts = ", ".join(f"{name} {n}" for name, n in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzz tier: {sum(CASES.values())} cases ({parts})")


def problem_named(response: Any) -> list[str]:
    """What a 4xx says is wrong, checked to be said: one `loc` per bad field of a 422, else the detail."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    if response.status_code == 422 and isinstance(detail, list):  # the request's form: one entry per bad field
        assert detail, response.text
        for error in detail:
            assert error["loc"], error
            assert error["loc"][0] in {"body", "path", "query"}, error
            assert error["msg"], error
        return [".".join(str(part) for part in e["loc"]) for e in detail]
    assert isinstance(detail, str), detail  # a 422 of the domain (e.g. an unknown severity) names it in words
    assert detail.strip(), response.text
    return [detail]


def database_fingerprint(engine: sa.Engine) -> dict[str, str]:
    """Row count and a digest of every row of every table: equal before and after means unchanged."""
    found = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(sa.text(f"SELECT t::text FROM {table} t ORDER BY 1")).scalars().all()
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            found[table] = f"{len(rows)}:{digest}"
    return found


@pytest.fixture
def seeded(store: PostgresStore) -> PostgresStore:
    """A database that is not empty: a rejected request that deleted or changed rows would show."""
    collection = make_collection(datetime.now(UTC), agents=3)
    store.save_collection(collection, datetime.now(UTC))
    store.update_registry(collection)
    return store


@pytest.fixture
def unchanged_database(seeded: PostgresStore) -> Iterator[PostgresStore]:
    """Fails the test when the database differs after it from before it."""
    before = database_fingerprint(seeded.engine)
    yield seeded
    after = database_fingerprint(seeded.engine)
    assert after == before, {t: (before[t], after[t]) for t in before if before[t] != after[t]}


@pytest.fixture
def fuzz_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN), "http_allowed_hosts": "fuzz.test"})  # AppClient's


class AppClient:
    """Requests straight into the app's ASGI interface, on one event loop, lifespan entered.

    starlette's TestClient does the same through a thread portal, whose hops cost ~10 ms a request on
    this 2-core machine; here a rejected request costs ~1-4 ms, which lets the tier run 10,000 cases.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 comes back as a 500
        self.http = httpx.AsyncClient(transport=transport, base_url="http://fuzz.test")
        self._lifespan = app.router.lifespan_context(app)

    def __enter__(self) -> AppClient:
        self.loop.run_until_complete(self._lifespan.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self.loop.close()

    @property
    def staging(self) -> Staging:
        """The staging buffer the app writes pushed reports to (its own Redis client)."""
        found: Staging = self.app.state.resources.staging
        return found

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def app_client(fuzz_settings: Settings, seeded: PostgresStore) -> Iterator[AppClient]:
    """The real app (default 1 MiB body limit) on the real services; checks it still serves at the end."""
    with AppClient(create_app(fuzz_settings, report_self=False)) as c:
        yield c
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").json()["ready"] is True


@pytest.fixture
def client(app_client: AppClient, unchanged_database: PostgresStore) -> AppClient:
    """`app_client`, and the database must be as it was when the test ends."""
    return app_client
