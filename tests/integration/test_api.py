"""The HTTP API on real PostgreSQL and Redis: auth, validation, push, registry views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.integration.conftest import poll
from tests.store_contract import make_collection
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(settings: Settings, clean_services: None) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(update={"api_token": SecretStr(TOKEN), "max_body_bytes": 64 * 1024}), report_self=False
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture
def staging(settings: Settings) -> RedisStaging:
    return RedisStaging.from_url(settings.require("redis_url"))


def push(client: TestClient, body: object, agent_id: str = "llm-1", headers: dict[str, str] | None = None) -> object:
    return client.post(f"/api/v1/agents/{agent_id}/metrics", json=body, headers=AUTH if headers is None else headers)


GOOD = {"type": "llm_worker", "metrics": {"cpu_percent": 12.5, "rss_bytes": 1e8, "tokens_per_s": 40}}


def test_health_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "redis": "ok"}}


def test_a_push_joins_the_next_cycle(client: TestClient, staging: RedisStaging) -> None:
    response = push(client, {**GOOD, "interval_s": 10, "host": "gpu-3", "version": "2.1"})
    assert response.status_code == 202
    [report] = staging.drain_pushed()
    assert (report.agent_id, report.kind.value, report.host, report.version) == ("llm-1", "llm_worker", "gpu-3", "2.1")
    assert report.metrics == {"cpu_percent": 12.5, "rss_bytes": 1e8, "tokens_per_s": 40.0}
    assert report.interval_s == 10
    assert staging.drain_pushed() == []


def test_a_batch_push(client: TestClient, staging: RedisStaging) -> None:
    reports = [{**GOOD, "agent_id": f"sensor-{i}", "type": "sensor"} for i in range(3)]
    response = client.post("/api/v1/metrics", json={"reports": reports}, headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    assert sorted(r.agent_id for r in staging.drain_pushed()) == ["sensor-0", "sensor-1", "sensor-2"]  # by slot


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "metrics": {"cpu": "7"}}, ["body", "metrics", "cpu"]),
        ({**GOOD, "metrics": {"cpu": True}}, ["body", "metrics", "cpu"]),
        ({**GOOD, "metrics": {"cpu": None}}, ["body", "metrics", "cpu"]),
        ({**GOOD, "metrics": {"cpu": [1]}}, ["body", "metrics", "cpu"]),
        ({**GOOD, "metrics": {"bad name!": 1}}, ["body", "metrics", "bad name!", "[key]"]),
        ({**GOOD, "metrics": {f"m{i}": i for i in range(501)}}, ["body", "metrics"]),
        ({**GOOD, "type": "toaster"}, ["body", "type"]),
        ({**GOOD, "colour": "red"}, ["body", "colour"]),
        ({"type": "api"}, ["body", "metrics"]),
        ({**GOOD, "timestamp": "2026-01-01T00:00:00"}, ["body", "timestamp"]),
        ({**GOOD, "timestamp": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, ["body", "timestamp"]),
        ({**GOOD, "interval_s": 0}, ["body", "interval_s"]),
        ({**GOOD, "host": "h" * 500}, ["body", "host"]),
        ([1, 2, 3], ["body"]),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, staging: RedisStaging, body: object, field: list[str]
) -> None:
    response = push(client, body)
    assert response.status_code == 422
    locations = [e["loc"] for e in response.json()["detail"]]
    assert field in locations, locations
    assert staging.drain_pushed() == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client: TestClient, staging: RedisStaging, number: str) -> None:
    raw = '{"type": "sensor", "metrics": {"temp": %s}}' % number  # noqa: UP031 - JSON with a bare token
    response = client.post(
        "/api/v1/agents/s1/metrics", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert ["body", "metrics", "temp"] in [e["loc"] for e in response.json()["detail"]]
    assert staging.drain_pushed() == []


@pytest.mark.parametrize("number", ["1e39", "-1e39", "1" + "0" * 400])
def test_numbers_past_what_the_window_holds_are_refused(client: TestClient, staging: RedisStaging, number: str) -> None:
    raw = '{"type": "sensor", "metrics": {"temp": %s, "ok": 1}}' % number  # noqa: UP031 - a JSON number token
    response = client.post(
        "/api/v1/agents/s1/metrics", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert ["body", "metrics", "temp"] in [e["loc"] for e in response.json()["detail"]]
    assert staging.drain_pushed() == []


@pytest.mark.parametrize("agent_id", ["has space", "-leading-dash", "x" * 121, "semi;colon", "quote'"])
def test_a_bad_agent_id_is_refused(client: TestClient, agent_id: str) -> None:
    response = push(client, GOOD, agent_id=agent_id)
    assert response.status_code in {404, 422}
    assert response.status_code != 202


def test_a_body_over_the_limit_is_a_413(client: TestClient, staging: RedisStaging) -> None:
    big = {**GOOD, "host": "x", "metrics": {"a": 1}, "pad": "y" * (70 * 1024)}
    response = client.post(
        "/api/v1/agents/a/metrics", content=json.dumps(big), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "VSMMON_MAX_BODY_BYTES" in response.json()["detail"]
    assert staging.drain_pushed() == []


def mutating_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every non-GET operation the app publishes in its OpenAPI document."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops if method not in {"get", "head"}]


def test_every_mutating_route_needs_the_token(client: TestClient, staging: RedisStaging) -> None:
    routes = mutating_routes(client)
    assert ("POST", "/api/v1/agents/{agent_id}/metrics") in routes
    for method, path in routes:
        url = path.replace("{agent_id}", "a1").replace("{collection_id}", "00000000-0000-0000-0000-000000000000")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = client.request(method, url, json=GOOD, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
    assert staging.drain_pushed() == []


def test_writes_are_refused_when_no_token_is_configured(settings: Settings, clean_services: None) -> None:
    with TestClient(create_app(settings, report_self=False)) as c:
        response = push(c, GOOD, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "VSMMON_API_TOKEN is not set" in response.json()["detail"]


def test_agents_listing_shows_metrics_and_hides_long_offline_agents(client: TestClient, store: PostgresStore) -> None:
    now = datetime.now(UTC)
    store.update_registry(make_collection(now, cpu=33.0, agents=2))
    listing = client.get("/api/v1/agents").json()
    assert listing["count"] == 2
    w0 = next(a for a in listing["agents"] if a["agent_id"] == "celery@w0")
    assert w0["metrics"]["cpu_percent"] == 33.0
    assert w0["status"] == "online"
    detail = client.get("/api/v1/agents/celery@w0").json()
    assert detail["transitions"] == []
    assert client.get("/api/v1/agents/nobody").status_code == 404


def test_the_service_reports_its_own_request_rate_latency_and_runtime(
    settings: Settings, clean_services: None, staging: RedisStaging
) -> None:
    fast = settings.model_copy(update={"collect_interval_s": 0.3})
    with TestClient(create_app(fast)) as c:
        for _ in range(20):
            assert c.get("/healthz").status_code == 200
        assert c.get("/api/v1/collections/00000000-0000-0000-0000-000000000000").status_code == 404

        def own_report() -> Any:
            return next((r for r in staging.drain_pushed() if r.agent_id.startswith("vsmmon-http@")), None)

        report = poll(own_report, deadline_s=10, what="the HTTP service's own report")
    assert report.kind.value == "pipeline"
    assert report.metrics["http_requests_total"] >= 21
    assert report.metrics["http_5xx_total"] == 0
    assert 0 < report.metrics["http_latency_p50_s"] <= report.metrics["http_latency_p95_s"] < 5
    assert report.metrics["http_requests_per_s"] > 0
    for runtime in ("rss_bytes", "threads", "open_fds", "gc_collections_total", "python_threads"):
        assert runtime in report.metrics, runtime


def test_a_series_from_the_real_time_window(client: TestClient, settings: Settings) -> None:
    from vsmmon.store.realtime import RealtimeWindow

    window = RealtimeWindow(redis.Redis.from_url(settings.require("redis_url")), settings.collect_interval_s)
    now = datetime.now(UTC)
    for n in range(3):
        window.write(make_collection(now - timedelta(seconds=5 * (2 - n)), cpu=10.0 * n, agents=1))
    body = client.get("/api/v1/agents/celery@w0/series/cpu_percent", params={"span_s": 60}).json()
    assert [value for _, value in body["points"]] == [0.0, 10.0, 20.0]
    assert client.get("/api/v1/agents/celery@w0/series/cpu_percent", params={"span_s": 0}).status_code == 422
    assert client.get("/api/v1/agents/nobody/series/cpu_percent").json()["points"] == []
