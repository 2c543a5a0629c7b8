"""S5, policy: what to decide about an escalation that reached it. Pure.

S5 receives system-wide criticals (viability critical, algedonic pain) and escalated alerts. Decisions:
- `hold`: S3's own actions failed to restore health (algedonic "control_failed") and
  `VSMMON_S5_HOLD_ON_CONTROL_FAILURE` is on: S3 stops acting automatically until that alert recovers (or
  the hold expires), so a controller that makes things worse stops; a person takes over.
- `protective_mode`: a system-wide critical while `VSMMON_S5_PROTECTIVE_QUEUES` names non-critical queues:
  the fleet stops consuming them (Celery `cancel_consumer`), leaving its capacity to the rest, until the
  alert that started it recovers (then `add_consumer` gives each worker its queue back).
- `notify`: everything else: the decision is recorded and shown; people are told.
A recovery of the alert that started a protective mode or a hold lifts it (decision `notify`, with
`lifts` naming what it lifted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vsmmon.alerts.model import Alert, Severity

Decision = Literal["notify", "protective_mode", "hold"]


@dataclass(frozen=True, slots=True)
class Standing:
    """What S5 has in force now: the fingerprint of the alert that started each measure, if any."""

    protective_for: str | None = None
    hold_for: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reason: str
    lifts: tuple[str, ...] = ()  # "protective_mode" and/or "hold", lifted by this recovery


def decide(
    alert: Alert, kind: str, standing: Standing, *, protective_queues: Sequence[str], hold_on_control_failure: bool
) -> Verdict:
    """S5's decision about one notification of `alert` (`kind`: firing, escalation, reminder, recovery)."""
    what = f"{alert.severity} {alert.type} on {alert.target}"
    if kind == "recovery":
        lifts = tuple(
            name
            for name, fp in (("protective_mode", standing.protective_for), ("hold", standing.hold_for))
            if fp == alert.fingerprint
        )
        return Verdict("notify", f"{what} recovered" + (f"; lifting {', '.join(lifts)}" if lifts else ""), lifts)
    condition = alert.labels.get("condition", "")
    if alert.type == "algedonic" and condition == "control_failed" and hold_on_control_failure:
        if standing.hold_for is not None:
            return Verdict("notify", f"{what}: S3 already held")
        return Verdict("hold", f"{what}: S3's action did not restore health; automatic control held")
    critical_wide = alert.severity is Severity.CRITICAL and alert.system_wide
    if critical_wide and protective_queues:
        if standing.protective_for is not None:
            return Verdict("notify", f"{what}: protective mode already on")
        names = ", ".join(protective_queues)
        return Verdict("protective_mode", f"{what}: stop consuming non-critical queues {names}")
    level = f" (escalation level {alert.escalation_level})" if alert.escalation_level else ""
    return Verdict("notify", f"{what}{level}: {alert.summary}".rstrip(": "))
