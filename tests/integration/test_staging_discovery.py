"""Discovery cycles come once in each 30 s slot of wall-clock time, in Redis as in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.collect.staging import MemoryStaging, RedisStaging, Staging
from vsmmon.config import Settings

SLOT_START = datetime(2026, 11, 27, 4, 30, 0, tzinfo=UTC)  # a multiple of 30 s since the epoch


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_the_first_cycle_of_a_slot_discovers(kind: str, settings: Settings, clean_services: None) -> None:
    staging: Staging = RedisStaging.from_url(settings.require("redis_url")) if kind == "redis" else MemoryStaging()
    at = SLOT_START + timedelta(milliseconds=40)  # a cycle a little into its slot
    assert staging.claim_discovery(30.0, at) is True
    assert staging.claim_discovery(30.0, at + timedelta(seconds=25)) is False  # same slot
    # the cycle 30 s later is in the next slot, though a claim made 40 ms into the last one is not 30 s old yet
    assert staging.claim_discovery(30.0, SLOT_START + timedelta(seconds=30, milliseconds=10)) is True
    assert staging.claim_discovery(30.0, SLOT_START + timedelta(seconds=59)) is False
