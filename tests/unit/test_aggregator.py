from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vsmmon.aggregator import aggregate, window_start
from vsmmon.models import Rollup, Sample

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_window_start_aligns_to_the_window() -> None:
    ts = datetime(2026, 11, 26, 12, 7, 31, 500, tzinfo=UTC)
    assert window_start(ts, 300) == datetime(2026, 11, 26, 12, 5, tzinfo=UTC)
    assert window_start(ts, 3600) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert window_start(ts, 86400) == datetime(2026, 11, 26, tzinfo=UTC)


def test_one_rollup_per_agent_metric_and_window() -> None:
    samples = [Sample(T0 + timedelta(seconds=5 * i), "a", "cpu", v) for i, v in enumerate([4.0, 8.0, 6.0])] + [
        Sample(T0 + timedelta(minutes=6), "a", "cpu", 10.0),
        Sample(T0, "b", "cpu", 1.0),
    ]
    rollups = {(r.agent_id, r.window_s, r.window_start): r for r in aggregate(samples)}
    first = rollups[("a", 300, T0)]
    assert (first.count, first.min, first.max, first.sum, first.last) == (3, 4.0, 8.0, 18.0, 6.0)
    assert rollups[("a", 300, T0 + timedelta(minutes=5))].count == 1
    hour = rollups[("a", 3600, T0)]
    assert (hour.count, hour.mean, hour.last) == (4, 7.0, 10.0)
    assert rollups[("b", 86400, window_start(T0, 86400))].count == 1
    assert len(rollups) == 2 * 3 + 1  # a: two 5-min windows + 1 h + 24 h; b: 5 min + 1 h + 24 h


values = st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=60)


@given(values)
def test_rollup_statistics_match_numpy(xs: list[float]) -> None:
    samples = [Sample(T0 + timedelta(seconds=i), "a", "m", x) for i, x in enumerate(xs)]
    [rollup] = list(aggregate(samples, windows_s=[86400]))
    assert rollup.count == len(xs)
    assert rollup.min == np.min(xs)
    assert rollup.max == np.max(xs)
    assert rollup.last == xs[-1]
    assert np.isclose(rollup.sum, np.sum(xs), rtol=1e-9, atol=1e-6)


@given(values, st.integers(0, 60))
def test_merging_rollups_of_two_halves_equals_one_rollup_of_the_whole(xs: list[float], cut: int) -> None:
    samples = [Sample(T0 + timedelta(seconds=i), "a", "m", x) for i, x in enumerate(xs)]
    cut = min(cut, len(samples))
    whole = aggregate(samples, windows_s=[86400])
    parts: dict[tuple[str, str, int, datetime], Rollup] = {}
    for half in (samples[cut:], samples[:cut]):  # merge order must not matter
        for r in aggregate(half, windows_s=[86400]):
            key = (r.agent_id, r.metric, r.window_s, r.window_start)
            parts[key] = parts[key].merge(r) if key in parts else r
    [merged] = parts.values()
    [expected] = whole
    assert (merged.count, merged.min, merged.max, merged.last, merged.last_ts) == (
        expected.count, expected.min, expected.max, expected.last, expected.last_ts,
    )  # fmt: skip
    assert np.isclose(merged.sum, expected.sum, rtol=1e-9, atol=1e-6)
