# ruff: noqa: F811 - fixtures imported from the integration tier are used as parameters of the same name
"""Hostile input cannot break a cycle (issue #20, item 2).

Control characters (NUL above all: PostgreSQL cannot store it in text or jsonb) are refused with a 422
naming the field wherever the API takes free text, and refused by the codec that reads pushed reports.
What reaches the persist task anyway (a report written straight into the staging buffer, a worker's
inspect reply) is screened out or scrubbed there: the other agents' rows are still stored. An ack or a
resolve changes the alert ledger (Redis) and the history (PostgreSQL) together or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.integration.conftest import (  # noqa: F401 - the real services these tests use
    clean_services,
    migrated_database,
    pipeline_app,
    service_urls,
    settings,
    store,
)
from vsmmon import names
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import Severity, Signal
from vsmmon.cli.main import main
from vsmmon.codec import (
    collection_from_json,
    collection_to_json,
    control_character,
    refuse_controls,
    report_from_json,
    report_to_json,
    screen,
    scrub,
)
from vsmmon.collect.collector import collect, host_report, parse_worker_reply
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import Settings
from vsmmon.errors import InvalidInput
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore, create_engine
from vsmmon.web import create_app
from vsmmon.web.resources import Resources, default_resources
from vsmmon.workers.context import PipelineApp

TOKEN = "hostile-input-token-7f2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "content-type": "application/json"}
HOSTILE = ["\x00", "\x1b[2J", "\x07", "\x7f", "\x85", "\x9b"]  # NUL, an ANSI escape, BEL, DEL, two C1 controls
PAIN = Signal("algedonic", "queue orphan", Severity.CRITICAL, {"condition": "no_consumer"},
              "queue orphan has messages and no live consumer", system_wide=True)  # fmt: skip
GOOD_SILENCE = {"matchers": {"type": "algedonic"}, "duration_s": 600, "created_by": "ops", "comment": ""}
integration = pytest.mark.integration


# --- the validator ------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", [*(chr(c) for c in range(0x20)), "\x7f", *(chr(c) for c in range(0x80, 0xA0))])
def test_every_c0_and_c1_control_and_del_is_found_by_code_point_and_position(char: str) -> None:
    assert control_character(f"ab{char}c") == f"U+{ord(char):04X} at position 2"
    with pytest.raises(InvalidInput) as refused:
        refuse_controls(f"ab{char}", "host")
    assert refused.value.field == "host"
    assert f"U+{ord(char):04X}" in refused.value.problem


@pytest.mark.parametrize("char", [chr(0xD800), chr(0xDFFF)])
def test_a_lone_surrogate_is_refused_too(char: str) -> None:
    """Not UTF-8: psycopg (and Redis' client) fail to encode it, as PostgreSQL fails on NUL."""
    assert control_character(f"x{char}") == f"U+{ord(char):04X} at position 1"


@pytest.mark.parametrize("text", ["", "celery@web-3", "ünïcödé 日本語 😀", "a b", "\u202e\u200b", "\xa0\xff", "~"])
def test_printable_text_passes_unchanged(text: str) -> None:
    assert control_character(text) is None
    assert refuse_controls(text, "by") is text
    assert scrub(text) == text


def test_prose_keeps_tab_and_line_breaks_and_nothing_else() -> None:
    assert control_character("line one\r\n\tline two", prose=True) is None
    assert control_character("line one\r\n", prose=False) == "U+000D at position 8"
    assert control_character("bell\x07", prose=True) == "U+0007 at position 4"
    assert control_character("nul\x00", prose=True) == "U+0000 at position 3"


def test_scrub_replaces_each_control_with_the_replacement_character() -> None:
    assert scrub("a\x00b\x1b[0m\ud800") == "a\ufffdb\ufffd[0m\ufffd"


def report(agent_id: str, **fields: Any) -> AgentReport:
    return AgentReport(**{"agent_id": agent_id, "kind": AgentKind.API, "host": "h", "metrics": {"m": 1.0}, **fields})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"host": "h\x00"}, "host"), ({"version": "1\x00"}, "version"), ({"agent_id": "a\x00"}, "agent_id"),
        ({"metrics": {"cpu\x00": 1.0}}, "metrics"), ({"errors": {"probe": "bad\x00"}}, "errors.probe"),
        ({"errors": {"\x1b": "x"}}, "errors"), ({"queues": ("q\x00",)}, "queues"),
        ({"config_hash": "\x7f"}, "config_hash"),
    ],
)  # fmt: skip
def test_the_report_codec_refuses_a_control_character_naming_the_field(fields: dict[str, Any], named: str) -> None:
    fields = dict(fields)
    raw = report_to_json(report(fields.pop("agent_id", "a"), **fields))
    with pytest.raises(InvalidInput) as refused:
        report_from_json(raw)
    assert refused.value.field == "report"
    assert refused.value.problem.startswith(f"{named}: control character U+"), refused.value.problem


def test_screen_leaves_out_only_the_reports_and_names_that_carry_control_characters() -> None:
    good = report("good")
    bad = [report("nul-host", host="\x00"), report("nul-metric", metrics={"a\x00": 1.0}), report("w\x00")]
    c = Collection(uuid.uuid4(), datetime.now(UTC), 1.0, (good, *bad), ("gone", "gone\x00"), 5.0, ("bye\x1b",))
    kept, refused = screen(collection_from_json(collection_to_json(c)))
    assert kept.reports == (good,)
    assert (kept.unreachable, kept.stopped) == (("gone",), ())
    assert len(refused) == 5
    assert any("nul-host" in r and "host" in r for r in refused), refused
    assert screen(kept) == (kept, [])


def test_the_collector_scrubs_a_worker_reply_and_says_which_fields_it_scrubbed() -> None:
    raw = {"version": "5\x00", "host": "node\x1b", "config_hash": "c\x7f", "queues": ["q\x00", "celery"],
           "metrics": {"cpu\x00": 1.0, "rss_bytes": 2.0}, "errors": {"probe": "fd\x85"},
           "host_metrics": {"metrics": {"load\x00": 1.0}, "errors": {}}}  # fmt: skip
    worker = parse_worker_reply("celery@w\x00", raw)
    assert (worker.agent_id, worker.version, worker.host, worker.config_hash) == ("celery@w\ufffd", "5\ufffd",
                                                                                 "node\ufffd", "c\ufffd")  # fmt: skip
    assert (worker.queues, dict(worker.metrics)) == (("celery", "q\ufffd"), {"cpu\ufffd": 1.0, "rss_bytes": 2.0})
    assert worker.errors["probe"] == "fd\ufffd"
    assert worker.errors["text"] == ("control characters replaced by U+FFFD in: hostname, errors, host, version, "
                                     "config_hash, queues, metric names")  # fmt: skip
    host = host_report(raw)
    assert (host.agent_id, dict(host.metrics)) == ("host:node\ufffd", {"load\ufffd": 1.0})
    assert "host, metric names" in host.errors["text"]
    assert all(screen(Collection(uuid.uuid4(), datetime.now(UTC), 1.0, (r,)))[1] == [] for r in (worker, host))
    clean = parse_worker_reply("celery@ok", {"version": "5", "metrics": {"cpu_percent": 1.0}})
    assert "text" not in clean.errors


# --- pushed agents: the API refuses, the codec refuses, persist screens ---------------------------------


@pytest.fixture
def client(settings: Settings, clean_services: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)}), report_self=False)) as c:
        yield c


@pytest.fixture
def staging(settings: Settings) -> Iterator[RedisStaging]:
    found = RedisStaging.from_url(settings.require("redis_url"))
    yield found
    found.client.close()


@integration
@pytest.mark.parametrize("field", ["host", "version"])
@pytest.mark.parametrize("char", HOSTILE)
def test_a_control_character_in_a_pushed_text_field_is_a_422_naming_it(
    client: TestClient, staging: RedisStaging, field: str, char: str
) -> None:
    body = {"type": "api", "metrics": {"requests_per_s": 3.0}, field: f"web{char}1"}
    single = client.post("/api/v1/agents/api-1/metrics", content=json.dumps(body), headers=JSON)
    assert single.status_code == 422, single.text
    assert [e["loc"] for e in single.json()["detail"]] == [["body", field]]
    assert "control character" in single.json()["detail"][0]["msg"]
    batch = client.post("/api/v1/metrics", content=json.dumps({"reports": [{**body, "agent_id": "api-1"}]}),
                        headers=JSON)  # fmt: skip
    assert batch.status_code == 422, batch.text
    assert [e["loc"] for e in batch.json()["detail"]] == [["body", "reports", 0, field]]
    assert staging.drain_pushed() == []


@integration
def test_a_control_character_in_the_dashboards_agent_is_a_422_not_a_database_error(client: TestClient) -> None:
    response = client.get("/api/v1/dashboard/series", params={"chart": "cpu", "agent": "celery@w\x00"})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["query", "agent"]]


def reply(version: str = "5.4", **extra: Any) -> dict[str, Any]:
    return {"version": version, "host": "node-1", "metrics": {"cpu_percent": 10.0, "rss_bytes": 1e8},
            "queues": ["celery"], **extra}  # fmt: skip


@integration
def test_a_hostile_report_that_reaches_the_cycle_anyway_does_not_stop_the_others_being_stored(
    pipeline_app: PipelineApp, staging: RedisStaging, settings: Settings
) -> None:
    """A pushed report written straight into the buffer with a NUL host (no API in front of it) is dropped
    and counted when the cycle drains it; a worker's inspect reply with a NUL in its hostname, version,
    a metric name, an error and a queue is scrubbed, as are the names of the workers that did not answer."""
    good = report("api-ok")
    staging.client.rpush(names.PUSHED_KEY, report_to_json(report("api-evil", host="gpu\x00")), report_to_json(good))
    now = datetime.now(UTC)
    collection = collect(
        collection_id=uuid.uuid4(), now=now, duration_ms=3.0, host_reports=(),
        worker_replies={
            "celery@ok": reply(),
            "celery@evil\x00": reply("5.4\x00", errors={"probe\x00": "fd\x00"}, queues=["q\x00"],
                                     metrics={"cpu\x00": 1.0, "rss_bytes": 2.0}),
        },
        expected_workers={"celery@ok", "celery@gone\x00"}, pushed_reports=staging.drain_pushed(),
    )  # fmt: skip
    assert int(staging.client.get(names.PUSHED_REJECTED_KEY) or 0) == 1
    staging.put(collection)
    result = pipeline_app.tasks[names.PERSIST_COLLECTION].apply(args=(str(collection.id),))
    assert result.successful(), result.result
    agents = {a.agent_id: a for a in pipeline_app.context().store.agents()}
    assert set(agents) == {"celery@ok", "celery@evil\ufffd", "api-ok"}
    assert all(a.last_seen == now for a in agents.values())
    evil = agents["celery@evil\ufffd"]
    assert (evil.version, evil.queues) == ("5.4\ufffd", ("q\ufffd",))
    assert evil.metrics == {"rss_bytes": 2.0, "cpu\ufffd": 1.0}
    assert "control characters" in evil.errors["text"]
    assert pipeline_app.context().store.get_collection(collection.id).unreachable == ("celery@gone\ufffd",)


@integration
def test_a_collection_staged_with_hostile_reports_stores_the_rest_and_counts_them(
    pipeline_app: PipelineApp, staging: RedisStaging
) -> None:
    now = datetime.now(UTC)
    good = (report("api-1"), report("api-2", metrics={"a": 1.0, "b": 2.0}))
    bad = (report("api-3", host="h\x00"), report("api-4", metrics={"m\x00": 1.0}),
           report("api-5", errors={"e": "\x00"}), report("api-6\x00"))  # fmt: skip
    collection = Collection(uuid.uuid4(), now, 2.0, (*good, *bad), ("celery@x\x00",), 5.0, ("celery@y\x00",))
    staging.put(collection)
    persist = pipeline_app.tasks[names.PERSIST_COLLECTION]
    result = persist.apply(args=(str(collection.id),))
    assert result.successful(), result.result
    assert result.result["refused"] == 6
    ctx = pipeline_app.context()
    assert sorted(a.agent_id for a in ctx.store.agents()) == ["api-1", "api-2"]
    stored = ctx.store.get_collection(collection.id)
    assert (stored.agent_count, stored.sample_count, stored.unreachable) == (2, 3, ())
    assert int(staging.client.get(names.REFUSED_REPORTS_KEY) or 0) == 6
    assert persist.apply(args=(str(collection.id),)).result["stored"] is False  # a retry counts nothing again
    assert int(staging.client.get(names.REFUSED_REPORTS_KEY) or 0) == 6
    aggregated = pipeline_app.tasks[names.AGGREGATE_COLLECTION].apply(args=(str(collection.id),))
    assert aggregated.successful(), aggregated.result
    assert aggregated.result["samples"] == 3


# --- alerts: the ledger and the history change together ------------------------------------------------


@pytest.fixture
def fired(settings: Settings, clean_services: None) -> Iterator[dict[str, Any]]:
    """One critical alert firing, in the ledger and recorded, as the alerts worker leaves it."""
    client = redis.Redis.from_url(settings.require("redis_url"))
    engine = create_engine(settings.sqlalchemy_url())
    outcome = alert_desk.report(AlertBook(client), "screen", [PAIN], datetime.now(UTC), ttl_s=600,
                                policy=alert_desk.policy_for(settings))  # fmt: skip
    AlertRecords(engine).save(outcome.changed, outcome.events)
    (alert,) = outcome.changed
    yield {"id": str(alert.id), "fingerprint": alert.fingerprint, "book": AlertBook(client), "engine": engine}
    client.close()
    engine.dispose()


def states(fired: dict[str, Any]) -> tuple[str | None, str, list[str]]:
    """(status in the ledger, status in the history, the history's events) of the fired alert."""
    found = fired["book"].read().state.alerts.get(fired["fingerprint"])
    with fired["engine"].connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM alerts WHERE id = :i"), {"i": fired["id"]}).scalar_one()
        events = conn.execute(sa.text("SELECT event FROM alert_events WHERE alert_id = :i ORDER BY at"),
                              {"i": fired["id"]}).scalars().all()  # fmt: skip
    return (None if found is None else str(found.status)), status, list(events)


@integration
@pytest.mark.parametrize("action", ["ack", "resolve"])
@pytest.mark.parametrize("char", HOSTILE)
def test_a_control_character_in_by_is_a_422_and_changes_neither_ledger_nor_history(
    client: TestClient, fired: dict[str, Any], action: str, char: str
) -> None:
    before = states(fired)
    assert before[:2] == ("firing", "firing")
    response = client.post(f"/api/v1/alerts/{fired['id']}/{action}", json={"by": f"ops{char}x"}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "by"]]
    assert states(fired) == before
    good = client.post(f"/api/v1/alerts/{fired['id']}/{action}", json={"by": "ops"}, headers=AUTH)
    assert good.status_code == 200, good.text
    expected = ("acknowledged", "acknowledged") if action == "ack" else (None, "resolved")
    assert states(fired)[:2] == expected


@integration
@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"created_by": "ops\x00"}, ["body", "created_by"]), ({"comment": "see\x1b[2J"}, ["body", "comment"]),
        ({"matchers": {"target": "queue\x00orphan"}}, ["body", "matchers", "target"]),
        ({"matchers": {"team\x00": "x"}}, ["body", "matchers", "team\x00", "[key]"]),
    ],
)  # fmt: skip
def test_a_control_character_in_a_silence_is_a_422_naming_the_field(
    client: TestClient, fired: dict[str, Any], change: dict[str, Any], loc: list[str]
) -> None:
    body = {**GOOD_SILENCE, **change}
    response = client.post("/api/v1/silences", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [loc]
    assert fired["book"].read().state.silences == ()
    prose = {**GOOD_SILENCE, "comment": "line one\n\tline two"}
    assert client.post("/api/v1/silences", json=prose, headers=AUTH).status_code == 201  # a comment may span lines


@integration
def test_the_cli_refuses_a_control_character_in_by_before_changing_anything(
    fired: dict[str, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VSMMON_BROKER_URL", settings.require("broker_url"))
    monkeypatch.setenv("VSMMON_DATABASE_URL", settings.require("database_url"))
    before = states(fired)
    assert main(["alerts", "ack", fired["fingerprint"], "--by", "ops\x00"]) == 1
    assert "by: control character U+0000" in capsys.readouterr().err
    assert states(fired) == before


def failing_history(conn: sa.Connection, *, at_commit: bool) -> None:
    """Make PostgreSQL refuse every new alert event: at once, or only when the transaction commits."""
    conn.execute(sa.text("CREATE OR REPLACE FUNCTION vsm_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"))  # fmt: skip
    if at_commit:
        conn.execute(sa.text("CREATE CONSTRAINT TRIGGER vsm_test_refuse AFTER INSERT ON alert_events DEFERRABLE "
                             "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vsm_test_refuse()"))  # fmt: skip
    else:
        conn.execute(sa.text("CREATE TRIGGER vsm_test_refuse BEFORE INSERT ON alert_events "
                             "FOR EACH ROW EXECUTE FUNCTION vsm_test_refuse()"))  # fmt: skip


@pytest.fixture
def refusing_history(fired: dict[str, Any]) -> Iterator[Any]:
    """A switch that makes the history refuse writes; dropped again whatever the test did."""
    engine = fired["engine"]

    def switch(at_commit: bool) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS vsm_test_refuse ON alert_events"))
            failing_history(conn, at_commit=at_commit)

    yield switch
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER IF EXISTS vsm_test_refuse ON alert_events"))
        conn.execute(sa.text("DROP FUNCTION IF EXISTS vsm_test_refuse()"))


@integration
@pytest.mark.parametrize("action", ["ack", "resolve"])
@pytest.mark.parametrize("at_commit", [False, True], ids=["at-write", "at-commit"])
def test_a_history_write_that_fails_leaves_the_ledger_as_it_was(
    client: TestClient, fired: dict[str, Any], refusing_history: Any, action: str, at_commit: bool
) -> None:
    """The database refuses the ack's rows (when they are written, or only at commit, after the ledger was
    written): a JSON 500, and both still say firing. Once the database takes writes again, the ack works."""
    before = states(fired)
    refusing_history(at_commit)
    response = client.post(f"/api/v1/alerts/{fired['id']}/{action}", json={"by": "ops"}, headers=AUTH)
    assert response.status_code == 500, response.text
    assert "nothing was changed" in response.json()["detail"]
    assert states(fired) == before
    with fired["engine"].begin() as conn:
        conn.execute(sa.text("DROP TRIGGER vsm_test_refuse ON alert_events"))
    assert client.post(f"/api/v1/alerts/{fired['id']}/{action}", json={"by": "ops"}, headers=AUTH).status_code == 200
    ledger, history, events = states(fired)
    done = "acknowledged" if action == "ack" else "resolved"
    assert (ledger, history, done in events) == (done if action == "ack" else None, done, True)


@integration
def test_an_ack_while_the_database_is_unreachable_is_a_503_and_changes_nothing(
    settings: Settings, fired: dict[str, Any]
) -> None:
    before = states(fired)
    unreachable = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    def build(s: Settings) -> Resources:
        return replace(default_resources(s), records=AlertRecords(unreachable))

    app = create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)}), build, report_self=False)
    try:
        with TestClient(app) as http:
            for action in ("ack", "resolve"):
                response = http.post(f"/api/v1/alerts/{fired['id']}/{action}", json={"by": "ops"}, headers=AUTH)
                assert response.status_code == 503, response.text
                assert "PostgreSQL unavailable" in response.json()["detail"]
                assert states(fired) == before
    finally:
        unreachable.dispose()


@integration
def test_the_store_itself_never_fails_the_registry_for_one_hostile_row(store: PostgresStore) -> None:
    """Defence in depth below the persist task: a collection handed straight to the store."""
    now = datetime.now(UTC)
    collection = Collection(uuid.uuid4(), now, 1.0, (report("ok"), report("bad", version="\x00")), ())
    assert store.save_collection(collection, now) is True
    store.update_registry(collection)
    assert [a.agent_id for a in store.agents()] == ["ok"]
