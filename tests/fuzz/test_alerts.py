"""Fuzzing the alert endpoints: ack, resolve, silences (create, delete).

One critical alert is firing (in the Redis ledger and recorded in PostgreSQL). Every generated request is
wrong somewhere — a body with at least one defect against the real alert, or any body against an alert
that does not exist — so every answer is a 4xx naming the problem, and neither the ledger nor the
database changes (the `client` fixture compares the database; each test compares the ledger).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import AUTH, AppClient, count, examples, problem_named
from tests.fuzz.strategies import bad_numbers, dumps, ids, json_values, odd_text, wrong_type_values
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook, ledger_to_json
from vsmmon.alerts.model import Severity, Signal
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore

JSON = {**AUTH, "content-type": "application/json"}
PAIN = Signal("algedonic", "queue fuzz", Severity.CRITICAL, {"condition": "no_consumer"}, "queue fuzz has no consumer",
              system_wide=True)  # fmt: skip
GOOD_SILENCE = {"matchers": {"type": "algedonic"}, "duration_s": 600.0, "created_by": "fuzz", "comment": ""}


@pytest.fixture
def seeded(seeded: PostgresStore, fuzz_settings: Settings) -> Iterator[PostgresStore]:
    """The database and ledger of one firing critical alert, set before the unchanged-database check."""
    client = redis.Redis.from_url(fuzz_settings.require("redis_url"))
    outcome = alert_desk.report(AlertBook(client), "screen", [PAIN], datetime.now(UTC), ttl_s=3600,
                                policy=alert_desk.policy_for(fuzz_settings))  # fmt: skip
    AlertRecords(seeded.engine).save(outcome.changed, outcome.events)
    yield seeded
    client.close()


@pytest.fixture
def ledger(fuzz_settings: Settings, client: AppClient) -> Iterator[AlertBook]:
    """The alert ledger; fails the test when it changed."""
    conn = redis.Redis.from_url(fuzz_settings.require("redis_url"))
    book = AlertBook(conn)
    before = ledger_to_json(book.read())
    yield book
    assert ledger_to_json(book.read()) == before
    conn.close()


@pytest.fixture
def alert_refs(ledger: AlertBook) -> list[str]:
    [alert] = alert_desk.open_alerts(ledger)
    return [str(alert.id), alert.fingerprint]


@st.composite
def defective_who(draw: st.DrawFn) -> Any:
    """An ack/resolve body with at least one defect."""
    body: dict[str, Any] = {"by": "night shift", "comment": "looked"}
    defect = draw(st.sampled_from(["no by", "by type", "by blank", "by long", "comment", "extra", "not object"]))
    if defect == "no by":
        del body["by"]
    elif defect == "by type":
        body["by"] = draw(st.one_of(st.none(), st.booleans(), st.integers(), bad_numbers, st.lists(odd_text)))
    elif defect == "by blank":
        body["by"] = draw(st.text(" \t\n\r\u2003\u00a0", max_size=5))
    elif defect == "by long":
        body["by"] = "x" * draw(st.integers(201, 100_000))
    elif defect == "comment":
        body["comment"] = draw(st.one_of(st.integers(), st.none(), st.just("c" * 1001)))
    elif defect == "extra":
        body[draw(odd_text.filter(lambda k: k not in {"by", "comment"}))] = draw(json_values)
    else:
        return draw(st.one_of(json_values.filter(lambda v: not isinstance(v, dict)), st.just([body])))
    return body


@examples(600)
@given(action=st.sampled_from(["ack", "resolve"]), which=st.integers(0, 1), body=defective_who())
def test_a_defective_body_against_the_real_alert(
    client: AppClient, alert_refs: list[str], action: str, which: int, body: Any
) -> None:
    count("alert_bad_body")
    response = client.post(f"/api/v1/alerts/{alert_refs[which]}/{action}", content=dumps(body), headers=JSON)
    assert response.status_code == 422, response.text[:300]
    assert any(loc.startswith("body") for loc in problem_named(response))


@examples(500)
@given(
    action=st.sampled_from(["ack", "resolve"]),
    ref=st.one_of(ids, st.uuids().map(str)),
    body=st.one_of(st.just({"by": "night shift"}), defective_who(), json_values),
)
def test_an_alert_that_does_not_exist(
    client: AppClient, alert_refs: list[str], action: str, ref: str, body: Any
) -> None:
    """Unknown, unicode and SQL-like refs: a 404 naming the ref or a 422 naming the path or body."""
    count("alert_unknown_ref")
    if ref in alert_refs or not ref.strip("/"):
        return
    url = f"/api/v1/alerts/{quote(ref, safe='', errors='surrogatepass')}/{action}"
    response = client.post(url, content=dumps(body), headers=JSON)
    problem_named(response)
    assert response.status_code in {404, 405, 422}, response.text[:300]


SILENCE_DEFECTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "matchers type": wrong_type_values.filter(lambda v: not isinstance(v, dict) or not v).map(
        lambda v: {"matchers": v}
    ),
    "matchers empty": st.just({"matchers": {}}),
    "matcher empty": st.sampled_from([{"matchers": {"": "x"}}, {"matchers": {"type": ""}}]),
    "matcher long": st.integers(201, 20_000).map(lambda n: {"matchers": {"target": "t" * n}}),
    "too many": st.integers(21, 500).map(lambda n: {"matchers": {f"label{i}": "v" for i in range(n)}}),
    "severity": odd_text.filter(lambda s: s not in {"info", "warning", "critical"}).map(
        lambda s: {"matchers": {"severity": s}}
    ),
    "duration": st.one_of(bad_numbers, st.floats(max_value=0), st.floats(min_value=30 * 86400.5)).map(
        lambda d: {"duration_s": d}
    ),
    "duration type": st.one_of(st.none(), st.booleans(), odd_text, st.lists(st.integers(), max_size=2)).map(
        lambda d: {"duration_s": d}
    ),
    "created_by": st.one_of(st.none(), st.integers(), st.text(" ", max_size=3), st.just("c" * 201)).map(
        lambda c: {"created_by": c}
    ),
    "comment": st.integers(1001, 50_000).map(lambda n: {"comment": "c" * n}),
    "extra": st.tuples(odd_text.filter(lambda k: k not in GOOD_SILENCE), json_values).map(lambda kv: {kv[0]: kv[1]}),
}


@st.composite
def defective_silences(draw: st.DrawFn) -> Any:
    """A new-silence body with at least one defect: a field wrong, missing, extra, or no object at all."""
    shape = draw(st.sampled_from(["field", "missing", "not object"]))
    if shape == "not object":
        return draw(json_values.filter(lambda v: not isinstance(v, dict)))
    body: dict[str, Any] = dict(GOOD_SILENCE)
    if shape == "missing":
        del body[draw(st.sampled_from(["matchers", "duration_s", "created_by"]))]
        return body
    return body | draw(st.sampled_from(sorted(SILENCE_DEFECTS)).flatmap(SILENCE_DEFECTS.__getitem__))


@examples(700)
@given(body=defective_silences())
def test_a_defective_silence(client: AppClient, ledger: AlertBook, body: Any) -> None:
    """Empty or oversized matchers, an unknown severity, a duration ≤ 0, NaN, ±inf, past 30 d or not a number."""
    count("silence_bad_body")
    response = client.post("/api/v1/silences", content=dumps(body), headers=JSON)
    assert response.status_code == 422, (body, response.text[:300])
    problem_named(response)


@examples(300)
@given(silence_id=st.one_of(ids, st.uuids().map(str)))
def test_deleting_a_silence_that_does_not_exist(client: AppClient, ledger: AlertBook, silence_id: str) -> None:
    count("silence_delete")
    if not silence_id.strip("/"):
        return
    url = f"/api/v1/silences/{quote(silence_id, safe='', errors='surrogatepass')}"
    response = client.request("DELETE", url, headers=AUTH)
    problem_named(response)
    assert response.status_code in {404, 405, 422}, response.text[:300]


def test_the_same_endpoints_take_a_good_request(app_client: AppClient) -> None:
    """The cases above are refused, not unreachable: a good silence is made and deleted, the alert acked."""
    response = app_client.post("/api/v1/silences", content=dumps(GOOD_SILENCE), headers=JSON)
    assert response.status_code == 201, response.text
    assert app_client.request("DELETE", f"/api/v1/silences/{response.json()['id']}", headers=AUTH).status_code == 204
    [alert] = alert_desk.open_alerts(AlertBook(app_client.app.state.resources.redis))
    acked = app_client.post(f"/api/v1/alerts/{alert.id}/ack", content=dumps({"by": "fuzz"}), headers=JSON)
    assert (acked.status_code, acked.json()["status"]) == (200, "acknowledged"), acked.text
