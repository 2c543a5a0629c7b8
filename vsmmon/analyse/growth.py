"""Growth stage: where a memory series is heading, read from its current regime and only as far as it was watched.

Pure. A worker's memory is a series of regimes: a pool resize or a restart starts a new one, and so does a
step (a model loaded, a pool process forked). A least-squares line over several regimes reads a step as growth,
and a line over a few seconds of a process warming up extrapolated to its limit an hour away reads warm-up as a
leak. So a time to the limit is claimed only when
- the line is fitted since the last break: a time in `breaks`, a step (one increment `STEP_FACTOR` times the
  typical increment, of the series and of those after it, and at least `STEP_MIN_SHARE` of the value), or a
  bend (`last_bend`: two lines fit significantly better than one, as when a leak starts inside a stable
  hour — a line over the whole hour would put the limit days away when it is minutes away);
- the growth persists: the later half of the regime rises significantly too, at least half as fast as the
  whole (warm-up and caches level off; a leak does not);
- the limit is at most `EXTRAPOLATE_MAX` times the watched span ahead (nothing says a line holds much
  further than it was seen to hold).
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from vsmmon.analyse.forecast import time_to_limit
from vsmmon.analyse.trends import Direction, LinearFit, autocorrelation, direction_of, fit_line, residuals

STEP_FACTOR = 8.0
"""An increment this many times the median of the next `STEP_LOOKAHEAD` ones (by size) is a step, not growth."""
STEP_LOOKAHEAD = 12
"""Increments after a candidate step that tell it from growth: a minute of samples at the default interval."""
STEP_MIN_SHARE = 0.01
"""A step is also at least 1 % of the value it leaves: a page or two of noise on a flat series is not one."""
STEP_MIN_AFTER = 2
"""A step needs this many increments after it: the newest increment alone cannot tell a step from growth."""
EXTRAPOLATE_MAX = 4.0
"""A line watched for s seconds says where the series is at most 4 s ahead."""
MIN_POINTS = 6
"""Points of a regime before it is judged: three in each half, the fewest a slope t-test takes."""
PERSIST_SHARE = 0.5
"""The later half of a regime must rise at least this share of the whole regime's slope."""


BEND_F = 16.0
"""A bend is kept when the F statistic of two lines against one, divided by the residuals' autocorrelation
inflation (1 + rho) / (1 - rho), exceeds this. Searched over every split, on white noise the statistic passes
10.7 in 0.1 % of 61- and 720-point windows; with the inflation, AR(1) noise (phi 0.7) passes 16 in 0.0 % of
720-point windows and 2 % of 61-point ones (simulated, 250-600 windows each). A false bend only shortens
the regime: less evidence, never a leak."""
BEND_RHO_MAX = 0.95
RELATIVE_EXACT = 1e-12  # residuals this small a share of the values' spread are rounding, not noise


@dataclass(frozen=True, slots=True)
class Growth:
    """The current regime of a series: its line, where it starts, and the time to the limit it supports."""

    fit: LinearFit
    start: int  # index of the regime's first point
    span_s: float
    steady: bool  # rising significantly, and so in its later half
    time_to_limit_s: float | None  # 0: there already; None: not approaching it, or not within EXTRAPOLATE_MAX x span_s
    estimate_s: float | None = None  # the regime line's time to the limit, trusted or not (None: not rising)


def last_step(values: Sequence[float]) -> int:
    """Index of the first point after the newest step (0 without one)."""
    sizes = [abs(b - a) for a, b in itertools.pairwise(values)]
    if not sizes:
        return 0
    floor = STEP_FACTOR * _median(sorted(sizes))  # a small look-ahead's median may be tiny by chance: never below
    after: list[float] = []  # sorted sizes of the (up to) STEP_LOOKAHEAD increments after the candidate
    for i in range(len(sizes) - 1, -1, -1):  # newest first, sliding the look-ahead window back one at a time
        size = sizes[i]
        if (
            size > floor
            and len(after) >= STEP_MIN_AFTER
            and size > max(STEP_FACTOR * _median(after), STEP_MIN_SHARE * abs(values[i]))
        ):
            return i + 1
        bisect.insort(after, size)
        if len(after) > STEP_LOOKAHEAD:
            del after[bisect.bisect_left(after, sizes[i + STEP_LOOKAHEAD])]
    return 0


def _median(ordered: Sequence[float]) -> float:
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2.0


def last_bend(ts_s: Sequence[float], values: Sequence[float]) -> int:
    """Index where the newest significant bend starts the current line (0 without one): the best split into two
    lines, kept if it fits significantly better than one line (`BEND_F`), then the same within the later line."""
    start = 0
    while (k := _best_split(ts_s[start:], values[start:])) > 0:
        start += k
    return start


def _best_split(ts: Sequence[float], vs: Sequence[float]) -> int:
    n = len(vs)
    if n < 2 * MIN_POINTS:
        return 0
    # sums of x, y, xx, xy, yy over every prefix (x, y relative to the first point): each split's two
    # least-squares residual sums in O(1), so the search is O(n)
    t0, v0 = ts[0], vs[0]
    x = [t - t0 for t in ts]
    y = [v - v0 for v in vs]
    cx, cy = [0.0, *itertools.accumulate(x)], [0.0, *itertools.accumulate(y)]
    cxx: list[float] = [0.0, *itertools.accumulate(map(operator.mul, x, x))]
    cxy: list[float] = [0.0, *itertools.accumulate(map(operator.mul, x, y))]
    cyy: list[float] = [0.0, *itertools.accumulate(map(operator.mul, y, y))]

    def ssr(a: int, b: int) -> float:
        m = b - a
        sx, sy = cx[b] - cx[a], cy[b] - cy[a]
        sxx = cxx[b] - cxx[a] - sx * sx / m
        sxy = cxy[b] - cxy[a] - sx * sy / m
        syy = cyy[b] - cyy[a] - sy * sy / m
        return max(0.0, syy - sxy * sxy / sxx if sxx > 0.0 else syy)

    whole = ssr(0, n)
    spread = cyy[n] - cy[n] * cy[n] / n  # the values' own sum of squares about their mean
    if whole <= RELATIVE_EXACT * spread:
        return 0  # one line fits already, to rounding: nothing to split
    best, split = whole, 0
    for k in range(MIN_POINTS, n - MIN_POINTS + 1):
        if (both := ssr(0, k) + ssr(k, n)) < best:
            best, split = both, k
    if split == 0 or whole <= 0.0:
        return 0
    if best <= RELATIVE_EXACT * spread:
        return split  # two lines fit to rounding: a clean break
    f = ((whole - best) / 2.0) / (best / (n - 4))
    rho = _autocorrelation(ts, vs, split)
    return split if f > BEND_F * (1.0 + rho) / (1.0 - rho) else 0


def _autocorrelation(ts: Sequence[float], vs: Sequence[float], split: int) -> float:
    """Lag-1 autocorrelation of the two lines' residuals, in [0, BEND_RHO_MAX]."""
    errors: list[float] = []
    for a, b in ((0, split), (split, len(vs))):
        errors += residuals(ts[a:b], vs[a:b], fit_line(ts[a:b], vs[a:b]))
    return min(BEND_RHO_MAX, max(0.0, autocorrelation(errors)))


def regime_start(ts_s: Sequence[float], values: Sequence[float], breaks_s: Sequence[float] = ()) -> int:
    """Index of the current regime's first point: after the newest break time in `breaks_s`, the newest step and
    the newest bend. The bend is looked for only where the later quarter rises: elsewhere nothing grows."""
    after_break = bisect.bisect_left(ts_s, max(breaks_s)) if breaks_s else 0
    start = after_break + last_step(values[after_break:])
    if _tail_rises(ts_s[start:], values[start:]):
        start += last_bend(ts_s[start:], values[start:])
    return start


def _tail_rises(ts: Sequence[float], vs: Sequence[float]) -> bool:
    tail = max(MIN_POINTS, len(vs) // 4)
    if len(vs) < 2 * MIN_POINTS or ts[-1] <= ts[-tail]:
        return False
    fit = fit_line(ts[-tail:], vs[-tail:])
    return direction_of(fit.slope, fit.slope_stderr, fit.n) is Direction.RISING


def growth(
    ts_s: Sequence[float], values: Sequence[float], limit: float, *, breaks_s: Sequence[float] = ()
) -> Growth | None:
    """The current regime and the time its steady growth takes to reach `limit`; None below `MIN_POINTS` points."""
    start = regime_start(ts_s, values, breaks_s)
    ts, vs = ts_s[start:], values[start:]
    if len(vs) < MIN_POINTS or ts[-1] <= ts[0]:
        return None
    fit = fit_line(ts, vs)
    span_s = ts[-1] - ts[0]
    tte = time_to_limit(ts, vs, limit, fit=fit)  # 0 at the limit already; else None unless rising significantly
    steady = tte is not None and fit.slope > 0.0 and _persists(ts, vs, fit)
    trusted = tte == 0.0 or (steady and tte is not None and tte <= EXTRAPOLATE_MAX * span_s)
    return Growth(fit, start, span_s, steady, tte if trusted else None, tte)


def _persists(ts: Sequence[float], vs: Sequence[float], whole: LinearFit) -> bool:
    middle = bisect.bisect_left(ts, (ts[0] + ts[-1]) / 2.0)
    later_ts, later_vs = ts[middle:], vs[middle:]
    if len(later_vs) < 3 or later_ts[-1] <= later_ts[0]:
        return False
    later = fit_line(later_ts, later_vs)
    rising = direction_of(later.slope, later.slope_stderr, later.n) is Direction.RISING
    return rising and later.slope >= PERSIST_SHARE * whole.slope
