"""S3's planning: which remote-control command, within which bounds, and whether it helped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.alerts import manager, model
from vsmmon.alerts.model import Alert, Severity, Signal
from vsmmon.analyse.recommend import Kind, Recommendation
from vsmmon.control.s3 import ControlPolicy, WorkerView, effective, plan, wait_s

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = ControlPolicy(limits={"*": (1, 8), "email": (2, 4)}, max_step=2, cooldown_s=300)


def firing(signal: Signal) -> Alert:
    state, notes, _, _ = manager.step(model.AlertState(), [signal], NOW)
    return notes[0].alert if notes else next(iter(state.alerts.values()))


def bottleneck(target: str, factor: str) -> Alert:
    sig = Signal("bottleneck", target, Severity.CRITICAL, {"factor": factor}, f"{target}: {factor} 0.10", resource=True)
    return firing(sig)


def advise(host: str, command: str = "pool_grow", n: int = 2) -> Recommendation:
    kind: Kind = "resource_adjustment" if command == "pool_grow" else "optimization"
    rationale = f"queue default: backlog 40; {command} {host} by {n}"
    return Recommendation(kind, host, {"command": command, "destination": host, "n": n, "queue": "default"},
                          rationale, 0.9, NOW + timedelta(minutes=15))  # fmt: skip


ADVICE = [advise("w1@h"), advise("w2@h"), advise("a@h")]  # the capacity plan: each of them is short
W1 = WorkerView("w1@h", "prefork", 2, ("default",), saturation=1.0)
W2 = WorkerView("w2@h", "prefork", 3, ("email",), saturation=0.5)


def test_a_saturated_worker_grows_by_the_step_within_its_bound() -> None:
    p = plan(bottleneck("w1@h", "queue"), "firing", [W1, W2], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert (p.action, p.destination, dict(p.params), p.expected_processes) == ("pool_grow", "w1@h", {"n": 2}, 4)
    assert p.watch is not None
    assert (p.watch.agent_id, p.watch.metric, p.watch.want) == ("w1@h", "saturation", "down")
    assert "pool 2 -> 4 (max 8)" in p.reason


def test_no_growth_once_the_queues_are_empty_whatever_the_advice_says() -> None:
    """The advice comes from the last analysis (every minute); the backlog from the last collection. A burst
    drained while S3 waited for the condition to persist: an empty queue gets no more processes."""
    from dataclasses import replace

    drained = replace(W1, backlog=0.0)
    p = plan(bottleneck("w1@h", "queue"), "firing", [drained], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert p.action == "none"
    assert "nothing waits in w1@h's queues now" in p.reason
    waiting = replace(W1, backlog=4.0)
    assert plan(bottleneck("w1@h", "queue"), "firing", [waiting], {}, now=NOW, policy=POLICY, advice=ADVICE).action == (
        "pool_grow"
    )


def test_growth_stops_at_the_tightest_queue_bound() -> None:
    p = plan(bottleneck("w2@h", "queue"), "firing", [W1, W2], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert (p.action, dict(p.params)) == ("pool_grow", {"n": 1})  # email allows 4: 3 -> 4, not 5
    full = WorkerView("w2@h", "prefork", 4, ("email",))
    p = plan(bottleneck("w2@h", "queue"), "firing", [full], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert p.action == "none"
    assert "its maximum (4)" in p.reason


def test_memory_pressure_shrinks_by_one_and_never_below_the_minimum() -> None:
    p = plan(bottleneck("w2@h", "memory"), "firing", [W2], {}, now=NOW, policy=POLICY)
    assert (p.action, dict(p.params), p.expected_processes) == ("pool_shrink", {"n": 1}, 2)
    assert p.watch is not None
    assert p.watch.metric == "rss_bytes"
    at_min = WorkerView("w2@h", "prefork", 2, ("email",))
    assert plan(bottleneck("w2@h", "memory"), "firing", [at_min], {}, now=NOW, policy=POLICY).action == "none"


def test_s3_and_the_recommendations_are_one_decision() -> None:
    saturated = bottleneck("w1@h", "queue")
    # busy but not short (the capacity plan advises nothing, or a shrink): no more processes
    idle_queue = plan(saturated, "firing", [W1], {}, now=NOW, policy=POLICY, advice=[])
    assert idle_queue.action == "none"
    assert "does not call for more processes" in idle_queue.reason
    shrink = plan(saturated, "firing", [W1], {}, now=NOW, policy=POLICY, advice=[advise("w1@h", "pool_shrink", 1)])
    assert shrink.action == "none"
    assert "pool_shrink w1@h by 1" in shrink.reason  # the advice is quoted: S3 says why it did not grow
    s3_score = firing(Signal("system_health", "S3", Severity.CRITICAL, resource=True))
    assert plan(s3_score, "firing", [W1], {}, now=NOW, policy=POLICY, advice=[]).action == "none"
    # short by one: grown by one, not by the step
    one = plan(saturated, "firing", [W1], {}, now=NOW, policy=POLICY, advice=[advise("w1@h", n=1)])
    assert (one.action, dict(one.params)) == ("pool_grow", {"n": 1})
    # memory says shrink, demand says grow: S3 does neither and says so
    conflict = plan(bottleneck("w2@h", "memory"), "firing", [W2], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert conflict.action == "none"
    assert "conflict" in conflict.reason


def test_s3_waits_until_a_condition_has_persisted() -> None:
    young = bottleneck("w1@h", "queue")  # opened at NOW
    assert wait_s(young, NOW, POLICY) == 60.0
    assert wait_s(young, NOW + timedelta(seconds=45), POLICY) == 15.0
    assert wait_s(young, NOW + timedelta(seconds=60), POLICY) == 0.0


def test_a_queue_backlog_grows_its_consumer_with_the_most_room() -> None:
    small = WorkerView("a@h", "prefork", 1, ("default",))
    alert = bottleneck("queue default", "backlog")
    p = plan(alert, "firing", [W1, small, W2], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert (p.action, p.destination) == ("pool_grow", "a@h")
    assert p.watch is not None
    assert (p.watch.agent_id, p.watch.metric) == ("queue:default", "messages")


def test_cooldown_dry_run_hold_and_pool_type_are_respected() -> None:
    alert = bottleneck("w1@h", "queue")
    recent = {"w1@h": NOW - timedelta(seconds=100)}
    assert "cooldown" in plan(alert, "firing", [W1], recent, now=NOW, policy=POLICY, advice=ADVICE).reason
    old = {"w1@h": NOW - timedelta(seconds=301)}
    assert plan(alert, "firing", [W1], old, now=NOW, policy=POLICY, advice=ADVICE).action == "pool_grow"
    held = plan(alert, "firing", [W1], {}, now=NOW, policy=POLICY, held_by="S3's action failed")
    assert held.action == "none"
    assert "S5 holds" in held.reason
    threads = WorkerView("w1@h", "thread", 4, ("default",))
    assert "only prefork" in plan(alert, "firing", [threads], {}, now=NOW, policy=POLICY, advice=ADVICE).reason
    assert plan(alert, "recovery", [W1], {}, now=NOW, policy=POLICY, advice=ADVICE).action == "none"


def test_an_autoscaling_worker_gets_its_range_moved_not_pool_grow() -> None:
    scaled = WorkerView("w1@h", "prefork", 3, ("default",), autoscale=(4, 1))
    p = plan(bottleneck("w1@h", "queue"), "firing", [scaled], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert (p.action, dict(p.params)) == ("autoscale", {"max": 6, "min": 1})
    capped = WorkerView("w1@h", "prefork", 3, ("default",), autoscale=(8, 1))
    capped_plan = plan(bottleneck("w1@h", "queue"), "firing", [capped], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert capped_plan.action == "none"


def test_recommendations_name_their_command_and_unknown_alerts_get_no_action() -> None:
    rec = firing(Signal("resource_adjustment", "w1@h", Severity.CRITICAL, {"command": "pool_grow"}, resource=True))
    assert plan(rec, "firing", [W1], {}, now=NOW, policy=POLICY, advice=ADVICE).action == "pool_grow"
    odd = firing(Signal("resource_adjustment", "w1@h", Severity.CRITICAL, {"command": "shutdown"}, resource=True))
    assert "no actuator" in plan(odd, "firing", [W1], {}, now=NOW, policy=POLICY, advice=ADVICE).reason
    gone = plan(bottleneck("w9@h", "queue"), "firing", [W1], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert gone.action == "none"
    assert "not a live worker" in gone.reason


def test_s3_score_grows_the_busiest_worker() -> None:
    s3 = firing(Signal("system_health", "S3", Severity.CRITICAL, resource=True))
    p = plan(s3, "firing", [W2, W1], {}, now=NOW, policy=POLICY, advice=ADVICE)
    assert p.destination == "w1@h"


@pytest.mark.parametrize(
    ("want", "before", "after", "resolved", "helped"),
    [("down", 1.0, 0.5, False, True), ("down", 0.5, 0.5, False, False), ("up", 1.0, 2.0, False, True),
     ("down", None, 0.5, False, False), ("down", 0.5, 0.9, True, True)],
)  # fmt: skip
def test_efficacy(want: str, before: float | None, after: float | None, resolved: bool, helped: bool) -> None:
    assert effective(want, before, after, resolved) is helped  # type: ignore[arg-type]


def test_bounds_fall_back_to_the_default_entry() -> None:
    assert POLICY.bounds(("other",)) == (1, 8)
    assert POLICY.bounds(("email", "default")) == (2, 4)
