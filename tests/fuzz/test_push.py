"""Fuzzing the push endpoints: `POST /api/v1/agents/{agent_id}/metrics` and `POST /api/v1/metrics`.

Every case is a 202 (then exactly what was sent is staged, every value finite) or a 4xx naming the
problem, never a 5xx; a rejected case stages nothing; the database is unchanged (the `client` fixture
compares a fingerprint of every table before and after) and the service still serves.
"""

from __future__ import annotations

import math
import random
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import AUTH, AppClient, count, examples, problem_named
from tests.fuzz.strategies import (
    AGENT_KINDS,
    NOT_PUSHED_KINDS,
    bad_numbers,
    dumps,
    finite_metrics,
    ids,
    json_values,
    nested,
    nested_objects,
    odd,
    push_bodies,
    push_body,
    seeded,
    valid_id,
    valid_metric_names,
    wrong_type,
    wrong_type_values,
)
from vsmmon.collect.staging import Staging

JSON = {**AUTH, "content-type": "application/json"}


@pytest.fixture
def staging(client: AppClient) -> Staging:
    return client.staging


def post_push(client: AppClient, agent_id: str, raw: bytes) -> Any:
    client.staging.drain_pushed()  # a case that failed before draining must not leak into the next
    return client.post(
        f"/api/v1/agents/{quote(agent_id, safe='', errors='surrogatepass')}/metrics", content=raw, headers=JSON
    )


def check_staged(staging: Staging, response: Any, agent_id: str, body: Any) -> None:
    staged = staging.drain_pushed()
    if response.status_code != 202:
        problem_named(response)
        assert staged == [], staged
        return
    [report] = staged
    assert report.agent_id == agent_id
    assert report.kind.value in AGENT_KINDS
    assert isinstance(body, dict)
    assert set(report.metrics) == set(body["metrics"])
    for name, value in report.metrics.items():
        sent = body["metrics"][name]
        assert not isinstance(sent, bool)
        assert math.isfinite(value)
        assert value == float(sent)


@examples(1800)
@given(agent_id=ids, body=st.one_of(push_bodies(), json_values))
def test_push_bodies(client: AppClient, staging: Staging, agent_id: str, body: Any) -> None:
    count("push_bodies")
    response = post_push(client, agent_id, dumps(body))
    check_staged(staging, response, agent_id, body)


@examples(900)
@given(
    kind=st.sampled_from(AGENT_KINDS),
    good=finite_metrics,
    name=valid_metric_names,
    bad=st.one_of(bad_numbers, wrong_type_values),
)
def test_one_bad_metric_value_is_named(
    client: AppClient, staging: Staging, kind: str, good: dict[str, float], name: str, bad: Any
) -> None:
    """NaN, ±inf, numbers past float range, or a wrong type: a 422 naming that metric."""
    count("bad_metric_value")
    body = {"type": kind, "metrics": {**good, name: bad}}
    response = post_push(client, "fuzz-agent", dumps(body))
    assert response.status_code == 422, (body, response.text)
    assert any(loc.startswith(f"body.metrics.{name}") for loc in problem_named(response)), response.text
    assert staging.drain_pushed() == []


@examples(500)
@given(
    field=st.sampled_from(["type", "interval_s", "host", "timestamp"]),
    value=st.one_of(bad_numbers, wrong_type_values, st.sampled_from(NOT_PUSHED_KINDS), st.floats(max_value=0.49)),
)
def test_one_bad_field_is_named(client: AppClient, staging: Staging, field: str, value: Any) -> None:
    """Unknown agent types, a negative, zero, huge or non-finite interval, a host too long: named."""
    count("bad_field")
    body: dict[str, Any] = {"type": "sensor", "metrics": {"temp": 21.5}, field: value}
    response = post_push(client, "fuzz-agent", dumps(body))
    if response.status_code == 202:  # a value of the right form after all (e.g. a short host)
        check_staged(staging, response, "fuzz-agent", body)
        assert field == "host" or (field, value) == ("timestamp", None), body
        return
    assert f"body.{field}" in problem_named(response), response.text
    assert staging.drain_pushed() == []


def batch(rng: random.Random) -> list[dict[str, Any]]:
    """Entries of a batch push: each agent id valid, odd or of a wrong type, each body as push_bodies."""
    makers = (valid_id, odd, wrong_type)
    return [{**push_body(rng), "agent_id": rng.choice(makers)(rng)} for _ in range(rng.randint(1, 4))]


@examples(800)
@given(entries=seeded(batch), wrapper=st.sampled_from(["reports", "reports", "other"]))
def test_batch_push(client: AppClient, staging: Staging, entries: list[dict[str, Any]], wrapper: str) -> None:
    count("batch_push")
    response = client.post("/api/v1/metrics", content=dumps({wrapper: entries}), headers=JSON)
    staged = staging.drain_pushed()
    if response.status_code == 202:
        assert wrapper == "reports"
        assert [r.agent_id for r in staged] == [e["agent_id"] for e in entries]
        assert all(math.isfinite(v) for r in staged for v in r.metrics.values())
    else:
        problem_named(response)
        assert staged == []  # all or nothing: one bad entry refuses the batch


@examples(300)
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.integers(1, 200_000).map(nested),
        st.integers(1, 100_000).map(nested_objects),
        st.text(max_size=200).map(str.encode),
        st.sampled_from([b"", b"{", b'{"type": "api", "metrics": {"a": 1}', b"\xff\xfe", b"null", b"NaN"]),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_raw_bodies(client: AppClient, staging: Staging, raw: bytes, content_type: str) -> None:
    """Bytes that are not JSON, JSON nested 200,000 deep, the wrong content type."""
    count("raw_bodies")
    response = client.post(
        "/api/v1/agents/fuzz-agent/metrics", content=raw, headers={**AUTH, "content-type": content_type}
    )
    problem_named(response)
    assert staging.drain_pushed() == []


async def chunks(raw: bytes) -> Any:
    for i in range(0, len(raw), 65536):
        yield raw[i : i + 65536]


@examples(40)
@given(
    size=st.integers(1_048_577, 6 * 1_048_576),
    declared=st.booleans(),
    fill=st.sampled_from([b"x", b"\xe2\x82\xac", b"[", b"9"]),
)
def test_multi_megabyte_bodies_are_a_413(
    client: AppClient, staging: Staging, size: int, declared: bool, fill: bytes
) -> None:
    """Over the 1 MiB limit, with a Content-Length or streamed without one (chunked)."""
    count("multi_mb_bodies")
    head = b'{"type": "api", "metrics": {"a": 1}, "host": "'
    raw = head + fill * ((size - len(head)) // len(fill) + 1) + b'"}'
    content: Any = raw if declared else chunks(raw)
    response = client.post("/api/v1/agents/fuzz-agent/metrics", content=content, headers=JSON)
    assert response.status_code == 413, response.text[:300]
    assert "VSMMON_MAX_BODY_BYTES" in problem_named(response)[0]
    assert staging.drain_pushed() == []


@examples(300)
@given(
    header=st.one_of(
        st.none(),
        st.sampled_from(["Bearer", "Bearer ", "bearer fuzz-token-012345678", "Basic fuzz-token-0123456789"]),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(lambda t: f"Bearer {t}"),
    ),
    body=push_bodies(),
)
def test_no_write_without_the_token(client: AppClient, staging: Staging, header: str | None, body: Any) -> None:
    count("wrong_token")
    headers = {"content-type": "application/json"} | ({"Authorization": header} if header is not None else {})
    response = client.post("/api/v1/agents/fuzz-agent/metrics", content=dumps(body), headers=headers)
    assert response.status_code in {401, 422}, response.text  # a 422 may come first: the body is read first
    problem_named(response)
    assert staging.drain_pushed() == []
