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
