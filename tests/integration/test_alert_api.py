"""Alerts over HTTP and from the CLI: list, ack, resolve, silence; actions and decisions. Real Redis and
PostgreSQL behind the real HTTP service."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from tests.integration.conftest import API_TOKEN
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import Severity, Signal
from vsmmon.cli.main import main
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import create_engine

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
PAIN = Signal("algedonic", "queue orphan", Severity.CRITICAL, {"condition": "no_consumer"}, "queue orphan has 3 "
              "messages and no live consumer", system_wide=True)  # fmt: skip


@pytest.fixture
def firing(settings: Settings, live_api: str) -> dict[str, Any]:
    """One critical alert fired by a source report, recorded as the alerts worker records it."""
    client = redis.Redis.from_url(settings.require("redis_url"))
    engine = create_engine(settings.sqlalchemy_url())
    outcome = alert_desk.report(AlertBook(client), "screen", [PAIN], datetime.now(UTC), ttl_s=60,
                                policy=alert_desk.policy_for(settings))  # fmt: skip
    AlertRecords(engine).save(outcome.changed, outcome.events)
    engine.dispose()
    (alert,) = outcome.changed
    return {"id": str(alert.id), "fingerprint": alert.fingerprint, "url": live_api}


def test_list_ack_and_resolve_over_http(firing: dict[str, Any], settings: Settings) -> None:
    base, ref = firing["url"], firing["id"]
    with httpx.Client(base_url=base, timeout=10) as http:
        (shown,) = http.get("/api/v1/alerts").json()["alerts"]
        assert (shown["id"], shown["status"], shown["severity"]) == (ref, "firing", "critical")
        assert http.post(f"/api/v1/alerts/{ref}/ack", json={"by": "ops"}).status_code == 401
        assert http.post(f"/api/v1/alerts/{ref}/ack", json={}, headers=AUTH).status_code == 422
        unknown = http.post(f"/api/v1/alerts/{uuid.uuid4()}/ack", json={"by": "ops"}, headers=AUTH)
        assert unknown.status_code == 404
        acked = http.post(f"/api/v1/alerts/{ref}/ack", json={"by": "ops"}, headers=AUTH)
        assert acked.status_code == 200, acked.text
        assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "ops")
        history = http.get(f"/api/v1/alerts/{firing['fingerprint']}").json()
        assert history["status"] == "acknowledged"
        assert [e["event"] for e in history["events"]][-1] == "acknowledged"
        done = http.post(f"/api/v1/alerts/{ref}/resolve", json={"by": "ops"}, headers=AUTH)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "resolved"
        assert done.json()["recovery_sent"] is False  # this HTTP service has no pipeline gateway
        assert http.get("/api/v1/alerts").json()["alerts"] == []
        (old,) = http.get("/api/v1/alerts", params={"status": "resolved"}).json()["alerts"]
        assert (old["id"], old["resolved_at"] is not None) == (ref, True)
        assert http.post(f"/api/v1/alerts/{ref}/resolve", json={"by": "ops"}, headers=AUTH).status_code == 404


def test_silences_over_http(firing: dict[str, Any]) -> None:
    with httpx.Client(base_url=firing["url"], timeout=10) as http:
        body = {"matchers": {"target": "queue orphan"}, "duration_s": 3600, "created_by": "ops"}
        assert http.post("/api/v1/silences", json=body).status_code == 401
        for bad in ({**body, "matchers": {}}, {**body, "duration_s": -1}, {**body, "duration_s": 1e12},
                    {**body, "created_by": ""}, {**body, "extra": 1}):  # fmt: skip
            answer = http.post("/api/v1/silences", json=bad, headers=AUTH)
            assert answer.status_code == 422, (bad, answer.text)
        bad_severity = http.post("/api/v1/silences", json={**body, "matchers": {"severity": "fatal"}}, headers=AUTH)
        assert bad_severity.status_code == 422
        assert "matchers.severity" in bad_severity.json()["detail"]
        made = http.post("/api/v1/silences", json=body, headers=AUTH)
        assert made.status_code == 201, made.text
        silence_id = made.json()["id"]
        assert [s["id"] for s in http.get("/api/v1/silences").json()["silences"]] == [silence_id]
        assert http.delete(f"/api/v1/silences/{silence_id}").status_code == 401
        assert http.delete(f"/api/v1/silences/{silence_id}", headers=AUTH).status_code == 204
        assert http.delete(f"/api/v1/silences/{silence_id}", headers=AUTH).status_code == 404
        assert http.get("/api/v1/silences").json()["silences"] == []


def test_cli_lists_acks_and_silences(
    firing: dict[str, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VSMMON_BROKER_URL", settings.require("broker_url"))
    monkeypatch.setenv("VSMMON_DATABASE_URL", settings.require("database_url"))
    assert main(["alerts", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["alerts"]
    assert shown["id"] == firing["id"]
    assert main(["alerts", "ack", firing["fingerprint"], "--by", "night-shift"]) == 0
    assert "acknowledged" in capsys.readouterr().out
    engine = sa.create_engine(settings.sqlalchemy_url())
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, acknowledged_by FROM alerts WHERE id = :i"), {"i": firing["id"]})
        assert tuple(row.one()) == ("acknowledged", "night-shift")
    engine.dispose()
    assert main(["alerts", "silence", "--match", "type=algedonic", "--for", "30m"]) == 0
    assert "silence" in capsys.readouterr().out
    assert main(["alerts", "silence", "--match", "type=algedonic", "--for", "soon"]) == 1
    assert "--for" in capsys.readouterr().err
    assert main(["alerts", "ack", str(uuid.uuid4())]) == 1
    assert "no open alert" in capsys.readouterr().err
    assert main(["actions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"actions": []}
    assert main(["decisions"]) == 0
    assert "no policy decisions" in capsys.readouterr().out


def test_cooldowns_are_kept_per_fingerprint_across_instances_in_redis(settings: Settings, clean_services: None) -> None:
    """A resolved alert that fires again within 300 s is not re-notified; after the cooldown it is."""
    client = redis.Redis.from_url(settings.require("redis_url"))
    book, policy = AlertBook(client), alert_desk.policy_for(settings.model_copy(update={"alert_resolve_after_s": 0}))
    t0 = datetime.now(UTC)

    def step(at_s: float, signals: list[Signal]) -> alert_desk.Outcome:
        return alert_desk.report(book, "screen", signals, t0 + timedelta(seconds=at_s), ttl_s=1, policy=policy)

    assert [n.kind for n in step(0, [PAIN]).notifications] == ["firing"]
    assert [n.kind for n in step(2, []).notifications] == ["recovery"]  # cleared: resolved at once
    again = step(100, [PAIN])
    assert again.notifications == ()
    assert [(s.kind, s.reason) for s in again.suppressed] == [("firing", "cooldown")]
    step(102, [])
    assert [n.kind for n in step(400, [PAIN]).notifications] == ["firing"]
    assert client.hexists("vsm:alerts:cooldowns", PAIN.fingerprint)
