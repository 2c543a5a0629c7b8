"""JSON form of a health assessment (API, CLI, Flower, dashboard), and its storage rows.

Pain and bottlenecks are shown twice: as their messages under "algedonic" and "bottlenecks" (what the
dashboard, `vsmmon check` and earlier readers show), and as values under "pain" and "bottleneck_details".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from vsmmon.health.agents import Factor
from vsmmon.health.assessment import HealthAssessment, PreviousState
from vsmmon.health.viability import HealthState, ViabilityState
from vsmmon.models import Bottleneck, HealthRow, Pain


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 6)


def _inputs(inputs: Any) -> dict[str, Any]:
    return {k: (_num(v) if isinstance(v, float) else v) for k, v in dict(inputs).items()}


def factor_to_dict(f: Factor) -> dict[str, Any]:
    return {"name": f.name, "score": _num(f.score), "inputs": _inputs(f.inputs)}


def pain_to_dict(p: Pain) -> dict[str, Any]:
    return {"condition": p.condition.value, "target": p.target, "value": _num(p.value), "detail": p.detail,
            "message": p.message}  # fmt: skip


def bottleneck_to_dict(b: Bottleneck) -> dict[str, Any]:
    return {"target": b.target, "factor": b.factor, "value": _num(b.value), "message": b.message}


def assessment_to_dict(a: HealthAssessment, *, agents: bool = True) -> dict[str, Any]:
    """Every score with the factors and inputs it came from."""
    body: dict[str, Any] = {
        "at": a.at.isoformat(),
        "viability": _num(a.viability),
        "viability_state": a.viability_state.value,
        "viability_cap": None
        if a.viability_cap is None
        else {"at_most": a.viability_cap[0], "because": a.viability_cap[1]},
        "overall_health": _num(a.overall),
        "alert": a.alert,
        "alerts": [{"subject": subject, "kind": kind} for subject, kind in a.alerts],
        "algedonic": [p.message for p in a.algedonic],
        "bottlenecks": [b.message for b in a.bottlenecks],
        "pain": [pain_to_dict(p) for p in a.algedonic],
        "bottleneck_details": [bottleneck_to_dict(b) for b in a.bottlenecks],
        "indicators": _inputs(a.indicators),
        "expected_capacity": _num(a.expected_capacity),
        "systems": {
            name: {
                "score": _num(s.score),
                "state": a.states[name].value,
                "factors": [factor_to_dict(f) for f in s.factors],
            }
            for name, s in a.systems.items()
        },
    }
    if agents:
        body["agents"] = [
            {
                "agent_id": h.agent_id,
                "score": _num(h.score),
                "state": a.agent_states[h.agent_id].value,
                "factors": [factor_to_dict(f) for f in h.factors],
            }
            for h in a.agents
        ]
    return body


def rows(a: HealthAssessment, check_id: UUID | None = None) -> Iterator[HealthRow]:
    """One `health_assessments` row per agent, per system, and for viability, made as they are stored: the
    rows of 10,000 agents with their factors held at once were ~20 MB of the health process."""
    for h in a.agents:
        yield HealthRow(a.at, "agent", h.agent_id, h.score, a.agent_states[h.agent_id].value,
                        {"factors": [factor_to_dict(f) for f in h.factors]}, check_id)  # fmt: skip
    for name, s in a.systems.items():
        yield HealthRow(a.at, "system", name, s.score, a.states[name].value,
                        {"factors": [factor_to_dict(f) for f in s.factors]}, check_id)  # fmt: skip
    summary = assessment_to_dict(a, agents=False)
    yield HealthRow(a.at, "viability", "viability", a.viability, a.viability_state.value, summary, check_id)


def previous_to_dict(p: PreviousState) -> dict[str, Any]:
    return {"at": p.at.isoformat(), "states": {k: v.value for k, v in p.states.items()}, "viability": p.viability,
            "viability_state": p.viability_state.value, "expected_capacity": p.expected_capacity}  # fmt: skip


def previous_from_dict(raw: Any) -> PreviousState | None:
    """The carried state, or None when it is missing or malformed (the next check starts afresh)."""
    from datetime import datetime

    try:
        return PreviousState(
            datetime.fromisoformat(raw["at"]),
            {k: HealthState(v) for k, v in raw["states"].items()},
            float(raw["viability"]),
            ViabilityState(raw["viability_state"]),
            None if raw.get("expected_capacity") is None else float(raw["expected_capacity"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
