from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.agent.simulator import MB, MEMORY_LIMIT_BYTES, SimAgent, metrics_at
from vsmmon.analyse.forecast import capacity_plan
from vsmmon.analyse.growth import Growth, growth
from vsmmon.analyse.recommend import (
    Recommendation,
    dedupe,
    format_duration,
    recommend_for_capacity,
    recommend_for_memory,
    recommend_for_stall,
)
from vsmmon.analyse.trends import LinearFit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def leak_series(seed: int = 7) -> tuple[list[float], list[float]]:
    agent = SimAgent("sim-leak-0", "worker", "leak", seed=seed)
    ts = [5.0 * i for i in range(25)]
    return ts, [m["rss_bytes"] for m in (metrics_at(agent, t) for t in ts) if m is not None]


def test_a_leaking_worker_gets_a_restart_recommendation_naming_the_leak() -> None:
    ts, rss = leak_series()
    regime = growth(ts, rss, MEMORY_LIMIT_BYTES)
    assert regime is not None
    rec = recommend_for_memory("sim-leak-0", regime, MEMORY_LIMIT_BYTES, NOW)
    assert rec is not None
    assert rec.kind == "resource_adjustment"
    assert rec.target == "sim-leak-0"
    assert rec.action == {"command": "restart_worker"}
    assert "likely a leak" in rec.rationale
    assert "grows 1.0 MB/s" in rec.rationale
    assert "25 samples over 2 min" in rec.rationale
    assert "512 MB limit in 4 min" in rec.rationale  # ~292 s
    assert "worker_max_memory_per_child = 419430" in rec.rationale
    assert rec.confidence > 0.99
    assert rec.expires_at == NOW + timedelta(minutes=15)


def test_no_memory_recommendation_when_the_limit_is_far_or_not_approached() -> None:
    trend = LinearFit(1.0 * MB, 100.0 * MB, 0.01 * MB, 0.5 * MB, 60.0, 3e4, 25, 120.0)

    def regime(tte_s: float | None) -> Growth:
        return Growth(trend, 0, 120.0, True, tte_s)

    assert recommend_for_memory("w", regime(None), MEMORY_LIMIT_BYTES, NOW) is None
    assert recommend_for_memory("w", regime(7200.0), MEMORY_LIMIT_BYTES, NOW) is None
    assert recommend_for_memory("w", regime(7200.0), MEMORY_LIMIT_BYTES, NOW, horizon_s=86400.0) is not None
    with pytest.raises(ValueError, match="naive"):
        recommend_for_memory("w", regime(60.0), MEMORY_LIMIT_BYTES, datetime(2026, 11, 26))


def test_a_queue_outrunning_its_drain_gets_a_pool_grow_to_20() -> None:
    plan = capacity_plan(30.0, 2.0, 600.0, 8, 60.0)
    rec = recommend_for_capacity("emails", plan, NOW)
    assert rec is not None
    assert rec.kind == "resource_adjustment"
    assert rec.target == "emails"
    assert rec.action == {"command": "pool_grow", "n": 12, "concurrency": 20}
    assert "arrivals 30.0/s, drain 16.0/s (8 slots x 2.0/s), backlog 600 never drains" in rec.rationale
    assert "20 slots drain it within 1 min" in rec.rationale
    assert rec.confidence == 0.9


def test_capacity_beyond_one_worker_is_architectural_and_spare_capacity_an_optimization() -> None:
    scale_out = recommend_for_capacity("emails", capacity_plan(30.0, 2.0, 600.0, 8, 60.0), NOW, max_concurrency=16)
    assert scale_out is not None
    assert scale_out.kind == "architectural"
    assert scale_out.action == {"command": "scale_out", "workers": 2, "concurrency": 16}
    slow = recommend_for_capacity("q", capacity_plan(10.0, 2.0, 600.0, 8, 60.0), NOW)  # drains, but in 100 s
    assert slow is not None
    assert (slow.confidence, slow.action) == (0.7, {"command": "pool_grow", "n": 2, "concurrency": 10})
    assert "drains in 1 min 40 s" in slow.rationale
    shrink = recommend_for_capacity("q", capacity_plan(2.0, 2.0, 0.0, 8, 60.0), NOW)
    assert shrink is not None
    assert (shrink.kind, shrink.action) == ("optimization", {"command": "pool_shrink", "n": 7, "concurrency": 1})
    assert recommend_for_capacity("q", capacity_plan(12.0, 2.0, 0.0, 8, 60.0), NOW) is None


def test_dedupe_keeps_the_most_confident_per_fingerprint_in_first_seen_order() -> None:
    def rec(target: str, command: str, confidence: float) -> Recommendation:
        return Recommendation("resource_adjustment", target, {"command": command}, "r", confidence, NOW)

    a1, b = rec("w1", "restart_worker", 0.5), rec("w2", "restart_worker", 0.7)
    a2, a3 = rec("w1", "restart_worker", 0.9), rec("w1", "restart_worker", 0.9)
    assert a1.fingerprint == a2.fingerprint != b.fingerprint
    assert a1.fingerprint != rec("w1", "pool_grow", 0.5).fingerprint
    assert a1.fingerprint != replace(a1, kind="architectural").fingerprint
    kept = dedupe([a1, b, a2, a3])
    assert kept == [a2, b]
    assert kept[0] is a2


def test_recommendations_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="confidence"):
        Recommendation("optimization", "q", {"command": "x"}, "r", 1.5, NOW)
    with pytest.raises(ValueError, match="command"):
        Recommendation("optimization", "q", {"n": 1}, "r", 0.5, NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45.0, "45 s"), (400.0, "6 min 40 s"), (300.0, "5 min"), (7500.0, "2 h 5 min"), (3600.0, "1 h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_pool_grow_becomes_one_remote_control_action_per_consumer_smallest_pools_first() -> None:
    from vsmmon.analyse.recommend import for_consumers

    rec = recommend_for_capacity("emails", capacity_plan(30.0, 2.0, 600.0, 8, 60.0), NOW)  # +12 slots
    assert rec is not None
    split = for_consumers(rec, "emails", [("celery@b", 4), ("celery@a", 4)])
    assert [(r.target, r.action) for r in split] == [
        ("celery@a", {"command": "pool_grow", "destination": "celery@a", "n": 6, "queue": "emails"}),
        ("celery@b", {"command": "pool_grow", "destination": "celery@b", "n": 6, "queue": "emails"}),
    ]
    assert all(r.kind == "resource_adjustment" and r.expires_at == rec.expires_at for r in split)
    assert split[0].fingerprint != split[1].fingerprint
    assert "celery@a: pool 4 -> 10" in split[0].rationale
    uneven = for_consumers(rec, "emails", [("celery@big", 6), ("celery@small", 2)])
    assert [(r.target, r.action["n"]) for r in uneven] == [("celery@small", 6), ("celery@big", 6)]
    shrink = recommend_for_capacity("q", capacity_plan(2.0, 2.0, 0.0, 8, 60.0), NOW)  # -7 slots
    assert shrink is not None
    taken = for_consumers(shrink, "q", [("w1", 2), ("w2", 6)])
    assert [(r.target, r.action["n"]) for r in taken] == [("w2", 5), ("w1", 1)]  # each keeps one
    assert for_consumers(rec, "emails", []) == [rec]


def test_an_empty_queue_never_gets_more_processes_whatever_its_rates() -> None:
    # arrivals read above the drain over the window, yet nothing waits now: busy, not short
    assert recommend_for_capacity("q", capacity_plan(30.0, 2.0, 0.0, 8, 60.0), NOW) is None
    assert recommend_for_capacity("q", capacity_plan(30.0, 2.0, 0.0, 8, 60.0), NOW, max_concurrency=4) is None
    assert recommend_for_capacity("q", capacity_plan(30.0, 2.0, 1.0, 8, 60.0), NOW) is not None


def test_a_stalled_queue_with_every_slot_busy_gets_a_step_and_an_idle_or_empty_one_nothing() -> None:
    rec = recommend_for_stall("work", 9.0, 1.0, 1, NOW)
    assert rec is not None
    assert (rec.kind, rec.action) == ("resource_adjustment", {"command": "pool_grow", "n": 2, "concurrency": 3})
    assert "no task finished" in rec.rationale
    assert recommend_for_stall("work", 0.0, 1.0, 1, NOW) is None  # nothing waits
    assert recommend_for_stall("work", 9.0, 0.0, 1, NOW) is None  # a slot is free: not short, stuck elsewhere
