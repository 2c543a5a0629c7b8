import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsmmon.analyse.trends import (
    Direction,
    analyse,
    change_point,
    direction_of,
    fit_line,
    holt,
    robust_anomaly,
    t_cdf,
    t_quantile,
)

gaps = st.floats(0.5, 100.0)
values = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def series(draw: st.DrawFn, min_size: int = 2) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_size, 60))
    steps = draw(st.lists(gaps, min_size=n, max_size=n))
    ts = [float(t) for t in np.cumsum(steps) - steps[0]]
    return ts, draw(st.lists(values, min_size=n, max_size=n))


def least_squares(ts_s: list[float], values: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, standard error of the slope) of `fit_line`, as the checks below compare them."""
    fit = fit_line(ts_s, values)
    return fit.slope, fit.intercept, fit.slope_stderr


def numpy_stderr(ts: list[float], ys: list[float]) -> float:
    design = np.column_stack([ts, np.ones(len(ts))])
    coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
    residuals = np.asarray(ys) - design @ coef
    s2 = residuals @ residuals / (len(ts) - 2)
    return float(np.sqrt(s2 * np.linalg.inv(design.T @ design)[0, 0]))


def slope_tolerance(ts: list[float], ys: list[float]) -> float:
    # rounding moves a slope by ~eps * |y| / span; 1e-9 of that scale leaves room for numpy's own rounding
    return 1e-9 * (max(abs(y) for y in ys) + 1.0) / (ts[-1] - ts[0])


def test_slope_and_intercept_equal_numpy_polyfit_on_seeded_random_series() -> None:
    rng = np.random.default_rng(20261126)
    for _ in range(500):
        n = int(rng.integers(2, 300))
        ts = np.sort(rng.uniform(0, 3600, n))
        ys = rng.normal(rng.uniform(-1e3, 1e3), rng.uniform(0.1, 100), n) + rng.normal(0, 1) * ts
        slope, intercept, _ = least_squares(list(ts), list(ys))
        expected_slope, expected_intercept = np.polyfit(ts, ys, 1)
        assert slope == pytest.approx(expected_slope, rel=1e-9, abs=1e-9)
        assert intercept == pytest.approx(expected_intercept, rel=1e-9, abs=1e-9)


@given(series())
def test_slope_and_intercept_equal_numpy_polyfit(data: tuple[list[float], list[float]]) -> None:
    ts, ys = data
    slope, intercept, _ = least_squares(ts, ys)
    expected_slope, expected_intercept = np.polyfit(ts, ys, 1)
    tolerance = slope_tolerance(ts, ys)
    assert abs(slope - expected_slope) <= 1e-9 * abs(expected_slope) + tolerance
    assert abs(intercept - expected_intercept) <= 1e-9 * abs(expected_intercept) + tolerance * (ts[-1] + 1.0)


@given(series(min_size=3))
def test_slope_stderr_equals_the_numpy_covariance_formula(data: tuple[list[float], list[float]]) -> None:
    ts, ys = data
    _, _, stderr = least_squares(ts, ys)
    assert stderr == pytest.approx(numpy_stderr(ts, ys), rel=1e-6, abs=slope_tolerance(ts, ys))


def test_two_points_give_the_line_through_them_and_an_infinite_stderr() -> None:
    assert least_squares([0.0, 10.0], [5.0, 25.0]) == (2.0, 5.0, math.inf)
    assert direction_of(2.0, math.inf, 2) is Direction.FLAT


def test_a_line_needs_two_distinct_timestamps_and_matching_lengths() -> None:
    with pytest.raises(ValueError, match="2 distinct timestamps"):
        fit_line([3.0, 3.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="2 timestamps for 3 values"):
        fit_line([0.0, 1.0], [1.0, 2.0, 3.0])
    assert analyse([1.0], [1.0]) is None
    assert analyse([2.0, 2.0], [1.0, 5.0]) is None
    with pytest.raises(ValueError, match="must not decrease"):
        analyse([10.0, 5.0, 0.0], [1.0, 2.0, 3.0])


@given(series(), st.floats(-1e6, 1e6, allow_nan=False))
def test_a_constant_series_has_slope_zero_and_no_anomaly(data: tuple[list[float], list[float]], c: float) -> None:
    ts, _ = data
    trend = analyse(ts, [c] * len(ts))
    assert trend is not None
    assert trend.slope_per_s == 0.0
    assert trend.intercept == c
    assert trend.direction is Direction.FLAT
    assert trend.anomaly == 0.0
    assert trend.change_at_s is None
    assert trend.trend_per_s == 0.0


@given(series(), st.floats(-1e3, 1e3).filter(lambda c: abs(c) > 1e-3))
def test_scaling_a_series_scales_its_slope(data: tuple[list[float], list[float]], c: float) -> None:
    ts, ys = data
    slope, _, _ = least_squares(ts, ys)
    scaled, _, _ = least_squares(ts, [c * y for y in ys])
    assert abs(scaled - c * slope) <= 1e-9 * abs(c * slope) + abs(c) * slope_tolerance(ts, ys)


@given(series(), st.floats(-1e6, 1e6))
def test_shifting_a_series_leaves_its_slope_unchanged(data: tuple[list[float], list[float]], d: float) -> None:
    ts, ys = data
    slope, _, _ = least_squares(ts, ys)
    shifted, _, _ = least_squares(ts, [y + d for y in ys])
    assert abs(shifted - slope) <= 1e-9 * abs(slope) + slope_tolerance(ts, [abs(y) + abs(d) for y in ys])


@given(series(min_size=3))
def test_negating_a_series_mirrors_its_direction(data: tuple[list[float], list[float]]) -> None:
    ts, ys = data
    up, down = analyse(ts, ys), analyse(ts, [-y for y in ys])
    assert up is not None
    assert down is not None
    assert down.slope_per_s == -up.slope_per_s
    mirror = {Direction.RISING: Direction.FALLING, Direction.FALLING: Direction.RISING, Direction.FLAT: Direction.FLAT}
    assert down.direction is mirror[up.direction]


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 1, 12.706204736),
        (0.975, 2, 4.302652730),
        (0.975, 3, 3.182446305),
        (0.975, 5, 2.570581836),
        (0.975, 10, 2.228138852),
        (0.975, 30, 2.042272456),
        (0.975, 120, 1.979930405),
        (0.95, 5, 2.015048373),
        (0.995, 1, 63.656741163),
        (0.995, 10, 3.169272673),
        (0.025, 10, -2.228138852),
    ],
)
def test_t_quantile_matches_the_published_table(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=1e-8)


@given(st.floats(0.001, 0.999), st.integers(1, 400))
def test_t_quantile_inverts_the_exact_distribution_function(p: float, df: int) -> None:
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_direction_needs_a_significant_slope() -> None:
    # df = 10: the two-sided 95 % critical value is 2.228
    assert direction_of(2.3, 1.0, 12) is Direction.RISING
    assert direction_of(-2.3, 1.0, 12) is Direction.FALLING
    assert direction_of(2.2, 1.0, 12) is Direction.FLAT
    assert direction_of(2.2, 1.0, 12, confidence=0.9) is Direction.RISING
    assert direction_of(5.0, 0.0, 3) is Direction.RISING  # a perfect line
    assert direction_of(5.0, 0.1, 2) is Direction.FLAT


def reference_holt(ys: list[float], alpha: float, beta: float) -> tuple[float, float]:
    levels, trends = [ys[0]], [ys[1] - ys[0] if len(ys) > 1 else 0.0]
    for t in range(1, len(ys)):
        levels.append(alpha * ys[t] + (1 - alpha) * (levels[t - 1] + trends[t - 1]))
        trends.append(beta * (levels[t] - levels[t - 1]) + (1 - beta) * trends[t - 1])
    return levels[-1], trends[-1]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80), st.floats(0.01, 1.0), st.floats(0.0, 1.0))
def test_holt_equals_a_plain_reference_implementation(ys: list[float], alpha: float, beta: float) -> None:
    level, trend = holt(ys, alpha, beta)
    expected_level, expected_trend = reference_holt(ys, alpha, beta)
    assert level == pytest.approx(expected_level, rel=1e-12, abs=1e-6)
    assert trend == pytest.approx(expected_trend, rel=1e-12, abs=1e-6)


def test_holt_follows_a_line_and_analyse_turns_its_trend_per_second() -> None:
    ys = [10.0 + 3.0 * i for i in range(20)]
    assert holt(ys) == pytest.approx((ys[-1], 3.0))
    trend = analyse([5.0 * i for i in range(20)], ys)
    assert trend is not None
    assert trend.trend_per_s == pytest.approx(0.6)
    assert trend.slope_per_s == pytest.approx(0.6)
    assert trend.direction is Direction.RISING
    with pytest.raises(ValueError, match="alpha"):
        holt(ys, alpha=0.0)


@pytest.mark.parametrize(
    ("ys", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0, 100.0], 97 / 1.4826),  # median 3, MAD 1
        ([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 4.5 / (1.4826 * 0.5)),  # median 4.5, MAD 0.5
        ([10.0, 12.0, 11.0, 13.0, 9.0, 11.0], 0.0),  # the last is the median
        ([5.0, 5.0, 5.0, 5.0, 9.0], 4 / (1.2533 * 0.8)),  # MAD 0: mean absolute deviation 0.8
        ([7.0], 0.0),
    ],
)
def test_robust_anomaly_on_hand_worked_examples(ys: list[float], expected: float) -> None:
    assert robust_anomaly(ys) == pytest.approx(expected)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """AR(1) noise of unit marginal variance (white for phi = 0), started in its stationary distribution."""
    e = rng.normal(0.0, 1.0, n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + math.sqrt(1.0 - phi * phi) * e[i]
    return x


def reference_change_point(x: np.ndarray, critical: float, small_sample: float, min_segment: int) -> int | None:
    """The CUSUM level-shift test written from its definition with numpy: argmax_k |sum_{i<k} (x_i - mean)| over
    splits leaving min_segment on each side, long-run variance from the split's residuals and their lag-1
    autocorrelation (Kendall's bias correction), critical value grown for few effective points."""
    n = len(x)
    s = np.cumsum(x - x.mean())[:-1]  # s[k - 1]: the first k deviations
    ks = np.arange(1, n)
    allowed = (ks >= min_segment) & (ks <= n - min_segment)
    k = int(ks[allowed][np.argmax(np.abs(s[allowed]))])
    r = np.concatenate([x[:k] - x[:k].mean(), x[k:] - x[k:].mean()])
    rho = float(np.dot(r[:-1], r[1:]) / np.dot(r, r))
    rho = min(0.95, max(0.0, rho + (1 + 3 * rho) / n))
    variance = float(np.dot(r, r)) / (n - 2)
    statistic = abs(s[k - 1]) / math.sqrt(n * variance * (1 + rho) / (1 - rho))
    effective = n * (1 - rho) / (1 + rho)
    return k if statistic > critical * (1 + small_sample / effective) else None


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_the_change_point_matches_a_numpy_reference(phi: float) -> None:
    from vsmmon.analyse import trends

    rng = np.random.default_rng(int(10 * phi))
    found = 0
    for i in range(300):
        x = ar1(rng, 61 if i % 2 else 240, phi)
        x[len(x) * 3 // 4 :] += rng.uniform(0.0, 4.0 + 10.0 * phi)  # from none to a clear shift
        expected = reference_change_point(
            x, trends.CHANGE_CRITICAL, trends.CHANGE_SMALL_SAMPLE, trends.CHANGE_MIN_SEGMENT
        )
        assert change_point(list(x)) == expected
        found += expected is not None
    assert 30 < found < 270  # both outcomes were exercised


@pytest.mark.parametrize("phi", [0.0, 0.7])
def test_noise_alone_raises_a_change_point_in_under_1_percent_of_series_hours(phi: float) -> None:
    """The trend stage reads a 5 min window (61 samples at 5 s) every minute: an hour of noise is 60 overlapping
    windows, and any change point found in one of them is a false alarm of that series-hour."""
    rng = np.random.default_rng(100 + int(10 * phi))
    hours = 300
    false = 0
    for _ in range(hours):
        x = list(ar1(rng, 780, phi))
        false += any(change_point(x[i : i + 61]) is not None for i in range(0, 720, 12))
    assert false <= 0.02 * hours  # expected ~0.5 % (BENCHMARKS.md, Accuracy); 2 % leaves room for sampling


def test_a_three_sigma_shift_in_an_hour_is_found_where_it_happened() -> None:
    rng = np.random.default_rng(5)
    for phi in (0.0, 0.7):
        for _ in range(50):
            x = ar1(rng, 720, phi)
            x[540:] += 3.0
            found = change_point(list(x))
            assert found is not None, phi
            assert abs(found - 540) <= 30, (phi, found)


def test_a_step_without_noise_is_a_change_at_the_step_and_an_end_value_is_not() -> None:
    assert change_point([1.0] * 30 + [2.0] * 10) == 30
    assert change_point([1.0] * 40) is None
    assert change_point([1.0] * 39 + [9.0]) is None  # one odd value at an end: an anomaly, not a new level
    assert change_point([1.0, 2.0, 3.0, 4.0, 5.0]) is None  # too short to split with 3 samples a side


def test_analyse_scores_every_sample_since_the_last_analysis_and_dates_the_change() -> None:
    rng = np.random.default_rng(7)
    ts = [5.0 * (i - 69) for i in range(70)]  # seconds relative to now, as the analysis passes them
    spike = [*rng.normal(100.0, 1.0, 62), 130.0, *rng.normal(100.0, 1.0, 7)]  # 35 s before the last sample
    trend = analyse(ts, spike)
    assert trend is not None
    assert trend.n == 70
    assert trend.anomaly > 10  # not only the newest sample is scored
    assert trend.change_at_s is None
    assert analyse(ts, spike, recent_s=30.0).anomaly < 5  # type: ignore[union-attr]
    stepped = [*rng.normal(100.0, 1.0, 50), *rng.normal(110.0, 1.0, 20)]
    moved = analyse(ts, stepped)
    assert moved is not None
    assert moved.change_at_s == ts[50]


def test_the_line_on_unix_timestamps_matches_an_exact_computation() -> None:
    """Reference: the least-squares line in exact rational arithmetic. On Unix seconds (~1.76e9, sub-second
    jitter) the rounded mean of the timestamps used to bias the slope by up to 1e-7 relative; (numpy.polyfit
    on raw Unix seconds is itself off by ~1e-7: its Vandermonde matrix is ill-conditioned there.)"""
    import random
    from fractions import Fraction

    def exact(ts: list[float], vs: list[float]) -> tuple[float, float]:
        t_, v_ = [Fraction(t) for t in ts], [Fraction(v) for v in vs]
        mt, mv = sum(t_) / len(t_), sum(v_) / len(v_)
        b = sum((t - mt) * (v - mv) for t, v in zip(t_, v_, strict=True)) / sum((t - mt) ** 2 for t in t_)
        return float(b), float(mv - b * mt)

    rng = random.Random(5)
    for n, slope in [(61, 1e6), (720, 1e3), (61, 0.5), (720, -2e4), (3, 7.0)]:
        t0 = 1.76e9 + rng.random() * 1e6
        ts = [t0 + 5 * i + rng.uniform(-0.3, 0.3) for i in range(n)]
        vs = [2e8 + slope * (t - t0) + rng.gauss(0, 1e5) for t in ts]
        fit = fit_line(ts, vs)
        b, a = exact(ts, vs)
        assert fit.slope == pytest.approx(b, rel=1e-12)
        assert fit.intercept == pytest.approx(a, rel=1e-12)


def test_a_line_refuses_values_that_are_not_finite_naming_them() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            fit_line([0.0, 1.0, 2.0], [1.0, bad, 3.0])
        with pytest.raises(ValueError, match="finite"):
            fit_line([0.0, bad, 2.0], [1.0, 2.0, 3.0])
