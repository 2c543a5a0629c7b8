"""Discovery cycles come once in each 30 s slot of wall-clock time, in Redis as in memory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.collect.shards import slot_of
from vsmmon.collect.staging import MemoryStaging, RedisStaging, Staging, pushed_key
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


def test_a_pushed_report_that_cannot_be_read_is_dropped_counted_and_logged(
    settings: Settings, clean_services: None, caplog: pytest.LogCaptureFixture
) -> None:
    from vsmmon import names
    from vsmmon.models import AgentKind, AgentReport

    staging = RedisStaging.from_url(settings.require("redis_url"))
    good = AgentReport("sensor-1", AgentKind.SENSOR, "h", {"temp_c": 21.5}, "1.0")
    staging.push([good])
    staging.client.rpush(names.PUSHED_KEY, b'{"not": "a report"}', b"\xff\xfe")  # a foreign writer's entries
    staging.push([good])
    with caplog.at_level("WARNING", logger="vsmmon.collect.staging"):
        taken = staging.drain_pushed()
    assert [r.agent_id for r in taken] == ["sensor-1", "sensor-1"]  # the good ones still reach the cycle
    assert int(staging.client.get(names.PUSHED_REJECTED_KEY) or 0) == 2
    assert "2 staged pushed reports could not be read" in caplog.text
    assert staging.drain_pushed() == []  # taken once


def test_reports_pushed_past_the_buffer_cap_are_counted(
    settings: Settings, clean_services: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsmmon import names
    from vsmmon.collect import staging as module
    from vsmmon.models import AgentKind, AgentReport

    monkeypatch.setattr(module, "SLOT_MAX", 3)  # the cap of each buffer slot: one agent's reports share one
    staging = RedisStaging.from_url(settings.require("redis_url"))
    reports = [AgentReport("s", AgentKind.SENSOR, "h", {"x": float(i)}) for i in range(5)]
    staging.push(reports)
    assert slot_of("other") != slot_of("s")
    staging.push([AgentReport("other", AgentKind.SENSOR, "h", {"x": 9.0})])  # another slot: its own cap
    drained = staging.drain_pushed()
    assert [r.metrics["x"] for r in drained if r.agent_id == "s"] == [2.0, 3.0, 4.0]  # the newest are kept
    assert [r.agent_id for r in drained if r.agent_id == "other"] == ["other"]
    assert int(staging.client.get(names.PUSHED_DROPPED_KEY) or 0) == 2


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_the_workers_seen_forget_a_worker_unseen_past_the_horizon(
    kind: str, settings: Settings, clean_services: None
) -> None:
    from vsmmon import names

    redis_staging = RedisStaging.from_url(settings.require("redis_url"), horizon_s=900)
    staging: Staging = redis_staging if kind == "redis" else MemoryStaging(seen_horizon_s=900)
    staging.mark_seen(["celery@gone", "celery@stays"], SLOT_START)
    staging.mark_seen(["celery@stays"], SLOT_START + timedelta(seconds=600))
    staging.mark_seen(["celery@new"], SLOT_START + timedelta(seconds=901))  # celery@gone: last seen 901 s ago
    assert staging.workers_seen_since(SLOT_START - timedelta(days=1)) == {"celery@stays", "celery@new"}
    if kind == "redis":
        assert sorted(redis_staging.client.hkeys(names.WORKERS_KEY)) == [b"celery@new", b"celery@stays"]
        assert 0 < redis_staging.client.ttl(names.WORKERS_KEY) <= 900  # gone with the collector


def test_every_key_the_staging_buffer_writes_expires(
    settings: Settings, clean_services: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsmmon import names
    from vsmmon.collect import staging as module
    from vsmmon.models import AgentKind, AgentReport, Collection

    monkeypatch.setattr(module, "SLOT_MAX", 1)
    staging = RedisStaging.from_url(settings.require("redis_url"), horizon_s=900)
    report = AgentReport("sensor-1", AgentKind.SENSOR, "h", {"temp_c": 21.5})
    staging.put(Collection(uuid.uuid4(), SLOT_START, 1.0, ()))
    staging.mark_seen(["celery@w"], SLOT_START)
    staging.claim_discovery(30.0, SLOT_START)
    staging.push([report, report])  # one over the cap: dropped and counted
    staging.client.rpush(names.PUSHED_KEY, b"\xff")  # a foreign writer's entry: rejected and counted
    staging.drain_pushed()
    staging.push([report])  # one left waiting for a cycle
    staging.count_lost()
    staging.count_refused(2)
    ttls = {key.decode(): staging.client.ttl(key) for key in staging.client.scan_iter(match="vsm:*")}
    assert len(ttls) == 8, ttls  # staged, workers, discovery, pushed and the four counters
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert ttls[pushed_key(slot_of("sensor-1"))] <= 900
    counters = (names.LOST_COLLECTIONS_KEY, names.REFUSED_REPORTS_KEY, names.PUSHED_DROPPED_KEY)
    assert all(ttls[k] > 6 * 86400 for k in (*counters, names.PUSHED_REJECTED_KEY))  # while the pipeline runs
