"""Shards of a collection cycle: stable slots, a partition for every shard count, one summary per cycle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.collect.shards import SLOTS, cycle_summary, owner, shard_count, slot_of, slots_of
from vsmmon.collect.staging import MemoryStaging
from vsmmon.models import AgentKind, AgentReport, CollectionSummary

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_an_agents_slot_is_the_same_in_every_process_and_version() -> None:
    # CRC-32, not hash(): PYTHONHASHSEED differs per process; a change here re-homes every agent mid-upgrade
    assert [slot_of(a) for a in ("s", "other", "sensor-1", "llm-00042")] == [11, 0, 3, 7]
    assert all(0 <= slot_of(f"agent-{i}") < SLOTS for i in range(1000))


@pytest.mark.parametrize("pattern", ["llm-{:05d}", "celery@w{}.host", "sensor-{}"])
def test_slots_spread_a_fleet_within_5_percent_of_an_even_share(pattern: str) -> None:
    counts = [0] * SLOTS
    for i in range(10_000):
        counts[slot_of(pattern.format(i))] += 1
    share = 10_000 / SLOTS
    assert max(counts) < 1.05 * share
    assert min(counts) > 0.95 * share


@pytest.mark.parametrize(
    ("work", "expected"),
    [(0, 1), (2500, 1), (2501, 2), (5000, 2), (5001, 4), (10_000, 4), (10_001, 8), (40_001, 16), (10**7, 16)],
)
def test_the_shard_count_is_the_smallest_power_of_two_within_the_per_shard_work(work: int, expected: int) -> None:
    assert shard_count(work, 2500) == expected


@pytest.mark.parametrize("shards", [1, 2, 4, 8, 16])
def test_every_slot_belongs_to_exactly_one_shard_whatever_the_count(shards: int) -> None:
    owned = [s for k in range(shards) for s in slots_of(k, shards)]
    assert sorted(owned) == list(range(SLOTS))


@pytest.mark.parametrize(("shard", "shards"), [(0, 3), (2, 2), (-1, 4), (0, 0)])
def test_a_shard_outside_its_count_is_refused(shard: int, shards: int) -> None:
    with pytest.raises(ValueError, match="shards must divide"):
        slots_of(shard, shards)


def test_the_asked_fleet_is_shard_zeros_and_pushed_agents_follow_their_slot() -> None:
    for kind in (AgentKind.CELERY_WORKER, AgentKind.HOST, AgentKind.BROKER, AgentKind.QUEUE):
        assert owner(kind, "s", 4) == 0  # slot 11 would be shard 3
    assert owner(AgentKind.SENSOR, "s", 4) == 3
    assert owner(AgentKind.LLM_WORKER, "s", 1) == 0
    assert owner(AgentKind.PIPELINE, "sensor-1", 2) == 1


def test_a_memory_buffer_drains_only_the_slots_asked_for() -> None:
    staging = MemoryStaging()
    staging.push([AgentReport(a, AgentKind.SENSOR, "h", {"x": 1.0}) for a in ("s", "other", "sensor-1")])
    assert [r.agent_id for r in staging.drain_pushed(slots_of(3, 4))] == ["s", "sensor-1"]
    assert staging.waiting_pushed() == 1
    assert [r.agent_id for r in staging.drain_pushed(slots_of(0, 4))] == ["other"]


def part(
    shard: int, shards: int, agents: int, aggregated: bool, unreachable: tuple[str, ...] = ()
) -> CollectionSummary:
    at = T0 + timedelta(seconds=shard)
    return CollectionSummary(uuid.uuid4(), T0, 10.0 * (shard + 1), agents, 20 * agents, unreachable, at,
                             at if aggregated else None, shard, shards)  # fmt: skip


def test_a_cycles_summary_sums_its_shards_and_is_aggregated_only_when_every_shard_is() -> None:
    zero, one = part(0, 3, 10, True, ("celery@gone",)), part(1, 3, 20, True)
    partial = cycle_summary([one, zero])
    assert (partial.id, partial.agent_count, partial.sample_count) == (zero.id, 30, 600)
    assert (partial.shards, partial.shards_stored, partial.aggregated_at) == (3, 2, None)  # shard 2 is not stored
    two = part(2, 3, 5, False)
    assert cycle_summary([zero, one, two]).aggregated_at is None  # stored, not yet aggregated
    whole = cycle_summary([zero, one, part(2, 3, 5, True)])
    assert (whole.agent_count, whole.shards_stored, whole.duration_ms) == (35, 3, 30.0)
    assert whole.aggregated_at == T0 + timedelta(seconds=2)
    assert whole.unreachable == ("celery@gone",)
    with pytest.raises(ValueError, match="at least one"):
        cycle_summary([])
