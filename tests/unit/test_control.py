"""S3's planning: which remote-control command, within which bounds, and whether it helped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.alerts import manager, model
from vsmmon.alerts.model import Alert, Severity, Signal
from vsmmon.control.s3 import ControlPolicy, WorkerView, effective, plan

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = ControlPolicy(limits={"*": (1, 8), "email": (2, 4)}, max_step=2, cooldown_s=300)


def firing(signal: Signal) -> Alert:
    state, notes, _, _ = manager.step(model.AlertState(), [signal], NOW)
    return notes[0].alert if notes else next(iter(state.alerts.values()))


def bottleneck(target: str, factor: str) -> Alert:
    sig = Signal("bottleneck", target, Severity.CRITICAL, {"factor": factor}, f"{target}: {factor} 0.10", resource=True)
    return firing(sig)


W1 = WorkerView("w1@h", "prefork", 2, ("default",), saturation=1.0)
W2 = WorkerView("w2@h", "prefork", 3, ("email",), saturation=0.5)


def test_a_saturated_worker_grows_by_the_step_within_its_bound() -> None:
    p = plan(bottleneck("w1@h", "queue"), "firing", [W1, W2], {}, now=NOW, policy=POLICY)
    assert (p.action, p.destination, dict(p.params), p.expected_processes) == ("pool_grow", "w1@h", {"n": 2}, 4)
    assert p.watch is not None
    assert (p.watch.agent_id, p.watch.metric, p.watch.want) == ("w1@h", "saturation", "down")
    assert "pool 2 -> 4 (max 8)" in p.reason


def test_growth_stops_at_the_tightest_queue_bound() -> None:
    p = plan(bottleneck("w2@h", "queue"), "firing", [W1, W2], {}, now=NOW, policy=POLICY)
    assert (p.action, dict(p.params)) == ("pool_grow", {"n": 1})  # email allows 4: 3 -> 4, not 5
    full = WorkerView("w2@h", "prefork", 4, ("email",))
    p = plan(bottleneck("w2@h", "queue"), "firing", [full], {}, now=NOW, policy=POLICY)
    assert p.action == "none"
    assert "its maximum (4)" in p.reason


def test_memory_pressure_shrinks_by_one_and_never_below_the_minimum() -> None:
    p = plan(bottleneck("w2@h", "memory"), "firing", [W2], {}, now=NOW, policy=POLICY)
    assert (p.action, dict(p.params), p.expected_processes) == ("pool_shrink", {"n": 1}, 2)
    assert p.watch is not None
    assert p.watch.metric == "rss_bytes"
    at_min = WorkerView("w2@h", "prefork", 2, ("email",))
    assert plan(bottleneck("w2@h", "memory"), "firing", [at_min], {}, now=NOW, policy=POLICY).action == "none"


def test_a_queue_backlog_grows_its_consumer_with_the_most_room() -> None:
    small = WorkerView("a@h", "prefork", 1, ("default",))
    alert = bottleneck("queue default", "backlog")
    p = plan(alert, "firing", [W1, small, W2], {}, now=NOW, policy=POLICY)
    assert (p.action, p.destination) == ("pool_grow", "a@h")
    assert p.watch is not None
    assert (p.watch.agent_id, p.watch.metric) == ("queue:default", "messages")


def test_cooldown_dry_run_hold_and_pool_type_are_respected() -> None:
    alert = bottleneck("w1@h", "queue")
    recent = {"w1@h": NOW - timedelta(seconds=100)}
    assert "cooldown" in plan(alert, "firing", [W1], recent, now=NOW, policy=POLICY).reason
    old = {"w1@h": NOW - timedelta(seconds=301)}
    assert plan(alert, "firing", [W1], old, now=NOW, policy=POLICY).action == "pool_grow"
    held = plan(alert, "firing", [W1], {}, now=NOW, policy=POLICY, held_by="S3's action failed")
    assert held.action == "none"
    assert "S5 holds" in held.reason
    threads = WorkerView("w1@h", "thread", 4, ("default",))
    assert "only prefork" in plan(alert, "firing", [threads], {}, now=NOW, policy=POLICY).reason
    assert plan(alert, "recovery", [W1], {}, now=NOW, policy=POLICY).action == "none"


def test_an_autoscaling_worker_gets_its_range_moved_not_pool_grow() -> None:
    scaled = WorkerView("w1@h", "prefork", 3, ("default",), autoscale=(4, 1))
    p = plan(bottleneck("w1@h", "queue"), "firing", [scaled], {}, now=NOW, policy=POLICY)
    assert (p.action, dict(p.params)) == ("autoscale", {"max": 6, "min": 1})
    capped = WorkerView("w1@h", "prefork", 3, ("default",), autoscale=(8, 1))
    assert plan(bottleneck("w1@h", "queue"), "firing", [capped], {}, now=NOW, policy=POLICY).action == "none"


def test_recommendations_name_their_command_and_unknown_alerts_get_no_action() -> None:
    rec = firing(Signal("resource_adjustment", "w1@h", Severity.CRITICAL, {"command": "pool_grow"}, resource=True))
    assert plan(rec, "firing", [W1], {}, now=NOW, policy=POLICY).action == "pool_grow"
    odd = firing(Signal("resource_adjustment", "w1@h", Severity.CRITICAL, {"command": "shutdown"}, resource=True))
    assert "no actuator" in plan(odd, "firing", [W1], {}, now=NOW, policy=POLICY).reason
    gone = plan(bottleneck("w9@h", "queue"), "firing", [W1], {}, now=NOW, policy=POLICY)
    assert gone.action == "none"
    assert "not a live worker" in gone.reason


def test_s3_score_grows_the_busiest_worker() -> None:
    s3 = firing(Signal("system_health", "S3", Severity.CRITICAL, resource=True))
    p = plan(s3, "firing", [W2, W1], {}, now=NOW, policy=POLICY)
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
