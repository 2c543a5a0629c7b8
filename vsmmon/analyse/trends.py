"""Trend stage: slope, direction, Holt smoothing, anomaly score and change point of one series.

Pure and dependency-free (plain `math`, no numpy). A series is `ts_s` (seconds, increasing) and `values` in
time order. Timestamps are used as given: the intercept is the value at `ts_s == 0`, so callers pass seconds
since the window start rather than Unix time, which keeps the fit well conditioned.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

HOLT_ALPHA = 0.3
"""Level smoothing: ~3 samples of memory, enough to damp 5 s jitter without lagging a real move."""
HOLT_BETA = 0.1
"""Trend smoothing: a slope must persist ~10 samples before Holt's trend follows it."""
CHANGE_CRITICAL = 1.65
"""Critical value of the level-shift test's statistic for a long series of independent noise (see `change_point`)."""
CHANGE_SMALL_SAMPLE = 60.0
"""The critical value grows as CHANGE_CRITICAL x (1 + this / effective sample size): few effective points estimate
the noise's autocorrelation and long-run variance poorly, and the statistic's tail grows heavier."""
CHANGE_MIN_SEGMENT = 3
"""Each side of a change has at least this many samples: one odd value at an end is an anomaly, not a new level."""
MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal sample times this estimates its sigma
MEAN_AD_TO_SIGMA = 1.2533  # sqrt(pi/2): the same for the mean absolute deviation
MR_MEDIAN_TO_SIGMA = 0.9539  # median of |x_i - x_(i-1)| for N(0, 1) is sqrt(2) * 0.6745
MR_MEAN_TO_SIGMA = 1.1284  # mean of |x_i - x_(i-1)| for N(0, 1) is 2 / sqrt(pi) (the d2 of control charts)
_EXACT_T_MAX_DF = 100  # above this the Cornish-Fisher expansion is exact to ~1e-10


class Direction(StrEnum):
    """Where a series is heading; `flat` unless the slope is statistically significant."""

    RISING = "rising"
    FALLING = "falling"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class LinearFit:
    """Ordinary least squares of `values` on `ts_s`, with what prediction intervals need."""

    slope: float
    intercept: float
    slope_stderr: float  # inf when n == 2: no residual degrees of freedom
    residual_se: float  # sqrt(SSR / (n - 2)); inf when n == 2
    mean_t: float
    sxx: float  # sum of (t - mean_t)^2
    n: int
    last_t: float


@dataclass(frozen=True, slots=True)
class Trend:
    """Trend of one agent x metric x window."""

    slope_per_s: float
    intercept: float
    slope_stderr: float
    direction: Direction
    level: float  # Holt level at the last sample
    trend_per_s: float  # Holt trend per step / median sampling interval
    anomaly: float  # the largest robust z of the samples since `recent_s` before the last one
    change_at_s: float | None  # time (as `ts_s` gives it) of the first sample at a new level, if one is found
    n: int


def fit_line(ts_s: Sequence[float], values: Sequence[float]) -> LinearFit:
    """Least-squares line through the points. Raises: ValueError for < 2 distinct timestamps, unequal lengths or
    a value that is not finite."""
    n = len(values)
    if len(ts_s) != n:
        raise ValueError(f"{len(ts_s)} timestamps for {n} values")
    if n < 2:
        raise ValueError(f"a line needs 2 points, got {n}")
    # Centre t on its mean and y on its first value: a constant series then gives exactly slope 0, and large
    # offsets (Unix time, bytes) do not swamp the variation. The mean of Unix seconds is itself rounded (by up
    # to 1.2e-7 s at 1.7e9), so the sums are corrected by the centred values' own means (the textbook
    # Sxy - Sx Sy / n on the shifted data): slope and intercept then match an exact computation to ~1e-12.
    if not all(map(math.isfinite, ts_s)) or not all(map(math.isfinite, values)):
        raise ValueError("a line needs finite timestamps and values (NaN or infinity given)")
    shift_t = math.fsum(ts_s) / n
    dt = [t - shift_t for t in ts_s]
    y0 = values[0]
    dy = [y - y0 for y in values]
    sum_dt, sum_dy = math.fsum(dt), math.fsum(dy)
    sxx = math.fsum(map(operator.mul, dt, dt)) - sum_dt * sum_dt / n  # map: these sums are the hot loop
    if sxx <= 0.0:
        raise ValueError("a line needs 2 distinct timestamps")
    slope = (math.fsum(map(operator.mul, dt, dy)) - sum_dt * sum_dy / n) / sxx
    mean_dt, mean_dy = sum_dt / n, sum_dy / n
    mean_t = shift_t + mean_dt
    intercept = y0 + mean_dy - slope * mean_t
    if n == 2:
        return LinearFit(slope, intercept, math.inf, math.inf, mean_t, sxx, n, ts_s[-1])
    ssr = math.fsum((e - mean_dy - slope * (d - mean_dt)) ** 2 for d, e in zip(dt, dy, strict=True))
    residual_se = math.sqrt(ssr / (n - 2))
    return LinearFit(slope, intercept, residual_se / math.sqrt(sxx), residual_se, mean_t, sxx, n, ts_s[-1])


def residuals(ts_s: Sequence[float], values: Sequence[float], fit: LinearFit) -> list[float]:
    """What the line leaves of each value."""
    return [v - fit.intercept - fit.slope * t for t, v in zip(ts_s, values, strict=True)]


def autocorrelation(errors: Sequence[float]) -> float:
    """Lag-1 autocorrelation of residuals, bias-corrected for their number (Kendall: + (1 + 3 rho) / n); 0 for none."""
    energy = math.fsum(e * e for e in errors)
    if energy <= 0.0:
        return 0.0
    rho = math.fsum(map(operator.mul, errors, errors[1:])) / energy
    return rho + (1.0 + 3.0 * rho) / len(errors)


def t_cdf(t: float, df: int) -> float:
    """Student t distribution function, exact for integer `df` (Abramowitz & Stegun 26.7.3-4)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total = 0.0 if df == 1 else math.cos(theta)
        term = total
        for j in range(3, df - 1, 2):
            term *= cos2 * (j - 1) / j
            total += term
        a = 2.0 / math.pi * (theta + math.sin(theta) * total)
    else:
        total = term = 1.0
        for j in range(2, df - 1, 2):
            term *= cos2 * (j - 1) / j
            total += term
        a = math.sin(theta) * total
    return 0.5 + 0.5 * a  # a = P(|T| <= t), signed with t


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """Student t quantile: bisection on the exact `t_cdf` for df <= 100, Cornish-Fisher (A&S 26.7.5) above."""
    # cached: the analysis asks for the same few (confidence, series length) pairs thousands of times a run
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df > _EXACT_T_MAX_DF:
        x = statistics.NormalDist().inv_cdf(p)
        g1 = (x**3 + x) / 4
        g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
        g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
        g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
        return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


def slope_confidence(slope: float, stderr: float, n: int) -> float:
    """1 - two-sided p-value of the slope t-test (n - 2 degrees of freedom); 0 for n < 3."""
    if n < 3 or not math.isfinite(stderr):
        return 0.0
    if stderr == 0.0:
        return 0.0 if slope == 0.0 else 1.0  # a perfect line: no doubt about its slope
    return min(1.0, 2.0 * t_cdf(abs(slope / stderr), n - 2) - 1.0)  # t_cdf may round to just over 1


def direction_of(slope: float, stderr: float, n: int, confidence: float = 0.95) -> Direction:
    """Rising / falling when the two-sided t-test rejects slope 0 at `confidence`; flat otherwise and for n < 3."""
    if n < 3 or not math.isfinite(stderr) or slope == 0.0:
        return Direction.FLAT
    if stderr > 0.0 and abs(slope / stderr) <= t_quantile((1.0 + confidence) / 2.0, n - 2):
        return Direction.FLAT
    return Direction.RISING if slope > 0.0 else Direction.FALLING


def holt(values: Sequence[float], alpha: float = HOLT_ALPHA, beta: float = HOLT_BETA) -> tuple[float, float]:
    """Holt's (level, trend per step) after the last value; starts at level y0, trend y1 - y0."""
    if not values:
        raise ValueError("Holt smoothing needs at least one value")
    if not (0.0 < alpha <= 1.0 and 0.0 <= beta <= 1.0):
        raise ValueError(f"need 0 < alpha <= 1 and 0 <= beta <= 1, got alpha={alpha}, beta={beta}")
    # Smooth deviations from the first value so that a constant series gives exactly (value, 0).
    y0 = values[0]
    level, trend = 0.0, (values[1] - y0 if len(values) > 1 else 0.0)
    for y in values[1:]:
        previous = level
        level = alpha * (y - y0) + (1.0 - alpha) * (level + trend)
        trend = beta * (level - previous) + (1.0 - beta) * trend
    return y0 + level, trend


def robust_anomaly(values: Sequence[float], recent: int = 1) -> float:
    """The largest |x - median| / (1.4826 MAD) of the last `recent` values, over all values; the scale falls back to
    1.2533 x the mean absolute deviation when MAD is 0 (over half the values equal)."""
    if not values:
        raise ValueError("an anomaly score needs at least one value")
    median = statistics.median(values)
    deviations = [abs(v - median) for v in values]
    distance = max(deviations[-max(1, recent) :])
    mad = statistics.median(deviations)
    if mad > 0.0:
        return distance / (MAD_TO_SIGMA * mad)
    # MAD is 0 when over half the values are equal; the mean deviation still sees the others, and is 0 only
    # when every value equals the median (then so do the last ones: score 0). So the score stays finite.
    mean_ad = math.fsum(deviations) / len(deviations)
    return 0.0 if mean_ad == 0.0 else distance / (MEAN_AD_TO_SIGMA * mean_ad)


def change_point(values: Sequence[float]) -> int | None:
    """Index of the first sample at a new level when the series' mean shifted significantly, else None.

    The CUSUM test of a level shift (Page; Csorgo & Horvath): the largest |S_k| of the cumulated deviations from
    the mean, scaled by sqrt(n x long-run variance), is under no change the supremum of a Brownian bridge. Real
    series are autocorrelated, so the long-run variance is sigma^2 (1 + rho) / (1 - rho) from the lag-1
    autocorrelation rho of what the best split leaves, and the critical value grows for few effective points
    (`CHANGE_SMALL_SAMPLE`), calibrated by simulation: false alarms stay under 1 % per series-hour on white and
    AR(1) phi 0.7 noise for the trend stage's 5 min windows analysed every minute and for 1 h windows
    (`make accuracy`: BENCHMARKS.md, Accuracy).
    """
    n = len(values)
    if n < 2 * CHANGE_MIN_SEGMENT:
        return None
    origin = values[0]  # deviations from the first value: a constant series gives exactly 0 everywhere
    shifted = [v - origin for v in values]
    mean = math.fsum(shifted) / n
    best, at, cumulated = 0.0, 0, 0.0
    for k in range(1, n - CHANGE_MIN_SEGMENT + 1):
        cumulated += shifted[k - 1] - mean
        if k >= CHANGE_MIN_SEGMENT and abs(cumulated) > best:
            best, at = abs(cumulated), k
    if best == 0.0:
        return None
    left, right = math.fsum(shifted[:at]) / at, math.fsum(shifted[at:]) / (n - at)
    errors = [v - left for v in shifted[:at]] + [v - right for v in shifted[at:]]
    variance = math.fsum(e * e for e in errors) / (n - 2)
    if variance <= 0.0:
        return at  # two exact levels: no noise to doubt the step
    rho = min(0.95, max(0.0, autocorrelation(errors)))
    long_run = variance * (1.0 + rho) / (1.0 - rho)
    effective = n * (1.0 - rho) / (1.0 + rho)
    critical = CHANGE_CRITICAL * (1.0 + CHANGE_SMALL_SAMPLE / effective)
    return at if best / math.sqrt(n * long_run) > critical else None


def _median_interval_s(ts_s: Sequence[float]) -> float:
    steps = [b - a for a, b in itertools.pairwise(ts_s) if b > a]
    return statistics.median(steps)


def analyse(
    ts_s: Sequence[float],
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    recent_s: float = 60.0,
    alpha: float = HOLT_ALPHA,
    beta: float = HOLT_BETA,
) -> Trend | None:
    """The trend of one series, or None with fewer than 2 points (or 2 distinct timestamps). Raises: ValueError.

    `recent_s`: the samples whose anomaly is scored, those since the previous analysis (it runs every minute)."""
    # Holt and the change-point test treat samples as evenly spaced; Holt's trend is made per-second by the median
    # step.
    if len(values) < 2 or len(set(ts_s)) < 2:
        return None
    if any(b < a for a, b in itertools.pairwise(ts_s)):
        raise ValueError("timestamps must not decrease: Holt and the change-point test read the values in time order")
    fit = fit_line(ts_s, values)
    level, trend_per_step = holt(values, alpha, beta)
    return Trend(
        slope_per_s=fit.slope,
        intercept=fit.intercept,
        slope_stderr=fit.slope_stderr,
        direction=direction_of(fit.slope, fit.slope_stderr, fit.n, confidence),
        level=level,
        trend_per_s=trend_per_step / _median_interval_s(ts_s),
        anomaly=robust_anomaly(values, sum(1 for t in ts_s if t > ts_s[-1] - recent_s)),  # every new sample
        change_at_s=None if (at := change_point(values)) is None else ts_s[at],
        n=fit.n,
    )
