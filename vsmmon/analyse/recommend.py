"""Recommendation stage: turn trends, predictions and capacity plans into structured, deduplicated advice.

Pure. Each recommendation names its kind, target and an action S3 can execute (`{"command": ...}` plus
parameters), quotes its numbers in the rationale, and expires: it is re-derived at every analysis, and the
expiry bounds how long a stale one may still be acted on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, cast

from vsmmon.analyse.forecast import CapacityPlan
from vsmmon.analyse.growth import Growth
from vsmmon.analyse.trends import slope_confidence
from vsmmon.models import utc

Kind = Literal["optimization", "resource_adjustment", "architectural"]
MB = 1024 * 1024  # as the simulator and `ps` count: MiB, written "MB"
VALID_FOR_S = 900.0
"""Default lifetime: three 5-min analysis windows, after which a fresh analysis must confirm the advice."""
LEAK_HORIZON_S = 3600.0
"""Memory growth matters when it reaches the limit within this horizon (the longest forecast horizon)."""
MAX_MEMORY_PER_CHILD_SHARE = 0.8  # suggested worker_max_memory_per_child: recycle a child at 80 % of the limit


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One piece of advice; `fingerprint` (kind, target, command) identifies it across analyses."""

    kind: Kind
    target: str
    action: Mapping[str, object]
    rationale: str
    confidence: float
    expires_at: datetime
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if "command" not in self.action:
            raise ValueError(f"an action needs a command, got {dict(self.action)!r}")
        key = f"{self.kind}|{self.target}|{self.action['command']}"
        object.__setattr__(self, "fingerprint", hashlib.sha256(key.encode()).hexdigest()[:16])


def format_duration(seconds: float) -> str:
    """A duration as people say it: "45 s", "6 min 40 s", "2 h 5 min"."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(total // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def recommend_for_memory(
    agent_id: str,
    growth: Growth,
    limit_bytes: float,
    now: datetime,
    *,
    horizon_s: float = LEAK_HORIZON_S,
    valid_for_s: float = VALID_FOR_S,
) -> Recommendation | None:
    """Advice to restart a worker whose memory grows steadily to its limit within `horizon_s`; None otherwise.

    `growth` is the current regime of its memory (`vsmmon.analyse.growth.growth`): a time to the limit there
    means the growth persisted and the limit is within what the regime's span supports.
    """
    # Steady linear growth of a worker's RSS toward its limit is read as a leak; confidence is that of the slope
    # t-test (1 - p). Warm-up and a warming cache also grow, but level off: then the regime's later half stops
    # rising and `growth` gives no time to the limit.
    fit, tte = growth.fit, growth.time_to_limit_s
    if tte is None or tte > horizon_s or (fit.slope <= 0.0 and tte > 0.0):
        return None
    per_child_kib = int(MAX_MEMORY_PER_CHILD_SHARE * limit_bytes / 1024)
    advice = (
        f"restart the worker and set worker_max_memory_per_child = {per_child_kib} "
        f"(KiB, {MAX_MEMORY_PER_CHILD_SHARE:.0%} of the limit)"
    )
    if tte == 0.0 and not growth.steady:  # there already, not (or no longer) growing: a fact, not a forecast
        level = fit.intercept + fit.slope * fit.last_t
        rationale = (
            f"memory of {agent_id} is at {level / MB:.0f} MB, past its {limit_bytes / MB:.0f} MB limit: {advice}"
        )
        confidence = 1.0
    else:
        rationale = (
            f"memory of {agent_id} grows {fit.slope / MB:.1f} MB/s (± {fit.slope_stderr / MB:.2f}, "
            f"{fit.n} samples over {format_duration(growth.span_s)}); reaches its {limit_bytes / MB:.0f} MB limit "
            f"in {format_duration(tte)}: likely a leak — {advice}"
        )
        confidence = slope_confidence(fit.slope, fit.slope_stderr, fit.n)
    return Recommendation(
        kind="resource_adjustment",
        target=agent_id,
        action={"command": "restart_worker"},
        rationale=rationale,
        confidence=confidence,
        expires_at=utc(now) + timedelta(seconds=valid_for_s),
    )


GROWTH_REPORT_MIN_S = 120.0
"""Steady memory growth watched this long is reported by name, even while its limit is out of reach."""


def recommend_for_growth(
    agent_id: str, growth: Growth, limit_bytes: float, now: datetime, *, valid_for_s: float = VALID_FOR_S
) -> Recommendation | None:
    """A growth trend: memory rising steadily for `GROWTH_REPORT_MIN_S` or more whose limit is not within the hour
    (or not yet within what the regime supports); advice to bound it. None otherwise, and when a restart is
    advised (`recommend_for_memory`)."""
    fit = growth.fit
    restart_advised = growth.time_to_limit_s is not None and growth.time_to_limit_s <= LEAK_HORIZON_S
    if not growth.steady or growth.span_s < GROWTH_REPORT_MIN_S or restart_advised:
        return None
    per_child_kib = int(MAX_MEMORY_PER_CHILD_SHARE * limit_bytes / 1024)
    reach = (
        f"at this rate its {limit_bytes / MB:.0f} MB limit is {format_duration(growth.estimate_s)} away"
        if growth.estimate_s is not None
        else f"its {limit_bytes / MB:.0f} MB limit is not approached"
    )
    return Recommendation(
        "optimization", agent_id, {"command": "bound_memory", "worker_max_memory_per_child_kib": per_child_kib},
        f"memory of {agent_id} grows steadily {fit.slope / MB:.2f} MB/s (± {fit.slope_stderr / MB:.2f}, "
        f"{fit.n} samples over {format_duration(growth.span_s)}); {reach}: watch it, and bound it with "
        f"worker_max_memory_per_child = {per_child_kib} (KiB, {MAX_MEMORY_PER_CHILD_SHARE:.0%} of the limit)",
        slope_confidence(fit.slope, fit.slope_stderr, fit.n), utc(now) + timedelta(seconds=valid_for_s),
    )  # fmt: skip


def recommend_for_capacity(
    queue: str,
    plan: CapacityPlan,
    now: datetime,
    *,
    max_concurrency: int | None = None,
    valid_for_s: float = VALID_FOR_S,
) -> Recommendation | None:
    """Grow the pool (or scale out past `max_concurrency`) when short with a backlog; shrink when twice too big;
    else None. An empty queue never gets more processes: whatever the rates say, nothing waits."""
    # Confidence: 0.9 when arrivals outrun the drain (the backlog grows without bound), 0.7 when the pool keeps
    # up but misses the target drain time, 0.6 for shrinking (rates measured at one moment may be a lull).
    expires_at = utc(now) + timedelta(seconds=valid_for_s)
    needed, current = plan.needed_concurrency, plan.current_concurrency
    situation = (
        f"queue {queue}: arrivals {plan.arrival_per_s:.1f}/s, drain {plan.drain_per_s:.1f}/s "
        f"({current} slots x {plan.drain_per_s_per_slot:.1f}/s), backlog {plan.backlog:.0f}"
    )
    if needed > current and plan.backlog > 0:  # never more processes for an empty queue
        growing = plan.arrival_per_s >= plan.drain_per_s
        confidence = 0.9 if growing else 0.7
        now_drain = "never drains" if growing else f"drains in {format_duration(plan.drain_time_s)}"
        target = f"{needed} slots drain it within {format_duration(plan.target_drain_s)}"
        if max_concurrency is not None and needed > max_concurrency:
            workers = math.ceil(needed / max_concurrency)
            return Recommendation(
                "architectural", queue, {"command": "scale_out", "workers": workers, "concurrency": max_concurrency},
                f"{situation} {now_drain}; {target}, more than one worker's {max_concurrency}: "
                f"run {workers} workers consuming {queue}",
                confidence, expires_at,
            )  # fmt: skip
        return Recommendation(
            "resource_adjustment", queue, {"command": "pool_grow", "n": needed - current, "concurrency": needed},
            f"{situation} {now_drain}; {target}: grow the pool by {needed - current} to {needed}",
            confidence, expires_at,
        )  # fmt: skip
    keep = max(needed, 1)
    if keep <= current // 2:
        return Recommendation(
            "optimization", queue, {"command": "pool_shrink", "n": current - keep, "concurrency": keep},
            f"{situation}; {keep} slots drain it within {format_duration(plan.target_drain_s)}: "
            f"shrink the pool by {current - keep} to {keep}",
            0.6, expires_at,
        )  # fmt: skip
    return None


STALL_STEP = 2
"""Slots advised for a stalled queue: its drain rate per slot is unknown, so a step, re-planned once rates show."""


def recommend_for_stall(
    queue: str, backlog: float, busy_slots: float, concurrency: int, now: datetime, *, valid_for_s: float = VALID_FOR_S
) -> Recommendation | None:
    """A queue with a backlog whose every slot is busy and none of whose tasks finished in the window: grow by a step.

    Without a completion there is no drain rate to size a pool from; every slot held and work waiting is
    still shortage. Confidence 0.5: the tasks may be stuck rather than slow, which more slots do not cure.
    """
    if backlog <= 0 or concurrency <= 0 or busy_slots < concurrency:
        return None
    grown = concurrency + STALL_STEP
    return Recommendation(
        "resource_adjustment", queue, {"command": "pool_grow", "n": STALL_STEP, "concurrency": grown},
        f"queue {queue}: backlog {backlog:.0f}, all {concurrency} slots busy and no task finished in the window: "
        f"grow the pool by {STALL_STEP} to {grown}, then size it from the rates",
        0.5, utc(now) + timedelta(seconds=valid_for_s),
    )  # fmt: skip


def for_consumers(rec: Recommendation, queue: str, consumers: Sequence[tuple[str, int]]) -> list[Recommendation]:
    """A queue's pool_grow / pool_shrink as one Celery remote-control action per consuming worker.

    `consumers` are (worker hostname, pool size). The slots to add go first to the smallest pools, the slots to
    remove come first from the largest (each keeps at least one), as evenly as they divide; each recommendation
    targets its worker and its action is what S3 sends: `{"command": "pool_grow", "destination": hostname,
    "n": slots, "queue": queue}`. Other recommendations, or a queue without consumers, are returned unchanged.
    """
    command = rec.action["command"]
    if command not in ("pool_grow", "pool_shrink") or not consumers:
        return [rec]
    grow = command == "pool_grow"
    total = int(cast(int, rec.action["n"]))
    order = sorted(consumers, key=lambda c: (c[1], c[0]) if grow else (-c[1], c[0]))
    room = [total if grow else max(0, size - 1) for _, size in order]
    shares = [0] * len(order)
    while total > 0 and any(shares[i] < room[i] for i in range(len(order))):
        for i in range(len(order)):
            if total > 0 and shares[i] < room[i]:
                shares[i] += 1
                total -= 1
    found = []
    for (host, size), n in zip(order, shares, strict=True):
        if n == 0:
            continue
        after = size + n if grow else size - n
        found.append(Recommendation(
            rec.kind, host, {"command": command, "destination": host, "n": n, "queue": queue},
            f"{rec.rationale}; {host}: pool {size} -> {after}", rec.confidence, rec.expires_at,
        ))  # fmt: skip
    return found


def dedupe(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """One recommendation per fingerprint, the most confident (the first on ties), in order of first appearance."""
    best: dict[str, Recommendation] = {}
    for rec in recommendations:
        kept = best.get(rec.fingerprint)
        if kept is None or rec.confidence > kept.confidence:
            best[rec.fingerprint] = rec
    return list(best.values())
