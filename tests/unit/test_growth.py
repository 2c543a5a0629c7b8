import math
import random
from datetime import UTC, datetime

import pytest

from vsmmon.analyse.analysis import MemorySeries, analyse_fleet
from vsmmon.analyse.growth import EXTRAPOLATE_MAX, growth, last_step, regime_start

MB = 1024 * 1024
LIMIT = 1024 * MB
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def noisy(values: list[float], sigma: float, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [v + rng.gauss(0.0, sigma) for v in values]


def every(step_s: float, n: int) -> list[float]:
    return [step_s * i for i in range(n)]


def test_a_steady_leak_reaches_its_limit_and_says_when() -> None:
    ts = every(2.0, 30)
    vs = noisy([120 * MB + 8 * MB * t for t in ts], 0.5 * MB)
    g = growth(ts, vs, LIMIT)
    assert g is not None
    assert g.steady
    assert g.start == 0
    # 120 MB + 8 MB/s reaches 1024 MB at t = 113 s; the last sample is at 58 s
    assert g.time_to_limit_s == pytest.approx(113.0 - 58.0, abs=2.0)


def test_warm_up_that_levels_off_is_not_growth_toward_the_limit() -> None:
    # a fresh process: +60 MB in its first minutes, leveling off (time constant 60 s), watched for 6 min
    ts = every(2.0, 180)
    vs = noisy([150 * MB + 60 * MB * (1.0 - math.exp(-t / 60.0)) for t in ts], 0.2 * MB)
    g = growth(ts, vs, LIMIT)
    assert g is not None
    assert g.fit.slope > 0.0  # the whole line does rise ...
    assert not g.steady  # ... but its later half no longer does
    assert g.time_to_limit_s is None


def test_a_few_seconds_of_growth_are_not_extrapolated_an_hour_ahead() -> None:
    # 13 samples (24 s) of 0.3 MB/s: the line would reach 1024 MB in ~46 min, 100 x what was watched
    ts = every(2.0, 13)
    vs = noisy([180 * MB + 0.3 * MB * t for t in ts], 0.05 * MB)
    g = growth(ts, vs, LIMIT)
    assert g is not None
    assert g.steady
    assert g.time_to_limit_s is None
    longer = every(2.0, 900)  # the same growth watched for 30 min is trusted up to 2 h ahead: 46 min is in reach
    g = growth(longer, noisy([180 * MB + 0.3 * MB * t for t in longer], 0.05 * MB), LIMIT)
    assert g is not None
    assert g.time_to_limit_s is not None
    assert g.time_to_limit_s <= EXTRAPOLATE_MAX * g.span_s


def test_a_step_starts_a_new_regime_and_a_flat_one_does_not_grow() -> None:
    # a pool grown by two processes: +60 MB in one sample, then flat
    ts = every(2.0, 60)
    vs = noisy([200 * MB if i < 40 else 260 * MB for i in range(60)], 0.1 * MB)
    assert last_step(vs) == 40
    g = growth(ts, vs, LIMIT)
    assert g is not None
    assert g.start == 40
    assert not g.steady
    assert g.time_to_limit_s is None


def test_the_start_of_a_leak_after_a_flat_stretch_is_growth_not_a_step() -> None:
    vs = [120 * MB] * 40 + [120 * MB + 16 * MB * i for i in range(1, 20)]
    assert last_step(vs) == 0
    assert last_step(noisy([200 * MB] * 720, 0.2 * MB)) == 0  # nor is noise
    assert last_step([200 * MB + (4096 if i % 3 else 0) for i in range(720)]) == 0  # nor a page or two


def test_a_break_time_cuts_the_regime_where_it_happened() -> None:
    ts = every(5.0, 40)
    vs = [100 * MB + 0.5 * MB * t for t in ts]  # smooth: no step to see
    assert regime_start(ts, vs, breaks_s=(50.0,)) == 10
    assert regime_start(ts, vs, breaks_s=(50.0, 150.0)) == 30  # the newest break
    g = growth(ts, vs, LIMIT, breaks_s=(180.0,))
    assert g is None  # 4 points since the break: too few to judge


def test_the_analysis_gives_no_leak_for_warm_up_and_a_pool_resize_but_does_for_a_leak() -> None:
    warm = every(2.0, 13)
    resized = every(2.0, 60)
    leak = every(2.0, 30)
    memory = [
        MemorySeries("fresh", (warm, noisy([180 * MB + 0.3 * MB * t for t in warm], 0.05 * MB)), LIMIT),
        MemorySeries(
            "resized", (resized, [200 * MB + (60 * MB if t >= 80 else 0) + 1.1 * MB * t for t in resized]), LIMIT,
            breaks_s=(80.0,),
        ),
        MemorySeries("leaky", (leak, noisy([120 * MB + 8 * MB * t for t in leak], 0.5 * MB)), LIMIT),
    ]  # fmt: skip
    result = analyse_fleet(NOW, memory, {}, [])
    assert result.exhaustion_s["memory:fresh"] is None
    assert [r.target for r in result.recommendations] == ["leaky"]
    leaky = result.exhaustion_s["memory:leaky"]
    assert leaky is not None
    assert leaky < 60.0
