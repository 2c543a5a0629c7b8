"""Every scenario, in the order a full run takes them."""

from __future__ import annotations

from bench.scenarios import faults, quiet
from bench.scenarios.scenario import Scenario

SCENARIOS: tuple[Scenario, ...] = quiet.SCENARIOS + faults.SCENARIOS


def by_name(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)
