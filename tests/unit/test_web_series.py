"""The dashboard's chart arithmetic (vsmmon/web/series.py), checked against hand-worked values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.models import Rollup
from vsmmon.web import series as s

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_rate_of_a_counter_skips_a_reset() -> None:
    points = [(0.0, 100.0), (5.0, 150.0), (10.0, 160.0), (15.0, 4.0), (20.0, 24.0)]
    assert s.rate(points) == [(5.0, 10.0), (10.0, 2.0), (20.0, 4.0)]


def test_summed_aligns_on_the_first_series_timestamps() -> None:
    main = [(0.0, 1.0), (5.0, 2.0), (10.0, 3.0)]
    children = [(5.0, 10.0), (10.0, 20.0), (15.0, 99.0)]
    assert s.summed([main, children]) == [(0.0, 1.0), (5.0, 12.0), (10.0, 23.0)]
    assert s.summed([]) == []


def test_combine_by_recipe() -> None:
    parts = {"rss_bytes": [(0.0, 1.0)], "children_rss_bytes": [(0.0, 2.0)]}
    assert s.combine(s.RECIPES[s.Chart.MEMORY], parts) == {"rss_bytes+children_rss_bytes": [(0.0, 3.0)]}
    counters = {"tasks_succeeded_total": [(0.0, 0.0), (5.0, 10.0)], "tasks_failed_total": [(0.0, 0.0), (5.0, 5.0)]}
    assert s.combine(s.RECIPES[s.Chart.THROUGHPUT], counters) == {"tasks_succeeded+tasks_failed /s": [(5.0, 3.0)]}
    latency = {"task_runtime_p95_s": [(0.0, 0.2)], "queue_wait_p95_s": []}
    assert s.combine(s.RECIPES[s.Chart.LATENCY], latency) == {"task_runtime_p95_s": [(0.0, 0.2)]}
    assert s.combine(s.RECIPES[s.Chart.MEMORY], {}) == {}


def test_rollups_give_window_means_or_a_counter_last_value() -> None:
    rollups = [
        Rollup("a", "m", 300, T0, 4, 1.0, 7.0, 12.0, 7.0, T0 + timedelta(seconds=290)),
        Rollup("a", "m", 300, T0 + timedelta(minutes=5), 2, 8.0, 9.0, 17.0, 9.0, T0 + timedelta(seconds=595)),
    ]
    assert s.rollup_points(rollups, counter=False) == [(T0.timestamp(), 3.0), (T0.timestamp() + 300, 8.5)]
    assert s.rollup_points(rollups, counter=True) == [(T0.timestamp() + 290, 7.0), (T0.timestamp() + 595, 9.0)]


def test_projection_follows_holt_and_stops_at_zero() -> None:
    rising = s.projection(100.0, 10.0, 0.5, 300, steps=3)
    assert rising == [(100.0, 10.0), (200.0, 60.0), (300.0, 110.0), (400.0, 160.0)]
    falling = s.projection(0.0, 10.0, -0.1, 300, steps=3)
    assert [v for _, v in falling] == pytest.approx([10.0, 0.0, 0.0, 0.0])


def test_since_drops_old_and_non_finite_points() -> None:
    assert s.since([(1.0, 1.0), (2.0, float("nan")), (3.0, 3.0)], 2.0) == [(3.0, 3.0)]
