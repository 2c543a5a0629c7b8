from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.analyse.analysis import DueForecast, accuracy, observe
from vsmmon.analyse.forecast import smape

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_each_due_forecast_meets_the_observation_nearest_its_due_time_within_the_tolerance() -> None:
    points = [((T0 + 5 * i * S).timestamp(), 100.0 + i) for i in range(100)]  # every 5 s from 12:00:00
    due = [
        DueForecast(T0, "w", "memory_bytes", 300, 150.0),  # due 12:05:00: observed 160.0
        DueForecast(T0 + 2 * S, "w", "memory_bytes", 300, 150.0),  # due 12:05:02: nearest 12:05:00
        DueForecast(T0 + 4 * S, "w", "memory_bytes", 300, 150.0),  # due 12:05:04: nearest 12:05:05
        DueForecast(T0, "w", "memory_bytes", 3600, 1.0),  # due 13:00: nothing observed near it
        DueForecast(T0, "other", "memory_bytes", 300, 1.0),  # no series
    ]
    scored = observe(due, {("w", "memory_bytes"): points}, tolerance_s=5.0)
    assert [(f.at, f.horizon_s, actual) for f, actual in scored] == [
        (T0, 300, 160.0), (T0 + 2 * S, 300, 160.0), (T0 + 4 * S, 300, 161.0),
    ]  # fmt: skip
    assert observe(due[:1], {("w", "memory_bytes"): points[70:]}, tolerance_s=5.0) == []  # starts at 12:05:50


def test_accuracy_is_the_smape_of_predicted_against_actual() -> None:
    assert accuracy([]) is None
    assert accuracy([(110.0, 100.0), (5.0, 5.0)]) == pytest.approx(smape([100.0, 5.0], [110.0, 5.0]))
    assert accuracy([(110.0, 100.0), (5.0, 5.0)]) == pytest.approx((10 / 210) / 2)


def test_due_forecasts_scored_a_batch_of_agents_at_a_time_meet_the_same_observations_as_the_whole_fleet() -> None:
    from vsmmon.workers.analyse import observed_in

    interval_s = 5.0
    first = int(T0.timestamp() // interval_s)
    memory = {f"w{i}": {first + c: 100.0 * i + c for c in range(100)} for i in range(6)}  # {cycle: bytes}
    due: dict[str, list[DueForecast]] = {
        f"w{i}": [DueForecast(T0, f"w{i}", "memory_bytes", 300, 1.0),
                  DueForecast(T0 + 3 * S, f"w{i}", "memory_bytes", 60, 1.0)]
        for i in range(0, 6, 2)
    }  # fmt: skip
    due["gone"] = [DueForecast(T0, "gone", "memory_bytes", 300, 1.0)]  # an agent no batch reads: not scored
    whole = observed_in(due, memory, interval_s, tolerance_s=interval_s)
    assert sorted((f.agent_id, f.horizon_s, v) for f, v in whole) == [
        (a, h, 100.0 * int(a[1:]) + c) for a in ("w0", "w2", "w4") for h, c in ((60, 13), (300, 60))
    ]  # 12:01:03 is nearest 12:01:05 (cycle 13); 12:05:00 is cycle 60
    batched = [p for batch in (["w0", "w1"], ["w2", "w3"], ["w4", "w5"])
               for p in observed_in(due, {a: memory[a] for a in batch}, interval_s, interval_s)]  # fmt: skip
    assert sorted(batched, key=str) == sorted(whole, key=str)
