"""Prediction stage: forecasts with intervals, time to a limit, queue capacity plans, forecast accuracy.

Pure and dependency-free. Forecasts extrapolate the least-squares line of `vsmmon.trends.fit_line`; horizons
count from the last timestamp of the series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vsmmon.analyse.trends import (
    Direction,
    LinearFit,
    autocorrelation,
    direction_of,
    fit_line,
    residuals,
    t_quantile,
)

HORIZONS_S: tuple[float, ...] = (300.0, 3600.0)
"""The forecast horizons of the design: 5 min and 1 h."""
_CEIL_TOLERANCE = 1e-9  # relative: 20.000000000000004 slots is 20, not 21


@dataclass(frozen=True, slots=True)
class Forecast:
    """The value a series should have `horizon_s` after its last sample, with a prediction interval."""

    horizon_s: float
    value_at_horizon: float
    lower: float
    upper: float
    confidence: float


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """One queue's arrival vs drain, and the concurrency that empties its backlog within the target."""

    arrival_per_s: float
    drain_per_s_per_slot: float
    backlog: float
    current_concurrency: int
    needed_concurrency: int
    target_drain_s: float

    @property
    def drain_per_s(self) -> float:
        """What the current concurrency drains per second."""
        return self.drain_per_s_per_slot * self.current_concurrency

    @property
    def drain_time_s(self) -> float:
        """Seconds the current concurrency needs to empty the backlog; inf when arrivals keep up with it."""
        if self.backlog <= 0.0:
            return 0.0
        net = self.drain_per_s - self.arrival_per_s
        return self.backlog / net if net > 0.0 else math.inf

    @property
    def deficit(self) -> int:
        """Slots to add (negative: slots to spare)."""
        return self.needed_concurrency - self.current_concurrency


def forecast(
    ts_s: Sequence[float],
    values: Sequence[float],
    horizon_s: float,
    confidence: float = 0.95,
    *,
    fit: LinearFit | None = None,
) -> Forecast | None:
    """Line value `horizon_s` after the last sample with its prediction interval; None below 3 points.

    `fit` is `fit_line(ts_s, values)` when the caller has it already.
    """
    # Interval for one new observation at t0: y(t0) +- t(1-(1-c)/2, n_eff-2) * s * sqrt(1 + k (1/n + (t0 - mean_t)^2 /
    # Sxx)), s the residual standard error. Real series are autocorrelated: with lag-1 autocorrelation rho of the
    # residuals the line's own uncertainty is k = (1 + rho) / (1 - rho) times what independent noise gives
    # (n_eff = n / k points' worth of information); the new observation's own noise stays s^2.
    if len(values) < 3 or len(set(ts_s)) < 2:
        return None
    fit = fit or fit_line(ts_s, values)
    t0 = fit.last_t + horizon_s
    value = fit.intercept + fit.slope * t0
    rho = significant_autocorrelation(residuals(ts_s, values, fit))
    k = (1.0 + rho) / (1.0 - rho)
    leverage = 1.0 + k * (1.0 / fit.n + (t0 - fit.mean_t) ** 2 / fit.sxx)
    df = max(1, math.floor(fit.n / k) - 2)
    half = t_quantile((1.0 + confidence) / 2.0, df) * fit.residual_se * math.sqrt(leverage)
    return Forecast(horizon_s, value, value - half, value + half, confidence)


RHO_MAX = 0.95


def significant_autocorrelation(errors: Sequence[float]) -> float:
    """The residuals' lag-1 autocorrelation when it is significant (over 2 / sqrt(n), the estimate's ~2 standard
    errors on independent noise), else 0: independent noise keeps the textbook interval, not a noisy variant."""
    rho = autocorrelation(errors)
    return min(RHO_MAX, rho) if rho > 2.0 / math.sqrt(len(errors)) else 0.0


def time_to_limit(
    ts_s: Sequence[float],
    values: Sequence[float],
    limit: float,
    confidence: float = 0.95,
    *,
    fit: LinearFit | None = None,
) -> float | None:
    """Seconds from the last sample until the fitted line reaches upper `limit`; 0 when the line is there already
    (rising or not); None when it is below and not rising."""
    # Every resource of the design (memory, disk used, backlog, saturation) is bounded from above, so only a
    # slope that is significantly rising (t-test at `confidence`) approaches its limit; the fitted line, not the
    # last noisy sample, says where the series is now.
    if len(values) < 3 or len(set(ts_s)) < 2:
        return None
    fit = fit or fit_line(ts_s, values)
    if fit.intercept + fit.slope * fit.last_t >= limit:
        return 0.0  # there already, rising or not
    if direction_of(fit.slope, fit.slope_stderr, fit.n, confidence) is not Direction.RISING:
        return None
    return max(0.0, (limit - fit.intercept) / fit.slope - fit.last_t)


def capacity_plan(
    arrival_per_s: float, drain_per_s_per_slot: float, backlog: float, current_concurrency: int, target_drain_s: float
) -> CapacityPlan:
    """Needed concurrency = ceil((arrival + backlog / target) / per-slot drain). Raises: ValueError on bad rates."""
    # The pool must absorb new arrivals and, on top, remove the backlog within the target; the per-slot rate is
    # what one busy slot completes per second (measured drain / busy slots). No floor of 1: an idle queue needs 0,
    # and the minimum pool size is S3's policy, not a capacity fact.
    if drain_per_s_per_slot <= 0.0 or target_drain_s <= 0.0:
        raise ValueError(f"per-slot drain ({drain_per_s_per_slot}) and target ({target_drain_s}) must be > 0")
    if arrival_per_s < 0.0 or backlog < 0.0 or current_concurrency < 0:
        raise ValueError("arrival rate, backlog and concurrency cannot be negative")
    exact = (arrival_per_s + backlog / target_drain_s) / drain_per_s_per_slot
    needed = math.ceil(exact * (1.0 - _CEIL_TOLERANCE))
    return CapacityPlan(arrival_per_s, drain_per_s_per_slot, backlog, current_concurrency, needed, target_drain_s)


def smape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean of |a - p| / (|a| + |p|): bounded in [0, 1], a 0/0 pair counts as a perfect 0."""
    # The bounded variant (half the textbook 2|a-p|/(|a|+|p|)) reads as a fraction; it is symmetric in a and p.
    if len(actual) != len(predicted):
        raise ValueError(f"{len(actual)} actual values for {len(predicted)} predictions")
    if not actual:
        raise ValueError("sMAPE needs at least one pair")
    terms = [abs(a - p) / (abs(a) + abs(p)) if a != p else 0.0 for a, p in zip(actual, predicted, strict=True)]
    return math.fsum(terms) / len(terms)
