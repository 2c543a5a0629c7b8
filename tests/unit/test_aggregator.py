from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vsmmon.models import ROLLUP_WINDOWS_S, Rollup, Sample
from vsmmon.sketch import ALPHA
from vsmmon.store.aggregator import BASE_WINDOW_S, aggregate, combine, fold, window_start

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
    rollups = {(r.agent_id, r.window_s, r.window_start): r for r in aggregate(samples, ROLLUP_WINDOWS_S)}
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


def test_a_collection_is_aggregated_into_its_5_min_window_only() -> None:
    samples = [Sample(T0 + timedelta(seconds=5 * i), "a", "cpu", float(i)) for i in range(3)]
    assert {(r.window_s, r.count) for r in aggregate(samples)} == {(BASE_WINDOW_S, 3)}


spread = st.lists(st.floats(0, 3 * 86400, allow_nan=False), min_size=1, max_size=80)


@given(spread, values)
def test_folding_5_min_windows_into_hours_and_hours_into_days_equals_aggregating_directly(
    offsets: list[float], xs: list[float]
) -> None:
    samples = [Sample(T0 + timedelta(seconds=o), "a", "m", x) for o, x in zip(offsets, xs, strict=False)]
    base = aggregate(samples)
    for coarse, finer in ((3600, base), (86400, fold(base, 3600))):
        folded = {r.window_start: r for r in fold(finer, coarse)}
        direct = {r.window_start: r for r in aggregate(samples, [coarse])}
        assert folded.keys() == direct.keys()
        for start, d in direct.items():
            f = folded[start]
            assert (f.count, f.min, f.max, f.last_ts, f.sketch) == (d.count, d.min, d.max, d.last_ts, d.sketch)
            assert f.last in {s.value for s in samples if s.ts == d.last_ts}
            assert np.isclose(f.sum, d.sum, rtol=1e-9, atol=1e-6)


def test_a_rollup_carries_percentiles_within_the_sketch_accuracy() -> None:
    xs = np.random.default_rng(5).gamma(2.0, 30.0, size=60 * 12).tolist()  # an hour at 5 s
    samples = [Sample(T0 + timedelta(seconds=5 * i), "a", "runtime", x) for i, x in enumerate(xs)]
    [hour] = fold(aggregate(samples), 3600)
    for q in (0.5, 0.95, 0.99):
        truth = float(np.percentile(xs, 100 * q, method="lower"))
        assert abs(hour.quantile(q) - truth) <= ALPHA * truth  # type: ignore[operator]


def test_combine_merges_parts_of_a_window_and_orders_by_window() -> None:
    early = aggregate([Sample(T0, "a", "m", 1.0)])
    late = aggregate(
        [Sample(T0 + timedelta(minutes=7), "a", "m", 5.0), Sample(T0 + timedelta(seconds=5), "a", "m", 3.0)]
    )
    [first, second] = combine([*late, *early])
    assert (first.window_start, first.count, first.max, second.count) == (T0, 2, 3.0, 1)


def test_folding_into_a_window_that_is_not_coarser_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="does not fold"):
        fold(aggregate([Sample(T0, "a", "m", 1.0)], [3600]), 300)
