"""S2-S5 health, by `vsm-model.md`. Each system score is the mean of its known factors.

Choices the model leaves open, written down here:
- flow balance of a queue with no traffic (in + out = 0) is unknown, not perfect;
- evenness of a queue is judged only while it holds a backlog: with nothing waiting every consumer takes
  what arrives, and one busy consumer beside an idle one is not imbalance (two workers sharing a quiet
  queue read 0.00 otherwise); with a backlog, an idle consumer beside a busy one is;
- oscillation counts sign reversals of successive differences (zeros skipped) of each queue's
  backlog and each worker's pool size over the last 10 min; rate = reversals / possible reversals;
- headroom band: utilisation u = sum(active) / sum(concurrency) scores 1 within [0.2, 0.75], falls
  to 0.7 when fully idle (idle capacity costs a little) and linearly to 0 when fully busy;
- drain score of a queue: 1 when empty or drained within the target; target / drain time beyond;
  0 when it is not draining at all (out <= in) while it has a backlog;
- time to exhaustion scores clamp(tte / horizon); a resource not approaching its limit scores 1;
- novelty: 1 - clamp(new task types / 5) against the 24 h baseline; unknown without a baseline;
- the S3* audit is a fourth factor of both S3 and S5 (the model: "its score feeds S3 and S5"), unknown
  when no audit ran in the last two audit intervals.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vsmmon.health.agents import Factor, mean_known
from vsmmon.health.viability import clamp

OSCILLATION_RATE_LIMIT = 0.3
NOVELTY_SCALE = 5.0


@dataclass(frozen=True, slots=True)
class SystemHealth:
    system: str
    score: float | None
    factors: tuple[Factor, ...]


@dataclass(frozen=True, slots=True)
class QueueFlow:
    """One queue over the assessment window."""

    name: str
    backlog: float
    in_per_s: float | None
    out_per_s: float | None
    backlog_series: Sequence[float] = ()
    consumer_saturations: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class ControlInputs:
    """What S3, S4 and S5 see beyond the queues."""

    active_total: float = 0.0
    concurrency_total: float = 0.0
    pool_series: Mapping[str, Sequence[float]] = field(default_factory=dict)
    drain_target_s: float = 60.0
    actions_total: int = 0
    actions_effective: int = 0
    smape: float | None = None
    exhaustion_s: Mapping[str, float | None] = field(default_factory=dict)
    horizon_s: float = 3600.0
    new_task_types: int | None = None
    slo_held_fraction: float | None = None
    critical_alerts: int = 0
    critical_handled: int = 0
    identities: Sequence[tuple[str, str]] = ()  # (pool: the queues a worker consumes, version|config)
    audit_score: float | None = None  # the last S3* audit (vsmmon.audit), when recent
    audit_worker: str | None = None


def system(name: str, factors: Iterable[Factor]) -> SystemHealth:
    fs = tuple(factors)
    return SystemHealth(name, mean_known(fs), fs)


def flow_balance(q: QueueFlow) -> float | None:
    """1 - 2 |0.5 - in / (in + out)|: 1 when as much leaves as arrives."""
    if q.in_per_s is None or q.out_per_s is None or q.in_per_s + q.out_per_s <= 0:
        return None
    return 1 - 2 * abs(0.5 - q.in_per_s / (q.in_per_s + q.out_per_s))


def evenness(saturations: Sequence[float]) -> float | None:
    """1 - min(1, coefficient of variation of the consumers' saturation)."""
    if len(saturations) < 2:
        return None
    mean = statistics.fmean(saturations)
    if mean <= 0:
        return 1.0
    return 1 - min(1.0, statistics.pstdev(saturations) / mean)


def reversals(series: Sequence[float]) -> tuple[int, int]:
    """(sign reversals of successive differences, reversals possible), zero differences skipped."""
    signs = [1 if b > a else -1 for a, b in itertools.pairwise(series) if b != a]
    flips = sum(1 for x, y in itertools.pairwise(signs) if x != y)
    return flips, max(0, len(series) - 2)


def s2(queues: Sequence[QueueFlow], control: ControlInputs) -> SystemHealth:
    """Coordination: queue flow balance, evenness of load, oscillation."""
    balances = {q.name: flow_balance(q) for q in queues}
    known_balances = [b for b in balances.values() if b is not None]
    evens = {q.name: evenness(q.consumer_saturations) if q.backlog > 0 else None for q in queues}
    known_evens = [e for e in evens.values() if e is not None]
    counts = [reversals(q.backlog_series) for q in queues] + [reversals(s) for s in control.pool_series.values()]
    flips, possible = sum(c[0] for c in counts), sum(c[1] for c in counts)
    rate = flips / possible if possible else None
    return system(
        "S2",
        (
            Factor("flow_balance", statistics.fmean(known_balances) if known_balances else None, dict(balances)),
            Factor("evenness", statistics.fmean(known_evens) if known_evens else None, dict(evens)),
            Factor(
                "oscillation",
                None if rate is None else 1 - clamp(rate / OSCILLATION_RATE_LIMIT),
                {"reversals": float(flips), "possible": float(possible), "rate": rate},
            ),
        ),
    )


def headroom_score(utilisation: float) -> float:
    if utilisation < 0.2:
        return 0.7 + 1.5 * utilisation
    if utilisation <= 0.75:
        return 1.0
    return clamp((1.0 - utilisation) / 0.25)


def drain_score(q: QueueFlow, target_s: float) -> tuple[float | None, float | None]:
    """(score, drain time in s; inf when not draining) of one queue."""
    if q.backlog <= 0:
        return 1.0, 0.0
    if q.in_per_s is None or q.out_per_s is None:
        return None, None
    net = q.out_per_s - q.in_per_s
    if net <= 0:
        return 0.0, float("inf")
    drain_s = q.backlog / net
    return clamp(target_s / drain_s), drain_s


def s3(queues: Sequence[QueueFlow], control: ControlInputs) -> SystemHealth:
    """Control: headroom, drain time of backlogs, efficacy of S3's own actions."""
    if control.concurrency_total > 0:
        u = control.active_total / control.concurrency_total
        headroom = Factor("headroom", headroom_score(u), {"utilisation": u})
    else:
        headroom = Factor("headroom", None, {"reason": "no worker concurrency known"})
    drains = {q.name: drain_score(q, control.drain_target_s) for q in queues}
    known = [score for score, _ in drains.values() if score is not None]
    drain = Factor(
        "drain_time",
        statistics.fmean(known) if known else None,
        {f"{name}_drain_s": d for name, (_, d) in drains.items()} | {"target_s": control.drain_target_s},
    )
    efficacy = Factor(
        "control_efficacy",
        control.actions_effective / control.actions_total if control.actions_total else None,
        {"actions": float(control.actions_total), "effective": float(control.actions_effective)},
    )
    return system("S3", (headroom, drain, efficacy, audit_factor(control)))


def s4(control: ControlInputs) -> SystemHealth:
    """Intelligence: forecast accuracy, time to exhaustion, novelty."""
    accuracy_score = None if control.smape is None else 1 - clamp(control.smape)
    accuracy = Factor("forecast_accuracy", accuracy_score, {"smape": control.smape})
    scores = [1.0 if tte is None else clamp(tte / control.horizon_s) for tte in control.exhaustion_s.values()]
    exhaustion = Factor(
        "time_to_exhaustion", min(scores) if scores else None, {**control.exhaustion_s, "horizon_s": control.horizon_s}
    )
    new = control.new_task_types
    novelty_score = None if new is None else 1 - clamp(new / NOVELTY_SCALE)
    novelty = Factor("novelty", novelty_score, {"new_task_types": None if new is None else float(new)})
    return system("S4", (accuracy, exhaustion, novelty))


def majority_share(identities: Sequence[tuple[str, str]]) -> float | None:
    """Share of workers on their pool's most common version/configuration (pools: same consumed queues).

    Different apps on one broker legitimately differ; workers serving the same queues should not.
    """
    if not identities:
        return None
    pools: dict[str, list[str]] = {}
    for pool, identity in identities:
        pools.setdefault(pool, []).append(identity)
    on_majority = sum(max(members.count(i) for i in set(members)) for members in pools.values())
    return on_majority / len(identities)


def s5(control: ControlInputs) -> SystemHealth:
    """Policy and identity: SLO conformance, escalation handling, identity coherence."""
    slo = Factor("slo_conformance", control.slo_held_fraction, {"held_fraction": control.slo_held_fraction})
    handled = control.critical_handled / control.critical_alerts if control.critical_alerts else None
    counts = {"critical": float(control.critical_alerts), "handled": float(control.critical_handled)}
    escalation = Factor("escalation_handling", handled, counts)
    variants = {"workers": float(len(control.identities)), "variants": float(len(set(control.identities)))}
    identity = Factor("identity_coherence", majority_share(control.identities), variants)
    return system("S5", (slo, escalation, identity, audit_factor(control)))


def audit_factor(control: ControlInputs) -> Factor:
    """The last S3* audit's score (share of its checks without a finding); it feeds S3 and S5."""
    return Factor("audit", control.audit_score, {"worker": control.audit_worker, "score": control.audit_score})
