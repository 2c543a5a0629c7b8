"""Labelled truth: what must fire, what may, what S3 must (not) do, and the verdict on what happened.

Every alert that fired (a "firing" event in the pipeline's history; one that stayed pending and closed
is no alert) is labelled:
- true positive: it matches a `must` expectation and fired at or after the fault;
- allowed: it matches an `allowed` expectation (neither true nor false: e.g. viability during an outage);
- false positive: anything else, severity "info" included, and every instance of a condition that fired,
  resolved and fired again at the same severity (a flap), whatever its label.
A `must` is detected when an alert matching it fired within its deadline after the fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
APPLIED_ACTIONS = ("pool_grow", "pool_shrink", "autoscale")


@dataclass(frozen=True, slots=True)
class Expect:
    """Alerts whose type and target match `type` and `target` (regexes, whole match), at least `min_severity`."""

    type: str
    target: str = ".*"
    min_severity: str = "info"
    deadline_s: float | None = None  # must: detected only when fired this long after the fault at most
    wish_s: float | None = None  # the wish for the time to detect, reported beside it
    why: str = ""
    label: str = ""  # a regex one of the alert's labels, written `key=value`, must match (e.g. `command=pool_grow`)

    def matches(self, alert: FiredAlert) -> bool:
        return (
            re.fullmatch(self.type, alert.type) is not None
            and re.fullmatch(self.target, alert.target) is not None
            and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]
            and (not self.label or any(re.fullmatch(self.label, f"{k}={v}") for k, v in alert.labels.items()))
        )

    def describe(self) -> str:
        severity = "" if self.min_severity == "info" else f" >= {self.min_severity}"
        target = "" if self.target == ".*" else f" {self.target}"
        label = f" ({self.label})" if self.label else ""
        return f"{self.type}{target}{label}{severity}"


@dataclass(frozen=True, slots=True)
class ActExpect:
    """S3 actions `action` (one of APPLIED_ACTIONS, or "any") on a target matching `target`."""

    action: str = "any"
    target: str = ".*"
    exactly: int | None = None  # must_act: this many; None: at least one

    def matches(self, action: TakenAction) -> bool:
        kind = self.action in ("any", action.action)
        return kind and re.fullmatch(self.target, action.target) is not None

    def describe(self) -> str:
        count = "" if self.exactly is None else f" x{self.exactly}"
        target = "" if self.target == ".*" else f" on {self.target}"
        return f"{self.action}{target}{count}"


@dataclass(frozen=True, slots=True)
class FiredAlert:
    id: str
    fingerprint: str
    type: str
    target: str
    severity: str
    fired_at: datetime
    resolved_at: datetime | None
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        labels = "".join(f" {k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.type} {self.target}{labels} {self.severity}"


@dataclass(frozen=True, slots=True)
class TakenAction:
    at: datetime
    target: str
    action: str  # APPLIED_ACTIONS; "none" records are not taken actions
    reason: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    """A scenario-specific fact beyond alerts (a registry status, a backlog that fell)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Labelled:
    alert: FiredAlert
    label: str  # "tp", "allowed", "fp", "flap"
    after_fault_s: float | None


@dataclass(frozen=True, slots=True)
class MustOutcome:
    expect: Expect
    detected_s: float | None  # time to detect from the fault, within the deadline
    first_s: float | None  # the first matching alert's time from the fault, whatever the deadline


@dataclass(frozen=True, slots=True)
class Verdict:
    labelled: tuple[Labelled, ...]
    musts: tuple[MustOutcome, ...]
    actions: tuple[tuple[TakenAction, str], ...]  # each applied action: "must", "must not" or "allowed"
    act_misses: tuple[str, ...]  # must_act expectations not met (with the count seen)
    checks: tuple[Check, ...] = field(default=())

    @property
    def false_positives(self) -> list[Labelled]:
        return [x for x in self.labelled if x.label in ("fp", "flap")]

    @property
    def true_positives(self) -> list[Labelled]:
        return [x for x in self.labelled if x.label == "tp"]

    @property
    def missed(self) -> list[MustOutcome]:
        return [m for m in self.musts if m.detected_s is None]

    @property
    def passed(self) -> bool:
        return (
            not self.false_positives
            and not self.missed
            and not self.act_misses
            and all(label != "must not" for _, label in self.actions)
            and all(c.passed for c in self.checks)
        )


def seconds_after(at: datetime, fault_at: datetime | None) -> float | None:
    return None if fault_at is None else (at - fault_at).total_seconds()


def judge(
    alerts: Sequence[FiredAlert],
    actions: Sequence[TakenAction],
    *,
    fault_at: datetime | None,
    must: Sequence[Expect],
    allowed: Sequence[Expect],
    must_act: Sequence[ActExpect],
    must_not_act: Sequence[ActExpect],
    checks: Sequence[Check] = (),
) -> Verdict:
    """Label every fired alert and S3 action against the scenario's truth."""
    ordered = sorted(alerts, key=lambda a: a.fired_at)
    labelled = []
    for i, alert in enumerate(ordered):
        after = seconds_after(alert.fired_at, fault_at)
        if is_flap(alert, ordered[:i]):
            label = "flap"
        elif any(m.matches(alert) for m in must) and after is not None and after >= -1.0:
            label = "tp"
        elif any(a.matches(alert) for a in allowed):
            label = "allowed"
        else:
            label = "fp"
        labelled.append(Labelled(alert, label, after))
    outcomes = []
    for m in must:
        times = [t for x in labelled if x.label == "tp" and m.matches(x.alert) and (t := x.after_fault_s) is not None]
        first = min(times, default=None)
        detected = first if first is not None and (m.deadline_s is None or first <= m.deadline_s) else None
        outcomes.append(MustOutcome(m, detected, first))
    applied = [a for a in actions if a.action in APPLIED_ACTIONS and not a.dry_run]
    taken = []
    for a in applied:
        if any(x.matches(a) for x in must_not_act):
            label = "must not"
        elif any(x.matches(a) for x in must_act):
            label = "must"
        else:
            label = "allowed"
        taken.append((a, label))
    act_misses = []
    for x in must_act:
        seen = sum(1 for a in applied if x.matches(a))
        if (x.exactly is None and seen == 0) or (x.exactly is not None and seen != x.exactly):
            act_misses.append(f"{x.describe()}: {seen} taken")
    return Verdict(tuple(labelled), tuple(outcomes), tuple(taken), tuple(act_misses), tuple(checks))


def is_flap(alert: FiredAlert, earlier: Sequence[FiredAlert]) -> bool:
    """The same condition at the same severity fired before, resolved, and fires again."""
    return any(
        e.fingerprint == alert.fingerprint
        and e.severity == alert.severity
        and e.resolved_at is not None
        and e.resolved_at <= alert.fired_at
        for e in earlier
    )
