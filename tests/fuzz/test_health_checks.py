"""Fuzzing `POST /api/v1/health-checks?wait=…&timeout_s=…`: the query is validated before a task is sent.

The app has the real task gateway (Celery, Redis). A refused request sends no task (the `vsm.health`
queue keeps its length); an accepted one (wait=false) sends exactly one and says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import AUTH, AppClient, count, examples, problem_named
from tests.fuzz.strategies import dumps, json_values, odd_text
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app
from vsmmon.workers.app import create_app as create_pipeline
from vsmmon.workers.gateway import CeleryGateway

TRUTHY = {"1", "on", "t", "true", "y", "yes"}
FALSY = {"0", "off", "f", "false", "n", "no"}


@pytest.fixture
def checks_client(fuzz_settings: Settings, unchanged_database: PostgresStore) -> Iterator[AppClient]:
    gateway = CeleryGateway(create_pipeline(fuzz_settings))
    with AppClient(create_app(fuzz_settings, report_self=False, gateway=gateway)) as c:
        yield c
        assert c.get("/healthz").status_code == 200


@pytest.fixture
def health_queue(fuzz_settings: Settings) -> Iterator[Any]:
    conn = redis.Redis.from_url(fuzz_settings.require("redis_url"))
    yield lambda: conn.llen(names.HEALTH_QUEUE)
    conn.close()


def expected_ok(wait: str | None, timeout: str | None) -> bool:
    """An independent reading of the query: wait a boolean word, timeout_s a number in (0, 60]."""
    wait_ok = wait is None or wait.lower() in TRUTHY | FALSY
    try:
        number = float(timeout) if timeout is not None else 10.0
    except ValueError:
        return False
    return wait_ok and math.isfinite(number) and 0 < number <= 60


not_truthy = st.one_of(st.sampled_from(sorted(FALSY)), odd_text).filter(lambda w: w.strip().lower() not in TRUTHY)
timeouts = st.one_of(
    st.floats().map(repr), st.integers().map(str), odd_text,
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-0", "60", "60.0001", "0x10", "1_0", " 5", "5 ", ""]),
)  # fmt: skip


@examples(600)
@given(
    wait=st.one_of(st.none(), not_truthy, st.sampled_from(sorted(TRUTHY))),
    timeout=st.one_of(st.none(), timeouts),
    body=st.one_of(st.none(), json_values),
)
def test_health_check_queries(
    checks_client: AppClient, health_queue: Any, wait: str | None, timeout: str | None, body: Any
) -> None:
    count("health_check_query")
    if wait is not None and wait.strip().lower() in TRUTHY and expected_ok(wait, timeout):
        timeout = "nan"  # a valid wait=true would wait for a worker this test does not run
    query = {k: v for k, v in (("wait", wait), ("timeout_s", timeout)) if v is not None}
    before = health_queue()
    url = "/api/v1/health-checks?" + urlencode(query, errors="surrogatepass")
    response = checks_client.post(url, content=dumps(body) if body is not None else b"", headers=AUTH)
    if response.status_code == 202:
        assert expected_ok(wait, timeout), (query, response.text)
        assert health_queue() == before + 1
        assert response.json()["state"] == "PENDING"
        assert response.json()["id"]
        return
    assert health_queue() == before, response.text
    assert any(loc.startswith("query") for loc in problem_named(response)), response.text
    assert not (expected_ok(wait, timeout) and (wait or "").strip().lower() not in TRUTHY), (query, response.text)
