"""The seed's formula and bands, checked on cases worked by hand."""

import pytest

from vsmmon.health.viability import (
    HealthState as H,
)
from vsmmon.health.viability import (
    ViabilityState as V,
)
from vsmmon.health.viability import (
    band,
    band_with_hysteresis,
    overall_health,
    state_alert,
    viability,
    viability_alert,
    viability_state,
)


def test_viability_equals_the_seed_formula_worked_by_hand() -> None:
    states = {"S1": H.HEALTHY, "S2": H.DEGRADED, "S3": H.HEALTHY, "S4": H.UNKNOWN, "S5": H.UNHEALTHY}
    scores = {"S1": 0.9, "S2": 0.7, "S3": 0.85, "S4": None, "S5": 0.4}
    # status term: .3*1 + .1*.6 + .2*1 + .2*.5 + .2*.2 = 0.70
    # overall (S4 unknown, weights renormalised): (.27 + .07 + .17 + .08) / .8 = 0.7375
    assert overall_health(scores) == pytest.approx(0.7375)
    assert viability(states, scores) == pytest.approx((0.70 + 0.7375) / 2)


def test_viability_extremes_and_clamping() -> None:
    all_good = dict.fromkeys(("S1", "S2", "S3", "S4", "S5"), H.HEALTHY)
    assert viability(all_good, dict.fromkeys(all_good, 1.0)) == pytest.approx(1.0)
    all_bad = dict.fromkeys(all_good, H.UNHEALTHY)
    assert viability(all_bad, dict.fromkeys(all_good, 0.0)) == pytest.approx(0.1)  # (0.2 + 0) / 2
    nothing_known = dict.fromkeys(all_good, H.UNKNOWN)
    assert viability(nothing_known, dict.fromkeys(all_good)) == pytest.approx(0.5)  # (0.5 + 0.5) / 2
    custom = {"S1": 1.0, "S2": 0.0, "S3": 0.0, "S4": 0.0, "S5": 0.0}
    assert viability(all_good, dict.fromkeys(all_good, 1.0), custom) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("score", "state"),
    [
        (0.81, H.HEALTHY),
        (0.8, H.DEGRADED),
        (0.51, H.DEGRADED),
        (0.5, H.UNHEALTHY),
        (0.0, H.UNHEALTHY),
        (None, H.UNKNOWN),
    ],
)
def test_bands(score: float | None, state: H) -> None:
    assert band(score) is state


def test_hysteresis_enters_worse_bands_at_once_and_better_ones_past_a_margin() -> None:
    assert band_with_hysteresis(0.79, H.HEALTHY) is H.DEGRADED
    assert band_with_hysteresis(0.82, H.DEGRADED) is H.DEGRADED  # hovering at the edge: no flap
    assert band_with_hysteresis(0.86, H.DEGRADED) is H.HEALTHY
    assert band_with_hysteresis(0.52, H.UNHEALTHY) is H.UNHEALTHY
    assert band_with_hysteresis(0.56, H.UNHEALTHY) is H.DEGRADED
    assert band_with_hysteresis(0.95, H.UNHEALTHY) is H.HEALTHY
    assert band_with_hysteresis(0.82, None) is H.HEALTHY
    scores = [0.81, 0.79, 0.81, 0.79, 0.81, 0.79]
    state = None
    seen = []
    for s in scores:
        state = band_with_hysteresis(s, state)
        seen.append(state)
    assert seen == [H.HEALTHY, H.DEGRADED, H.DEGRADED, H.DEGRADED, H.DEGRADED, H.DEGRADED]


def test_viability_alerts_are_edge_triggered() -> None:
    values = [0.9, 0.65, 0.66, 0.45, 0.52, 0.6, 0.72, 0.76, 0.9]
    state, alerts, states = None, [], []
    for v in values:
        new = viability_state(v, state)
        alerts.append(viability_alert(state, new))
        states.append(new)
        state = new
    assert states == [V.NORMAL, V.WARNING, V.WARNING, V.CRITICAL, V.CRITICAL, V.WARNING, V.WARNING, V.NORMAL, V.NORMAL]
    assert alerts == [None, "warning", None, "critical", None, None, None, "recovery", None]
    assert viability_alert(V.NORMAL, V.CRITICAL) == "critical"  # straight to critical: one critical alert


def test_system_state_alerts_follow_the_seed_state_machine() -> None:
    assert state_alert(H.HEALTHY, H.DEGRADED) == "warning"
    assert state_alert(H.DEGRADED, H.UNHEALTHY) == "critical"
    assert state_alert(H.HEALTHY, H.UNHEALTHY) == "critical"
    assert state_alert(H.UNHEALTHY, H.DEGRADED) is None  # better, not yet healthy
    assert state_alert(H.UNHEALTHY, H.HEALTHY) == "recovery"
    assert state_alert(H.DEGRADED, H.HEALTHY) == "recovery"
    assert state_alert(H.HEALTHY, H.HEALTHY) is None
    assert state_alert(None, H.UNHEALTHY) is None  # no previous check: no edge
    assert state_alert(H.UNKNOWN, H.UNHEALTHY) is None


def test_an_assessment_without_any_known_system_gives_no_verdict_and_no_drop() -> None:
    """At start-up (or while every input is missing) every system is unknown: viability is the seed's 0.5 for
    "no data", which is not a warning, and going to or from it is not a fast drop."""
    from datetime import UTC, datetime

    from vsmmon.health.assessment import PreviousState, evaluate
    from vsmmon.health.systems import ControlInputs

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    blank = evaluate(now, [], [], ControlInputs())
    assert set(blank.states.values()) == {H.UNKNOWN}
    assert blank.viability == 0.5
    assert blank.viability_state is V.NORMAL
    assert blank.alerts == ()
    assert blank.algedonic == ()
    known = dict.fromkeys(blank.states, H.HEALTHY)
    after_known = evaluate(now, [], [], ControlInputs(), PreviousState(now, known, 0.95, V.NORMAL, None))
    assert after_known.algedonic == ()  # 0.95 -> "no data" is not a fall
    assert after_known.viability_state is V.NORMAL
