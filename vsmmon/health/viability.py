"""Bands, hysteresis and viability: the seed's formula, with its missing pieces defined.

- Bands (seed): score > 0.8 healthy, 0.5 < score <= 0.8 degraded, score <= 0.5 unhealthy.
- Hysteresis (ours): a worse band is entered at the seed threshold, a better one only once the
  score clears the threshold by `margin` (default 0.05), so a score hovering at 0.8 does not flap.
- Status scores (seed): healthy 1.0, degraded 0.6, unhealthy 0.2, unknown 0.5.
- overall_health = sum(w_i * H_i) over the systems whose score is known, the weights renormalised
  over them (a system with no data does not pull the number towards 0 or 1; its status, unknown,
  still counts 0.5 in the status term).
- viability = clamp((sum(w_i * status_score_i) + overall_health) / 2).
- Caps (ours, `../shared/design/vsm-model.md`): after the formula, S1 `unhealthy` (or registered S1 units
  and none of them live) holds viability at most 0.49 (critical), any other system `unhealthy` at most 0.69
  (warning): the seed's formula alone lets a dead fleet with S2-S5 healthy read 0.73, normal. An unknown
  system caps nothing.
- Viability alerts, edge-triggered (seed): critical on entering critical (< 0.5), warning on leaving
  normal (< 0.7), recovery on returning to normal; the same hysteresis margin applies on the way up.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

HEALTHY_ABOVE = 0.8
UNHEALTHY_AT_OR_BELOW = 0.5
WARNING_BELOW = 0.7
CRITICAL_BELOW = 0.5
DEFAULT_WEIGHTS: Mapping[str, float] = {"S1": 0.3, "S2": 0.1, "S3": 0.2, "S4": 0.2, "S5": 0.2}
S1_UNHEALTHY_CAP = 0.49  # in the critical band: operations failing is the system failing
UNHEALTHY_CAP = 0.69  # in the warning band: any other system failing


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class ViabilityState(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"


STATUS_SCORE: Mapping[HealthState, float] = {
    HealthState.HEALTHY: 1.0,
    HealthState.DEGRADED: 0.6,
    HealthState.UNHEALTHY: 0.2,
    HealthState.UNKNOWN: 0.5,
}
_RANK = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


def band(score: float | None) -> HealthState:
    """The seed's band of a score, without hysteresis."""
    if score is None:
        return HealthState.UNKNOWN
    if score > HEALTHY_ABOVE:
        return HealthState.HEALTHY
    if score > UNHEALTHY_AT_OR_BELOW:
        return HealthState.DEGRADED
    return HealthState.UNHEALTHY


def band_with_hysteresis(score: float | None, previous: HealthState | None, margin: float = 0.05) -> HealthState:
    """The band, except that moving to a better band needs the score to clear its threshold by `margin`."""
    plain = band(score)
    if score is None or previous is None or previous is HealthState.UNKNOWN or plain is HealthState.UNKNOWN:
        return plain
    if _RANK[plain] >= _RANK[previous]:
        return plain  # same or worse: the seed thresholds apply at once
    return band(score - margin) if _RANK[band(score - margin)] < _RANK[previous] else previous


def overall_health(scores: Mapping[str, float | None], weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float | None:
    """Weighted mean of the known system scores (weights renormalised); None when none is known."""
    known = {s: v for s, v in scores.items() if v is not None and weights.get(s, 0) > 0}
    total = sum(weights[s] for s in known)
    if not known or total <= 0:
        return None
    return sum(weights[s] * v for s, v in known.items()) / total


def viability(
    states: Mapping[str, HealthState],
    scores: Mapping[str, float | None],
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> float:
    """clamp((sum(w_i * status_score_i) + overall_health) / 2); an unknown overall counts 0.5."""
    weighted_status = sum(weights[s] * STATUS_SCORE[states.get(s, HealthState.UNKNOWN)] for s in weights)
    overall = overall_health(scores, weights)
    return clamp((weighted_status + (0.5 if overall is None else overall)) / 2)


def viability_cap(
    states: Mapping[str, HealthState], *, s1_units: int = 0, s1_live: int = 0
) -> tuple[float, str] | None:
    """The highest viability the systems' states allow, and why; None when nothing caps it.

    `s1_units` / `s1_live`: the registered S1 units and how many of them are live (units and none live caps
    like S1 unhealthy; no units at all is S1 unknown, which caps nothing)."""
    if states.get("S1") is HealthState.UNHEALTHY:
        return S1_UNHEALTHY_CAP, "S1 unhealthy"
    if s1_units > 0 and s1_live == 0:
        return S1_UNHEALTHY_CAP, "no live S1 unit"
    failing = sorted(name for name, state in states.items() if state is HealthState.UNHEALTHY)
    if failing:
        return UNHEALTHY_CAP, f"{', '.join(failing)} unhealthy"
    return None


def viability_state(value: float, previous: ViabilityState | None, margin: float = 0.05) -> ViabilityState:
    """normal / warning / critical, entering worse states at the seed thresholds, leaving them `margin` above."""
    if value < CRITICAL_BELOW:
        return ViabilityState.CRITICAL
    if previous is ViabilityState.CRITICAL and value < CRITICAL_BELOW + margin:
        return ViabilityState.CRITICAL
    if value < WARNING_BELOW:
        return ViabilityState.WARNING
    if previous in (ViabilityState.WARNING, ViabilityState.CRITICAL) and value < WARNING_BELOW + margin:
        return ViabilityState.WARNING
    return ViabilityState.NORMAL


def viability_alert(previous: ViabilityState | None, current: ViabilityState) -> str | None:
    """The seed's edge-triggered alert: `critical`, `warning`, `recovery` or None."""
    before = previous or ViabilityState.NORMAL
    if current is ViabilityState.CRITICAL and before is not ViabilityState.CRITICAL:
        return "critical"
    if current is ViabilityState.WARNING and before is ViabilityState.NORMAL:
        return "warning"
    if current is ViabilityState.NORMAL and before is not ViabilityState.NORMAL:
        return "recovery"
    return None


def state_alert(previous: HealthState | None, current: HealthState) -> str | None:
    """The seed's health state machine: degraded raises a warning, unhealthy escalates as critical,
    a return to healthy from either is a recovery; unknown states raise nothing."""
    if previous is None or HealthState.UNKNOWN in (previous, current) or previous is current:
        return None
    if current is HealthState.UNHEALTHY:
        return "critical"
    if current is HealthState.DEGRADED and previous is HealthState.HEALTHY:
        return "warning"
    if current is HealthState.HEALTHY:
        return "recovery"
    return None
