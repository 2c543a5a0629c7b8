"""S3*, audit: a sporadic, risk-weighted probe of one worker that does not rely on its self-report. Pure.

Every `VSMMON_AUDIT_INTERVAL_S` one live worker is drawn at random, the riskier ones more often (weight
1 + saturation + memory used / hard limit, from its last collected figures). The probe then compares
what the worker says (`vsm_metrics`, asked before and after) with what others see:
- reachability: the registry holds it live, so it must answer a ping;
- pool: the processes `inspect stats` lists against the concurrency it reports;
- canary: a `vsmmon.audit.canary` task sent to the worker's own direct queue (`<hostname>.dq2`) must leave
  that queue within the deadline, as the broker shows it;
- accounting: a canary the broker saw taken must appear in the worker's own count of canaries run.
Each mismatch is a finding; the audit's score is the share of checks without one. It feeds S3 and S5
(`vsmmon.systems`), and each finding is a warning alert on the worker.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vsmmon import names
from vsmmon.models import AgentInfo, AgentKind, AgentStatus


@dataclass(frozen=True, slots=True)
class Candidate:
    hostname: str
    saturation: float = 0.0
    memory_share: float = 0.0  # rss / hard limit

    @property
    def weight(self) -> float:
        return 1.0 + max(0.0, min(1.0, self.saturation)) + max(0.0, min(1.0, self.memory_share))


def candidates(agents: Iterable[AgentInfo], hard_bytes: float) -> list[Candidate]:
    """Online Celery workers, with the risk their last figures show (memory against their own limit, else
    `hard_bytes`)."""
    found = []
    for a in agents:
        if a.kind is not AgentKind.CELERY_WORKER or a.status is not AgentStatus.ONLINE:
            continue
        concurrency = a.metrics.get("concurrency") or 0.0
        saturation = a.metrics.get("active", 0.0) / concurrency if concurrency else 0.0
        limit = a.metrics.get("memory_limit_bytes") or hard_bytes
        found.append(Candidate(a.agent_id, saturation, a.metrics.get("rss_bytes", 0.0) / limit))
    return found


def pick(candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
    """One candidate drawn with probability proportional to its risk weight."""
    if not candidates:
        return None
    return rng.choices(list(candidates), weights=[c.weight for c in candidates], k=1)[0]


@dataclass(frozen=True, slots=True)
class Seen:
    """What the probe saw, independently of the worker's self-report."""

    pinged: bool
    processes: int | None  # inspect stats: pool processes
    canary_taken: bool | None  # the broker: the canary left the worker's direct queue in time
    canary_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class Said:
    """What the worker said about itself (`vsm_metrics`), before and after the canary."""

    concurrency: float | None
    canaries_before: float | None
    canaries_after: float | None


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # reachability | pool | canary | accounting
    message: str


@dataclass(frozen=True, slots=True)
class Audit:
    hostname: str
    at: datetime
    checks: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def score(self) -> float:
        return 1.0 - len(self.findings) / len(self.checks) if self.checks else 1.0


def judge(hostname: str, at: datetime, seen: Seen, said: Said, deadline_s: float) -> Audit:
    """Compare the probe's view with the self-report: each disagreement is a finding."""
    checks, findings = ["reachability"], []
    if not seen.pinged:
        findings.append(Finding("reachability", "the registry holds it live, but it did not answer a ping"))
        return Audit(hostname, at, tuple(checks), tuple(findings))
    if seen.processes is not None and said.concurrency is not None:
        checks.append("pool")
        if seen.processes != int(said.concurrency):
            message = f"inspect stats lists {seen.processes} pool processes; it reports {said.concurrency:g}"
            findings.append(Finding("pool", message))
    if seen.canary_taken is not None:
        checks.append("canary")
        if not seen.canary_taken:
            message = f"a canary sent to its direct queue was not taken within {deadline_s:g} s"
            findings.append(Finding("canary", message))
        elif said.canaries_before is not None and said.canaries_after is not None:
            checks.append("accounting")
            if said.canaries_after <= said.canaries_before:
                message = "the broker saw the canary taken, but its own count of canaries run did not move"
                findings.append(Finding("accounting", message))
    return Audit(hostname, at, tuple(checks), tuple(findings))


def canaries_run(reply: Mapping[str, Any] | None) -> float | None:
    """The worker's own count of canaries that succeeded, from a `vsm_metrics` reply."""
    if not isinstance(reply, Mapping):
        return None
    tasks = reply.get("tasks")
    if not isinstance(tasks, Mapping):
        return None
    figures = tasks.get(names.CANARY_TASK)
    if not isinstance(figures, Mapping):
        return 0.0  # no canary run yet
    value = figures.get("succeeded_total")
    return float(value) if isinstance(value, int | float) else None


def audit_to_dict(a: Audit) -> dict[str, Any]:
    return {"hostname": a.hostname, "at": a.at.isoformat(), "score": a.score, "checks": list(a.checks),
            "findings": [{"check": f.check, "message": f.message} for f in a.findings]}  # fmt: skip
