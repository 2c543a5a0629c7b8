"""Ad-hoc health checks through the pipeline: `vsmmon check` exit codes, the API, Flower's task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from pydantic import SecretStr

from vsmmon import names
from vsmmon.collect.registry import evaluate as judge
from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app as create_web
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp
from vsmmon.workers.gateway import CeleryGateway


@pytest.fixture
def checker(settings: Settings, clean_services: None) -> Iterator[PipelineApp]:
    """A pipeline worker that expects a fleet of 4 pushed agents (capacity 1 each)."""
    app = create_app(settings.model_copy(update={"expected_capacity": 4.0, "collect_timeout_s": 0.5}))
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="ERROR",
                      queues=list(names.QUEUES), shutdown_timeout=20):  # fmt: skip
        yield app


def fleet_with_live(store: PostgresStore, live: int) -> None:
    """Register 4 pushed agents; all but `live` of them last seen long ago, so judged offline."""
    now = datetime.now(UTC)
    for i in range(4):
        seen = now if i < live else now - timedelta(minutes=5)
        report = AgentReport(f"svc-{i}", AgentKind.WORKER, "h", {"cpu_percent": 10.0, "rss_bytes": 1e8})
        store.update_registry(Collection(uuid.uuid4(), seen, 1.0, (report,)))
    store.apply_transitions(judge(store.agent_records(), now))


def vsmmon_check(settings: Settings, *args: str, broker: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env["VSMMON_BROKER_URL"] = broker or settings.require("broker_url")
    env["VSMMON_DATABASE_URL"] = settings.sqlalchemy_url()
    env["VSMMON_DATA_DIR"] = str(settings.data_dir)
    return subprocess.run([sys.executable, "-m", "vsmmon", "check", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize(("live", "code", "label"), [(4, 0, "OK"), (3, 1, "WARNING"), (1, 2, "CRITICAL")])
def test_check_exit_codes_follow_nagios(
    checker: PipelineApp, store: PostgresStore, settings: Settings, live: int, code: int, label: str
) -> None:
    fleet_with_live(store, live)
    result = vsmmon_check(settings)
    assert result.returncode == code, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{label} - viability ")
    assert "| viability=" in first  # Nagios performance data
    assert "S1" in result.stdout
    assert "availability=" in result.stdout  # every score shows its inputs


def test_check_json_and_one_agent(checker: PipelineApp, store: PostgresStore, settings: Settings) -> None:
    fleet_with_live(store, 3)
    result = vsmmon_check(settings, "--json")
    body = json.loads(result.stdout)
    assert body["viability_state"] == "warning"
    s1 = body["systems"]["S1"]
    assert s1["factors"][0]["inputs"]["availability"] == 0.75
    assert {a["agent_id"] for a in body["agents"]} == {f"svc-{i}" for i in range(4)}
    assert vsmmon_check(settings, "--agent", "svc-0").returncode == 0
    dead = vsmmon_check(settings, "--agent", "svc-3")
    assert dead.returncode == 2
    assert dead.stdout.startswith("CRITICAL - svc-3 unhealthy")
    assert vsmmon_check(settings, "--agent", "nobody").returncode == 3


def test_check_says_unknown_when_the_pipeline_is_unreachable(settings: Settings) -> None:
    result = vsmmon_check(settings, "--timeout", "3", broker="redis://127.0.0.1:1/0")
    assert result.returncode == 3
    assert result.stdout.startswith("UNKNOWN - ")
    assert "Traceback" not in result.stderr


def test_check_through_the_api(checker: PipelineApp, store: PostgresStore, settings: Settings) -> None:
    fleet_with_live(store, 4)
    web = create_web(settings.model_copy(update={"api_token": SecretStr("t")}), report_self=False,
                     gateway=CeleryGateway(checker))  # fmt: skip
    with TestClient(web) as client:
        assert client.post("/api/v1/health-checks").status_code == 401
        auth = {"Authorization": "Bearer t"}
        done = client.post("/api/v1/health-checks", params={"wait": "true"}, headers=auth)
        assert done.status_code == 202
        assert done.json()["result"]["viability_state"] == "normal"
        started = client.post("/api/v1/health-checks", headers=auth).json()
        assert started["state"] == "PENDING"
        from tests.integration.conftest import poll

        finished = poll(
            lambda: (r := client.get(f"/api/v1/health-checks/{started['id']}").json())["state"] == "SUCCESS" and r,
            deadline_s=20, what="the health check to finish",
        )  # fmt: skip
        assert finished["result"]["systems"]["S1"]["state"] == "healthy"
        listed = client.get("/api/v1/health-checks").json()
        assert [c["id"] for c in listed] == [started["id"], done.json()["id"]]  # newest first
        assert listed[0]["state"] == "normal"
        checker.AsyncResult(started["id"]).forget()  # the result backend's copy expires; the stored one stays
        kept = client.get(f"/api/v1/health-checks/{started['id']}").json()
        assert kept["state"] == "SUCCESS"
        assert kept["result"]["systems"]["S1"]["state"] == "healthy"
        assert client.get(f"/api/v1/health-checks/{uuid.uuid4()}").status_code == 404  # never sent
        assert client.get("/api/v1/health-checks/not-a-check").status_code == 404
    assert store.health_history("viability", "viability", datetime.now(UTC) - timedelta(hours=1)) == []
    assert store.agent_scores(datetime.now(UTC) - timedelta(hours=1)) == (None, {})  # checks are kept apart


def test_health_check_task_is_applied_by_name_and_returns_json(checker: PipelineApp, store: PostgresStore) -> None:
    fleet_with_live(store, 4)
    result = checker.send_task("vsmmon.health.check").get(timeout=20)  # as Flower's task API applies it
    assert json.loads(json.dumps(result)) == result
    assert result["viability_state"] == "normal"


def test_the_check_lists_the_active_alerts_and_is_never_less_severe(
    checker: PipelineApp, store: PostgresStore, settings: Settings
) -> None:
    """Viability normal, but a critical alert firing on S2 and a warning on svc-1: the check says CRITICAL
    (and WARNING for svc-1), naming them; an agent with no alert stays OK."""
    import redis

    from vsmmon.alerts import desk
    from vsmmon.alerts.book import AlertBook
    from vsmmon.alerts.model import AlertPolicy, Severity, Signal

    fleet_with_live(store, 4)
    assert vsmmon_check(settings).returncode == 0  # nothing active yet: the scores alone
    book = AlertBook(redis.Redis.from_url(settings.require("redis_url")))
    at_once = AlertPolicy(pending_s={Severity.CRITICAL: 0.0, Severity.WARNING: 0.0, Severity.INFO: 0.0})
    signals = [Signal("system_health", "S2", Severity.CRITICAL, summary="S2 unhealthy (score 0.30)"),
               Signal("bottleneck", "svc-1", Severity.WARNING, {"factor": "memory"}, "svc-1: memory 0.50")]  # fmt: skip
    desk.report(book, "test", signals, datetime.now(UTC), ttl_s=600, policy=at_once)

    result = vsmmon_check(settings)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("CRITICAL - viability ")
    assert "(normal)" in result.stdout.splitlines()[0]  # the scores say normal; the alert decides the code
    listed = [line.split() for line in result.stdout.split("active alerts:")[1].splitlines() if line.strip()]
    assert ["alert", "critical", "firing", "system_health", "on", "S2:"] in [line[:6] for line in listed]
    body = json.loads(vsmmon_check(settings, "--json").stdout)
    assert {(a["type"], a["target"], a["severity"]) for a in body["active_alerts"]} == {
        ("system_health", "S2", "critical"), ("bottleneck", "svc-1", "warning")}  # fmt: skip
    one = vsmmon_check(settings, "--agent", "svc-1")
    assert one.returncode == 1
    assert "bottleneck on svc-1" in one.stdout
    assert "S2" not in one.stdout.split("active alerts:")[-1]
    assert vsmmon_check(settings, "--agent", "svc-0").returncode == 0
