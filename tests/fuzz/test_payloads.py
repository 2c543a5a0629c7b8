"""Fuzzing what the workers read from Redis and their messages: staged collections, pushed reports,
and the persist task's argument.

A reader returns a valid value or raises `InvalidInput` naming what is wrong — never another exception
(a RecursionError or OverflowError escaping would fail the task without saying why). A persist task given
a bad id or a corrupt staged collection fails without writing anything.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import count, examples
from tests.fuzz.strategies import (
    dumps,
    ids,
    json_values,
    nested,
    nested_objects,
    number,
    odd,
    odd_text,
    seeded,
    valid_id,
    wrong_type,
)
from vsmmon import names
from vsmmon.codec import collection_from_json, report_from_json
from vsmmon.config import Settings
from vsmmon.errors import InvalidInput, NotFound, VsmmonError
from vsmmon.models import AgentKind
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

KINDS = [k.value for k in AgentKind]
T = TypeVar("T")


def spoil(rng: random.Random, raw: dict[str, Any], most: int, odd_values: tuple[str, ...]) -> None:
    """Remove, or give a wrong value to, up to `most` fields."""
    for key in rng.sample(sorted(raw), rng.randint(0, most)):
        if rng.random() < 0.5:
            del raw[key]
        else:
            raw[key] = rng.choice((wrong_type(rng), number(rng), *odd_values))


def read_or_refused(reader: Callable[[bytes], T], text: bytes, field: str) -> T | None:
    """What `reader` reads, or None when it refused the text with an InvalidInput naming `field`."""
    try:
        return reader(text)
    except InvalidInput as e:
        refused = e
    assert (refused.field, bool(refused.problem)) == (field, True)
    return None


def report_dict(rng: random.Random) -> dict[str, Any]:
    """A pushed report as `report_to_json` writes it, with any field possibly wrong or missing."""
    report: dict[str, Any] = {
        "agent_id": valid_id(rng), "kind": rng.choice(KINDS), "host": "h", "version": "1",
        "metrics": {odd(rng): rng.uniform(-1e9, 1e9) for _ in range(rng.randint(0, 4))}, "errors": {},
        "queues": [], "config_hash": "", "interval_s": 5.0,
    }  # fmt: skip
    spoil(rng, report, 3, ("toaster", "HOST"))
    if rng.random() < 0.25:
        report["metrics"] = {"m": rng.choice((number(rng, bad=True), wrong_type(rng)))}
    return report


report_dicts = seeded(report_dict)
texts = st.one_of(
    st.builds(dumps, st.one_of(report_dicts, json_values)),
    st.binary(max_size=200),
    st.integers(1, 100_000).map(nested),
    st.integers(1, 100_000).map(nested_objects),
    st.text(max_size=100).map(str.encode),
)


@examples(1800)
@given(text=texts)
def test_a_pushed_report_is_read_or_refused_by_name(text: bytes) -> None:
    count("report_from_json")
    report = read_or_refused(report_from_json, text, "report")
    if report is None:
        return
    assert all(math.isfinite(v) for v in report.metrics.values())
    assert isinstance(report.kind, AgentKind)


def collection_text(rng: random.Random) -> bytes:
    raw: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128))), "started_at": "2026-11-26T12:00:00+00:00",
        "duration_ms": 3.0, "unreachable": [], "interval_s": 5.0,
        "reports": [report_dict(rng) for _ in range(rng.randint(0, 3))],
    }  # fmt: skip
    spoil(rng, raw, 2, ("2026-11-26T12:00:00", "x"))
    return dumps(raw)


collection_texts = seeded(collection_text)


@examples(1200)
@given(text=st.one_of(collection_texts, texts))
def test_a_staged_collection_is_read_or_refused_by_name(text: bytes) -> None:
    count("collection_from_json")
    collection = read_or_refused(collection_from_json, text, "collection")
    if collection is None:
        return
    assert collection.started_at.tzinfo is not None
    assert all(math.isfinite(v) for r in collection.reports for v in r.metrics.values())


@pytest.fixture
def pipeline_app(settings: Settings, unchanged_database: PostgresStore) -> PipelineApp:
    return create_app(settings)


@pytest.fixture
def raw_redis(settings: Settings) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(settings.require("redis_url"))
    yield conn
    conn.close()


@examples(200)
@given(staged=st.one_of(collection_texts, texts), as_id=st.booleans(), bad_id=st.one_of(odd_text, ids))
def test_persist_refuses_a_bad_id_or_a_corrupt_staged_collection(
    pipeline_app: PipelineApp, raw_redis: redis.Redis, staged: bytes, as_id: bool, bad_id: str
) -> None:
    """The task fails (no retry, nothing stored) naming the id or the staged text's problem."""
    count("persist_task")
    persist = pipeline_app.tasks[names.PERSIST_COLLECTION]
    if as_id:
        try:
            uuid.UUID(bad_id)
            return  # a well-formed id after all
        except ValueError:
            pass
        result = persist.apply(args=(bad_id,))
        assert result.failed()
        assert isinstance(result.result, ValueError), result.result
        return
    cid = uuid.uuid4()
    raw_redis.set(f"vsm:staged:{cid}", staged, ex=60)
    try:
        collection_from_json(staged)
        return  # a readable collection would be stored: not this test's subject
    except InvalidInput:
        pass
    result = persist.apply(args=(str(cid),))
    assert result.failed()
    # Celery hands back the nearest exception it can rebuild (VsmmonError), with InvalidInput's message
    assert isinstance(result.result, VsmmonError), result.result
    assert str(result.result).startswith("collection: not a staged collection"), result.result
    with pytest.raises(NotFound):
        pipeline_app.context().store.get_collection(cid)


def test_json_module_limits_the_readers_rely_on() -> None:
    """Deep nesting makes json raise RecursionError and huge integers make float() overflow: the two
    errors the readers must turn into InvalidInput (the cases above hit both)."""
    with pytest.raises(RecursionError):
        json.loads(nested(100_000))
    with pytest.raises(OverflowError):
        float(10**400)
