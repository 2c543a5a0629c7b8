"""The real-time window on real Redis: rings per series, current slots only, bounded memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.realtime import RealtimeWindow

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture
def client(settings: Settings, clean_services: None) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(settings.require("redis_url"))
    yield c
    c.close()


def collection(at: datetime, agents: int = 2, metrics: int = 2, base: float = 0.0) -> Collection:
    reports = tuple(
        AgentReport(f"a{i}", AgentKind.WORKER, "h", {f"m{k}": base + i + k for k in range(metrics)})
        for i in range(agents)
    )
    return Collection(uuid.uuid4(), at, 1.0, reports)


def test_points_come_back_in_order_and_only_from_the_window(client: redis.Redis) -> None:
    window = RealtimeWindow(client, interval_s=5, window_s=60)  # 12 slots
    for n in range(20):  # 100 s: the first 8 cycles were overwritten
        window.write(collection(T0 + n * 5 * S, base=float(n)))
    now = T0 + 19 * 5 * S
    points = window.read("a1", "m0", now)
    assert [p.value for p in points] == [float(n + 1) for n in range(8, 20)]
    assert points[0].ts == T0 + 8 * 5 * S
    assert [p.value for p in window.read("a1", "m0", now, span_s=10)] == [18.0, 19.0, 20.0]  # 3 cycles


def test_a_value_past_the_metric_range_costs_its_sample_and_no_one_elses(client: redis.Redis) -> None:
    """Screened at ingest; still, a report built in code with 1e39 must not fail the write of the whole cycle."""
    window = RealtimeWindow(client, interval_s=5, window_s=60)
    bad = AgentReport("bad", AgentKind.WORKER, "h", {"m0": 1e39, "m1": 2.0})
    written = window.write(Collection(uuid.uuid4(), T0, 1.0, (bad, *collection(T0).reports)))
    assert written == 5
    assert [p.value for p in window.read("bad", "m1", T0)] == [2.0]
    assert window.read("bad", "m0", T0) == []
    assert [p.value for p in window.read("a1", "m1", T0)] == [2.0]


def test_a_silent_agents_old_slots_are_not_current(client: redis.Redis) -> None:
    window = RealtimeWindow(client, interval_s=5, window_s=60)
    window.write(collection(T0, base=1.0))
    assert window.read("a0", "m0", T0 + 30 * S) == [window.read("a0", "m0", T0)[0]]
    assert window.read("a0", "m0", T0 + 61 * S) == []  # older than the window: gone
    assert window.read("nobody", "m0", T0) == []


def test_the_footprint_for_1000_agents_by_20_metrics_stays_well_under_the_seed_budget(client: redis.Redis) -> None:
    window = RealtimeWindow(client, interval_s=5, window_s=3600)
    last_slot = T0 + (window.slots - 1 - window.cycle_of(T0) % window.slots) * 5 * S  # allocates whole rings
    window.write(collection(last_slot, agents=100, metrics=20))
    per_100_agents = window.memory_bytes(sample=300)
    projected = per_100_agents * 10
    assert 80e6 < projected < 160e6, projected  # 8-byte slots: 720 x 8 x 20,000 series = 115 MB of values


def test_every_ring_has_its_expiry_from_its_first_write(client: redis.Redis) -> None:
    window = RealtimeWindow(client, interval_s=5, window_s=3600)  # expiries renewed at every 60th of 720 slots
    at = T0 + 7 * 5 * S
    assert window.cycle_of(at) % window.slots % 60 != 0  # a slot that renews nothing
    window.write(collection(at, agents=2, metrics=2))  # an agent that reports once, then stops
    keys = list(client.scan_iter(match="vsm:rt8:*"))
    assert len(keys) == 2 * (2 + 1)  # each agent's metrics and its cycle ring
    ttls = {key: client.ttl(key) for key in keys}
    assert all(0 < ttl <= window.ttl_s for ttl in ttls.values()), ttls
    later = T0 + 8 * 5 * S  # a metric first reported later, by a known agent, also off a renewal slot
    window.write(Collection(uuid.uuid4(), later, 1.0, (AgentReport("a0", AgentKind.WORKER, "h", {"new": 1.0}),)))
    assert 0 < client.ttl("vsm:rt8:a0\x00new") <= window.ttl_s


class CountingRedis(redis.Redis):
    """Counts round trips: direct commands and pipeline executions."""

    round_trips = 0

    def execute_command(self, *args: object, **options: object) -> object:
        CountingRedis.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: object = None) -> redis.client.Pipeline:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)  # type: ignore[arg-type]
        run = pipe.execute

        def execute(raise_on_error: bool = True) -> list[object]:
            CountingRedis.round_trips += 1
            return run(raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe


def test_a_prefetch_reads_many_series_in_one_round_trip_with_the_same_points(
    settings: Settings, client: redis.Redis
) -> None:
    counting = CountingRedis.from_url(settings.require("redis_url"))
    window = RealtimeWindow(counting, interval_s=5, window_s=60)
    for n in range(15):
        window.write(collection(T0 + n * 5 * S, agents=300, metrics=3, base=float(n)))  # 300 x 3: 1,200 keys
    now = T0 + 14 * 5 * S
    series = [(f"a{i}", f"m{k}") for i in range(300) for k in range(3)] + [("nobody", "m0")]
    before = CountingRedis.round_trips
    batch = window.prefetch(series)
    assert CountingRedis.round_trips - before == 1  # 1,202 keys in 3 MGETs, one pipeline
    read_from_batch = {s: batch.read(*s, now, 30) for s in series}
    assert CountingRedis.round_trips - before == 1  # reading the batch costs nothing more
    assert read_from_batch == {s: window.read(*s, now, 30) for s in series}
    assert len(read_from_batch[("a7", "m2")]) == 7  # 30 s at 5 s: 7 cycles
    assert read_from_batch[("nobody", "m0")] == []
    assert batch.read("a1", "m9", now) == []  # not prefetched: read from the window (and absent)
    counting.close()


def test_a_counter_past_2_to_the_24_reads_back_exactly(client: redis.Redis) -> None:
    """A float32 slot read a counter at 1e9 that rose by 60 as a rise of 64: a slow queue's rate was wrong."""
    window = RealtimeWindow(client, interval_s=5, window_s=60)
    for i, value in enumerate((1_000_000_000.0, 1_000_000_060.0, 2.0**53)):
        report = AgentReport("w", AgentKind.WORKER, "h", {"tasks_succeeded_total": value})
        window.write(Collection(uuid.uuid4(), T0 + i * 5 * S, 1.0, (report,)))
    values = [p.value for p in window.read("w", "tasks_succeeded_total", T0 + 10 * S)]
    assert values == [1_000_000_000.0, 1_000_000_060.0, 2.0**53]
    assert values[1] - values[0] == 60.0


@pytest.mark.parametrize("cycles", [3, 7, 12, 19])  # a ring still growing (its first hour), full, wrapped
def test_values_and_cycles_reads_give_the_points_read_gives(client: redis.Redis, cycles: int) -> None:
    window = RealtimeWindow(client, interval_s=5, window_s=60)  # 12 slots
    start = T0 + 5 * 5 * S  # a ring whose first write is not at slot 0: shorter than the window at first
    for n in range(cycles):
        if n != 2:  # a missed cycle: a hole in the ring
            window.write(collection(start + n * 5 * S, base=float(n)))
    now = start + (cycles - 1) * 5 * S
    prefetched = window.prefetch([("a1", "m0")])
    for span_s in (None, 10.0, 30.0):
        points = window.read("a1", "m0", now, span_s)
        assert points, span_s
        expected_cycles = {int(p.ts.timestamp() // 5): p.value for p in points}
        for reader in (window, prefetched):
            assert reader.read_values("a1", "m0", now, span_s) == [p.value for p in points]
            assert reader.read_cycles("a1", "m0", now, span_s) == expected_cycles
    assert 3.0 not in window.read_values("a1", "m0", now)  # the missed cycle's value (n=2: 2 + 1) is not there
