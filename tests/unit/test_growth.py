import math
import random
import re
from datetime import UTC, datetime

import pytest

from vsmmon.analyse.analysis import MemorySeries, QueueDemand, analyse_fleet, merged
from vsmmon.analyse.growth import EXTRAPOLATE_MAX, Growth, growth, last_step, regime_start

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


def test_a_sample_that_is_not_a_number_costs_its_point_not_the_analysis() -> None:
    ts = every(2.0, 30)
    vs = [120 * MB + 8 * MB * t for t in ts]
    vs[7], vs[20] = math.nan, math.inf
    result = analyse_fleet(NOW, [MemorySeries("leaky", (ts, vs), LIMIT)], {("leaky", "cpu_percent", 300): (ts, vs)}, [])
    assert [r.target for r in result.recommendations] == ["leaky"]
    assert [t.n for *_, t in result.trends] == [28]


def test_a_worker_already_past_its_limit_has_no_time_left_and_is_told_so() -> None:
    ts = every(5.0, 40)
    vs = noisy([1100 * MB] * 40, 1 * MB)  # flat, above its 1024 MB limit
    g = growth(ts, vs, LIMIT)
    assert g is not None
    assert g.time_to_limit_s == 0.0  # S4 scores 0, not 1 ("not approaching")
    result = analyse_fleet(NOW, [MemorySeries("fat", (ts, vs), LIMIT)], {}, [])
    assert result.exhaustion_s["memory:fat"] == 0.0
    [rec] = result.recommendations
    assert re.search(r"is at 1(099|100) MB, past its 1024 MB limit", rec.rationale), rec.rationale


@pytest.mark.parametrize("phi", [0.0, 0.7])
def test_a_leak_starting_inside_a_stable_hour_is_forecast_from_its_start_and_warned_in_time(phi: float) -> None:
    """+1 MB/s toward 1 GiB from 300 MB, after 58 min of stable memory (white or AR(1) noise, 0.3 MB, 5 s
    samples). Fitted over the whole hour the line put the limit 203,024 s away 2 min in (truth 604 s)."""
    rng = random.Random(11)
    noise, e = [], 0.0
    for _ in range(720 + 120):
        e = phi * e + math.sqrt(1 - phi * phi) * rng.gauss(0.0, 0.3 * MB)
        noise.append(e)
    start = 58 * 60.0

    def at(seconds_in: float) -> Growth:
        ts = [start + seconds_in - 5.0 * i for i in range(719, -1, -1)]  # the last hour of 5 s samples
        vs = [300 * MB + max(0.0, t - start) * MB + noise[round(t / 5.0)] for t in ts]
        g = growth(ts, vs, LIMIT)
        assert g is not None
        return g

    truth_s = (1024 - 300 - 120) * 1.0  # 2 min in: 604 s to go
    two_min = at(120.0)
    assert two_min.estimate_s == pytest.approx(truth_s, rel=0.25)
    assert two_min.fit.slope == pytest.approx(MB, rel=0.25)
    trusted_at = next(s for s in range(120, 724, 5) if at(float(s)).time_to_limit_s is not None)
    # the analysis runs every minute: trusted by 300 s warns before half the 724 s (362 s) has passed
    assert trusted_at <= 300, trusted_at


@pytest.mark.parametrize("phi", [0.0, 0.7])
def test_noise_bends_a_regime_in_at_most_one_hour_window_of_a_hundred(phi: float) -> None:
    from vsmmon.analyse.growth import last_bend

    rng = random.Random(int(phi * 10) + 1)
    bent = 0
    for _ in range(100):
        e, vs = 0.0, []
        for _ in range(720):
            e = phi * e + math.sqrt(1 - phi * phi) * rng.gauss(0.0, 0.3 * MB)
            vs.append(300 * MB + e)
        bent += last_bend(every(5.0, 720), vs) > 0
    assert bent <= 1


def test_a_pushed_worker_leaking_1_mb_s_for_2_min_is_named_in_the_recommendations_before_its_limit_is_in_reach() -> (
    None
):
    ts = every(5.0, 25)  # 2 min
    vs = noisy([100 * MB + 1 * MB * t for t in ts], 0.2 * MB)
    result = analyse_fleet(NOW, [MemorySeries("sim-leak-0", (ts, vs), LIMIT)], {}, [])
    [rec] = result.recommendations
    assert (rec.kind, rec.target, rec.action["command"]) == ("optimization", "sim-leak-0", "bound_memory")
    assert "grows steadily 1.00 MB/s" in rec.rationale
    assert "1024 MB limit is 13 min" in rec.rationale  # (1024 - 220) s at 1 MB/s: too far to trust from 2 min
    assert result.exhaustion_s["memory:sim-leak-0"] is None  # not yet S4's business
    warm = every(5.0, 20)  # 95 s of growth: too short to report
    assert (
        analyse_fleet(
            NOW, [MemorySeries("w", (warm, [100 * MB + MB * t for t in warm]), LIMIT)], {}, []
        ).recommendations
        == ()
    )


def test_steady_growth_whose_limit_is_hours_away_is_still_named() -> None:
    """Trusted (the regime is long) but past the hour: no restart, and so a growth trend."""
    ts = every(5.0, 600)
    limit = 300 * MB + (ts[-1] + 5000.0) * 0.05 * MB
    vs = noisy([300 * MB + 0.05 * MB * t for t in ts], 2 * MB)
    g = growth(ts, vs, limit)
    assert g is not None
    assert g.time_to_limit_s is not None
    assert g.time_to_limit_s > 3600.0
    [rec] = analyse_fleet(NOW, [MemorySeries("slow", (ts, vs), limit)], {}, []).recommendations
    assert rec.action["command"] == "bound_memory"


def test_an_exact_line_is_one_regime() -> None:
    ts = [float(i) for i in range(720)]
    assert regime_start(ts, [2.5e8 + (1e6 / 3) * t for t in ts]) == 0


def test_an_analysis_in_parts_merges_to_the_analysis_of_the_whole_fleet() -> None:
    """The analysis task reads the fleet a batch at a time (bounded memory) and merges the parts."""
    ts = every(5.0, 40)
    memory = [MemorySeries(f"w{i}", (ts, noisy([100 * MB + (i % 3) * MB * t for t in ts], 0.2 * MB)), LIMIT)
              for i in range(6)]  # fmt: skip
    series = {(m.agent_id, "cpu_percent", 300): (ts, [10.0 + i * t / 100 for t in ts]) for i, m in enumerate(memory)}
    queues = [QueueDemand("jobs", 20.0, 5.0, 4.0, 500.0, 4, (("w0", 4),))]
    whole = analyse_fleet(NOW, memory, series, queues)
    assert whole.recommendations
    assert whole.plans
    assert whole.forecasts
    parts = [analyse_fleet(NOW, memory[i : i + 2], {k: v for k, v in series.items() if k[0] in {m.agent_id for m in
             memory[i : i + 2]}}, []) for i in range(0, 6, 2)]  # fmt: skip
    together = merged(NOW, [*parts, analyse_fleet(NOW, [], {}, queues)])
    assert together.trends == whole.trends
    assert together.forecasts == whole.forecasts
    assert together.exhaustion_s == whole.exhaustion_s
    assert together.plans == whole.plans
    assert sorted(r.fingerprint for r in together.recommendations) == sorted(
        r.fingerprint for r in whole.recommendations
    )
