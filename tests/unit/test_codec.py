import uuid
from datetime import UTC, datetime

import pytest

from vsmmon.codec import collection_from_json, collection_to_json
from vsmmon.errors import InvalidInput
from vsmmon.models import AgentKind, AgentReport, Collection


def test_a_collection_survives_the_round_trip() -> None:
    c = Collection(
        uuid.uuid4(),
        datetime(2026, 11, 26, 12, 0, 1, 250000, tzinfo=UTC),
        33.5,
        (AgentReport("celery@a", AgentKind.CELERY_WORKER, "h", {"cpu_percent": 1.5}, "0.1", {"x": "y"}),),
        ("celery@b",),
    )
    assert collection_from_json(collection_to_json(c)) == c


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"id": "nope"}', b"\x80\x04\x95", '{"id": "%s", "started_at": "2026-01-01T00:00:00"}'],
)
def test_anything_else_is_refused_with_a_clear_error(text: str | bytes) -> None:
    if isinstance(text, str) and "%s" in text:
        text = text % uuid.uuid4()
    with pytest.raises(InvalidInput, match="collection: not a staged collection"):
        collection_from_json(text)


def test_the_workers_that_said_goodbye_survive_staging() -> None:
    c = Collection(uuid.uuid4(), datetime(2026, 12, 3, tzinfo=UTC), 12.0, (), ("w2@h",), 5.0, ("w1@h", "w3@h"))
    assert collection_from_json(collection_to_json(c)) == c
