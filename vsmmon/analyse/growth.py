"""Growth stage: where a memory series is heading, read from its current regime and only as far as it was watched.

Pure. A worker's memory is a series of regimes: a pool resize or a restart starts a new one, and so does a
step (a model loaded, a pool process forked). A least-squares line over several regimes reads a step as growth,
and a line over a few seconds of a process warming up extrapolated to its limit an hour away reads warm-up as a
leak. So a time to the limit is claimed only when
- the line is fitted since the last break (`breaks`, or a step: one increment `STEP_FACTOR` times the typical
  increment, of the series and of those after it, and at least `STEP_MIN_SHARE` of the value);
- the growth persists: the later half of the regime rises significantly too, at least half as fast as the
  whole (warm-up and caches level off; a leak does not);
- the limit is at most `EXTRAPOLATE_MAX` times the watched span ahead (nothing says a line holds much
  further than it was seen to hold).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from vsmmon.analyse.forecast import time_to_limit
from vsmmon.analyse.trends import Direction, LinearFit, direction_of, fit_line

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


@dataclass(frozen=True, slots=True)
class Growth:
    """The current regime of a series: its line, where it starts, and the time to the limit it supports."""

    fit: LinearFit
    start: int  # index of the regime's first point
    span_s: float
    steady: bool  # rising significantly, and so in its later half
    time_to_limit_s: float | None  # None: not approaching the limit, or not within EXTRAPOLATE_MAX x span_s


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


def regime_start(ts_s: Sequence[float], values: Sequence[float], breaks_s: Sequence[float] = ()) -> int:
    """Index of the current regime's first point: after the newest break time in `breaks_s` and the newest step."""
    after_break = bisect.bisect_left(ts_s, max(breaks_s)) if breaks_s else 0
    return after_break + last_step(values[after_break:])


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
    tte = time_to_limit(ts, vs, limit, fit=fit)  # None unless rising significantly
    steady = tte is not None and _persists(ts, vs, fit)
    trusted = steady and tte is not None and tte <= EXTRAPOLATE_MAX * span_s
    return Growth(fit, start, span_s, steady, tte if trusted else None)


def _persists(ts: Sequence[float], vs: Sequence[float], whole: LinearFit) -> bool:
    middle = bisect.bisect_left(ts, (ts[0] + ts[-1]) / 2.0)
    later_ts, later_vs = ts[middle:], vs[middle:]
    if len(later_vs) < 3 or later_ts[-1] <= later_ts[0]:
        return False
    later = fit_line(later_ts, later_vs)
    rising = direction_of(later.slope, later.slope_stderr, later.n) is Direction.RISING
    return rising and later.slope >= PERSIST_SHARE * whole.slope
