"""S3, control: what to do about a resource alert, as a bounded plan; and whether an action helped. Pure.

S3's actuators are Celery's remote-control commands. Which one, by alert:
- a worker saturated (bottleneck, factor "queue") or S3's own score low (headroom): grow the pool of that
  worker (for S3's score: the most saturated worker that has room);
- a queue backlog not draining (bottleneck on "queue NAME"): grow the consumer of that queue with the most
  room under its bound;
- a worker's memory near its limit (bottleneck, factor "memory"): shrink its pool by one (fewer children,
  less memory);
- a resource adjustment recommended by the analysis stage: its command (pool_grow, pool_shrink,
  autoscale) on its target, with S3's own bounds.

One decision: how big a pool should be is the analysis' capacity plan (`vsmmon.analyse.recommend`), the
advice the Recommendations panel shows. S3 grows a pool only when that advice, current, says so for the
worker (a saturated worker whose queues have no backlog needs no more processes: it is busy, not short),
by at most what it advises; it never grows a pool when the advice is to shrink it, and it does not shrink
one for memory while the advice is to grow it (the two conflict: left to the operator, said in the
reason). The capacity plan advises growth only for a queue holding a backlog, so S3 never acts on an
empty queue. And S3 acts only on a condition that persisted `persist_s` (default 60 s: seen in three
consecutive 30 s health checks); the task defers a younger alert and plans it if it still holds then. A
plan that rests on advice older than its alert (the analysis runs once a minute) waits for a fresh analysis
once, so a burst is judged on advice that has seen it.
`pool_grow` / `pool_shrink` work on the prefork pool only; a worker started with `--autoscale` refuses them
(Celery: "Adjust autoscale range instead"), so S3 moves its autoscale range instead. Other pools get no
action, recorded with the reason.

Bounds (policy): min and max pool size per queue (`VSMMON_CONTROL_LIMITS`, a worker gets the tightest
bounds of the queues it consumes), at most `max_step` processes per action, one action per target per
`cooldown_s`, and dry-run (plan and record, apply nothing). S5 may hold S3 (after S3's actions failed).

Efficacy: each action names the signal it should move (a worker's saturation or memory, a queue's
backlog) and the way; checked `verify_after_s` later, it helped when the signal moved that way, or when
its alert has resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

from vsmmon.alerts.model import Alert
from vsmmon.analyse.recommend import Recommendation

Action = Literal["pool_grow", "pool_shrink", "autoscale", "none"]
Want = Literal["down", "up"]
PREFORK = "prefork"


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A worker as inspect `stats` and the last collection show it."""

    hostname: str
    pool: str  # "prefork", "threads", "solo", ...
    processes: int
    queues: tuple[str, ...] = ()
    autoscale: tuple[int, int] | None = None  # (max, min) when the worker autoscales
    saturation: float | None = None  # active / processes, last collected
    backlog: float | None = None  # messages waiting in its queues, last collected (None: none of them read)


@dataclass(frozen=True, slots=True)
class ControlPolicy:
    limits: Mapping[str, tuple[int, int]] = field(default_factory=lambda: {"*": (1, 16)})
    max_step: int = 2
    cooldown_s: float = 300.0
    dry_run: bool = False
    persist_s: float = 60.0

    def bounds(self, queues: Sequence[str]) -> tuple[int, int]:
        """(min, max) pool size: the tightest bounds of the queues the worker consumes."""
        found = [self.limits[q] for q in queues if q in self.limits] or [self.limits.get("*", (1, 16))]
        return max(lo for lo, _ in found), min(hi for _, hi in found)


@dataclass(frozen=True, slots=True)
class Watch:
    """The signal an action should move: `metric` of `agent_id` ("saturation" = active / concurrency)."""

    agent_id: str
    metric: str
    want: Want


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    destination: str | None
    params: Mapping[str, int]
    reason: str
    watch: Watch | None = None
    expected_processes: int | None = None  # what inspect stats should show after the action
    on_advice: bool = False  # no action because the capacity plan does not call for one (fresher advice may)


def plan(
    alert: Alert,
    kind: str,
    workers: Sequence[WorkerView],
    last_action: Mapping[str, datetime],
    *,
    now: datetime,
    policy: ControlPolicy,
    held_by: str | None = None,
    advice: Sequence[Recommendation] = (),
) -> Plan:
    """The action S3 takes for one notification about `alert`, or why it takes none.

    `advice` are the current recommendations (the analysis' decision on pool sizes).
    """
    if kind == "recovery":
        return _none(f"{alert.type} on {alert.target} recovered: nothing to do")
    if held_by:
        return _none(f"S5 holds S3's actions: {held_by}")
    intent = _intent(alert, workers)
    if isinstance(intent, str):
        return _none(intent)
    direction, worker, watch = intent
    if worker.pool != PREFORK:
        return _none(f"{worker.hostname} runs the {worker.pool} pool: only prefork pools grow and shrink")
    last = last_action.get(worker.hostname)
    if last is not None and (now - last).total_seconds() < policy.cooldown_s:
        return _none(f"{worker.hostname} was adjusted {(now - last).total_seconds():.0f} s ago "
                     f"(cooldown {policy.cooldown_s:.0f} s)")  # fmt: skip
    if direction == "grow" and worker.backlog is not None and worker.backlog <= 0:
        return _none(f"nothing waits in {worker.hostname}'s queues now: no more processes for an empty queue "
                     f"(the advice predates it)")  # fmt: skip
    lo, hi = policy.bounds(worker.queues)
    why = f"{alert.severity} {alert.type} on {alert.target}: {alert.summary}".rstrip(": ")
    step = _step(direction, sizing(advice, worker.hostname), worker.hostname, policy)
    if isinstance(step, str):
        return Plan("none", None, {}, f"{why}; {step}", on_advice=True)
    if worker.autoscale is not None:
        top, bottom = worker.autoscale
        new_top = min(hi, top + step) if direction == "grow" else max(lo, top - 1, bottom)
        if new_top == top:
            return _none(f"{worker.hostname} autoscale max {top} is at its bound ({lo}..{hi})")
        params = {"max": new_top, "min": min(bottom, new_top)}
        return Plan("autoscale", worker.hostname, params, f"{why}; autoscale max {top} -> {new_top}", watch)
    if direction == "grow":
        n = min(step, hi - worker.processes)
        if n <= 0:
            return _none(f"{worker.hostname} has {worker.processes} processes, its maximum ({hi})")
        reason = f"{why}; pool {worker.processes} -> {worker.processes + n} (max {hi})"
        return Plan("pool_grow", worker.hostname, {"n": n}, reason, watch, worker.processes + n)
    n = min(1, worker.processes - lo)
    if n <= 0:
        return _none(f"{worker.hostname} has {worker.processes} processes, its minimum ({lo})")
    reason = f"{why}; pool {worker.processes} -> {worker.processes - n} (min {lo})"
    return Plan("pool_shrink", worker.hostname, {"n": n}, reason, watch, worker.processes - n)


def sizing(advice: Sequence[Recommendation], hostname: str) -> Recommendation | None:
    """The current pool-size advice for one worker (a grow before a shrink: a worker short on any queue is short)."""
    found = [r for r in advice if r.target == hostname and r.action.get("command") in ("pool_grow", "pool_shrink")]
    return min(found, key=lambda r: r.action["command"] != "pool_grow", default=None)


def wait_s(alert: Alert, now: datetime, policy: ControlPolicy) -> float:
    """How much longer the condition must hold before S3 acts on it (0: it has persisted long enough)."""
    return max(0.0, policy.persist_s - (now - alert.started_at).total_seconds())


def effective(want: Want, before: float | None, after: float | None, resolved: bool) -> bool:
    """Did the action help: its alert resolved, or its signal moved the intended way."""
    if resolved:
        return True
    if before is None or after is None:
        return False
    return after < before if want == "down" else after > before


def _step(direction: str, sized: Recommendation | None, hostname: str, policy: ControlPolicy) -> int | str:
    """How many processes the advice allows S3 to add (or remove), or why it allows no action."""
    grow_advised = sized is not None and sized.action["command"] == "pool_grow"
    if direction == "grow":
        if sized is None or not grow_advised:
            said = f" (it advises: {sized.rationale})" if sized is not None else ""
            return f"the capacity plan does not call for more processes on {hostname}{said}"
        return min(policy.max_step, int(cast(int, sized.action.get("n", policy.max_step))))
    if sized is not None and grow_advised:
        return (f"the capacity plan calls for more processes on {hostname} ({sized.rationale}): "
                "memory and demand conflict, left to the operator")  # fmt: skip
    return policy.max_step


def _none(reason: str) -> Plan:
    return Plan("none", None, {}, reason)


def _intent(alert: Alert, workers: Sequence[WorkerView]) -> tuple[str, WorkerView, Watch] | str:
    """(grow | shrink, the worker, the signal to watch), or why there is nothing to act on."""
    by_name = {w.hostname: w for w in workers}
    factor = alert.labels.get("factor", "")
    command = alert.labels.get("command", "")
    target = alert.target
    if alert.type == "resource_adjustment" and command not in ("pool_grow", "pool_shrink", "autoscale"):
        return f"S3 has no actuator for the recommended command {command!r}"
    shrink = factor == "memory" or command == "pool_shrink"
    if target.startswith("queue "):
        queue = target.removeprefix("queue ")
        consumers = [w for w in workers if queue in w.queues and w.pool == PREFORK]
        if not consumers:
            return f"no live prefork worker consumes queue {queue}"
        chosen = min(consumers, key=lambda w: (w.processes, w.hostname))  # the most room under equal bounds
        return ("shrink" if shrink else "grow"), chosen, Watch(f"queue:{queue}", "messages", "down")
    if alert.type == "system_health" and target == "S3":
        busy = [w for w in workers if w.saturation is not None and w.pool == PREFORK]
        if not busy:
            return "no live prefork worker reports its saturation"
        chosen = max(busy, key=lambda w: (w.saturation or 0.0, w.hostname))
        return "grow", chosen, Watch(chosen.hostname, "saturation", "down")
    if alert.type in ("bottleneck", "resource_adjustment") and target in by_name:
        worker = by_name[target]
        if shrink:
            return "shrink", worker, Watch(worker.hostname, "rss_bytes", "down")
        return "grow", worker, Watch(worker.hostname, "saturation", "down")
    if alert.type in ("bottleneck", "resource_adjustment"):
        return f"{target} is not a live worker S3 can adjust"
    return f"S3 has no actuator for {alert.type} alerts"
