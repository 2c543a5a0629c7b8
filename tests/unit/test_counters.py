import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsmmon.agent.counters import MAX_FAILURES, MAX_TASK_NAMES, OTHER, RECENT, Failure, TaskCounters, percentile
from vsmmon.names import HISTOGRAM_FIGURES


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200), st.floats(0, 1))
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(sorted(values), q) == pytest.approx(np.percentile(values, q * 100), rel=1e-9, abs=1e-9)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_outcomes_are_counted_per_task_and_in_total() -> None:
    c = TaskCounters()
    for runtime in (0.1, 0.2, 0.3):
        c.succeeded("a", runtime)
    c.failed("a", 0.5)
    c.failed("b", None)
    c.retried("b")
    c.rejected("b")
    for wait in (1.0, 2.0, 3.0, -1.0):  # a negative wait (clock skew) is not a wait
        c.waited(wait)
    totals, per_task = c.snapshot()
    assert totals["tasks_succeeded_total"] == 3
    assert totals["tasks_failed_total"] == 2
    assert totals["tasks_retried_total"] == 1
    assert totals["tasks_rejected_total"] == 1
    assert totals["task_runtime_p50_s"] == pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.5], 50))
    assert totals["queue_wait_p50_s"] == 2.0
    assert per_task["a"] == {
        "succeeded_total": 3.0, "failed_total": 1.0, "retried_total": 0.0, "rejected_total": 0.0,
        **{f"runtime_p{q}_s": pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.5], q)) for q in (50, 95, 99)},
        "runtime_count": 3.0, "runtime_sum_s": pytest.approx(0.6),  # the histogram: of the 3 successes
        "runtime_le_100ms": 1.0, "runtime_le_250ms": 2.0, "runtime_le_500ms": 3.0,
    }  # fmt: skip
    assert "runtime_p95_s" not in per_task["b"]


def test_no_percentiles_before_any_task() -> None:
    totals, per_task = TaskCounters().snapshot()
    assert per_task == {}
    assert totals == {f"tasks_{k}_total": 0.0 for k in ("succeeded", "failed", "retried", "rejected")}


def test_memory_is_bounded_in_task_names_and_samples() -> None:
    c = TaskCounters()
    for i in range(MAX_TASK_NAMES + 40):
        c.succeeded(f"t{i}", 0.01)
    for _ in range(RECENT * 3):
        c.succeeded("t0", 1.0)
    totals, per_task = c.snapshot()
    assert len(per_task) == MAX_TASK_NAMES + 1
    assert per_task[OTHER]["succeeded_total"] == 40
    assert totals["tasks_succeeded_total"] == MAX_TASK_NAMES + 40 + RECENT * 3
    assert totals["task_runtime_p50_s"] == 1.0  # only the most recent RECENT runtimes are kept


def test_successes_from_many_threads_are_each_counted_once() -> None:
    import threading

    c = TaskCounters()
    threads = [threading.Thread(target=lambda: [c.succeeded("t", 0.5) for _ in range(10_000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    totals_midway, _ = c.snapshot()  # a snapshot while they run folds concurrently with their own folds
    for thread in threads:
        thread.join()
    totals, per_task = c.snapshot()
    assert totals_midway["tasks_succeeded_total"] <= 40_000
    assert totals["tasks_succeeded_total"] == per_task["t"]["succeeded_total"] == 40_000


def test_the_observers_probes_are_counted_but_not_in_the_workers_runtime_percentiles() -> None:
    c = TaskCounters(not_load=frozenset({"vsmmon.collect.run"}))
    for _ in range(50):
        c.succeeded("app.work", 0.01)
        c.succeeded("vsmmon.collect.run", 2.0)  # waits on the fleet's broadcast replies
    c.failed("vsmmon.collect.run", 2.5)
    totals, per_task = c.snapshot()
    assert totals["task_runtime_p95_s"] == 0.01
    assert totals["tasks_succeeded_total"] == 100
    assert totals["tasks_failed_total"] == 1
    assert per_task["vsmmon.collect.run"]["runtime_p95_s"] == 2.0  # its own p95 (51 runtimes) stays


def test_each_names_successes_fill_cumulative_runtime_buckets_and_only_the_bounds_that_hold_runs() -> None:
    c = TaskCounters()
    for runtime in (0.004, 0.005, 0.2, 0.2, 30.0):  # 0.005 is at its bound: le, as Prometheus counts
        c.succeeded("a", runtime)
    c.failed("a", 0.001)  # celery-exporter's histogram is of successes
    _, per_task = c.snapshot()
    figures = {k: v for k, v in per_task["a"].items() if k in HISTOGRAM_FIGURES}
    assert figures == {
        "runtime_count": 5.0, "runtime_sum_s": pytest.approx(30.409),
        "runtime_le_5ms": 2.0, "runtime_le_250ms": 4.0,  # 30 s is past the last bound (10 s): in +Inf only
    }  # fmt: skip


def test_a_name_with_no_success_reports_no_histogram() -> None:
    c = TaskCounters()
    c.failed("a", 0.3)
    c.retried("a")
    _, per_task = c.snapshot()
    assert not [k for k in per_task["a"] if k.startswith(("runtime_le_", "runtime_count", "runtime_sum"))]


def test_queue_waits_are_kept_per_task_name_and_worker_wide() -> None:
    c = TaskCounters()
    for wait in (0.1, 0.2, 0.3):
        c.succeeded("fast", 0.01, wait)
    c.succeeded("fast", 0.01, -0.5)  # clock skew: not a wait
    c.succeeded("fast", 0.01)  # published without the plugin's stamp: no wait known
    c.failed("slow", 2.0, 9.0)
    totals, per_task = c.snapshot()
    assert per_task["fast"]["wait_p50_s"] == pytest.approx(0.2)
    assert per_task["fast"]["wait_p95_s"] == pytest.approx(np.percentile([0.1, 0.2, 0.3], 95))
    assert per_task["slow"]["wait_p50_s"] == 9.0
    assert totals["queue_wait_p50_s"] == pytest.approx(0.25)  # all four waits, whatever the name


def test_the_last_failures_are_kept_bounded_and_given_since_a_time() -> None:
    c = TaskCounters()
    for i in range(MAX_FAILURES + 5):
        c.failed("pay", 0.1, failure=Failure("pay", f"id-{i}", "app.Declined", f"card {i} declined", at=1000.0 + i))
    recent = c.recent_failures(since=1000.0 + MAX_FAILURES + 2)
    assert [f["task_id"] for f in recent] == ["id-12", "id-13", "id-14"]
    assert recent[0] == {"task": "pay", "task_id": "id-12", "exception": "app.Declined", "message": "card 12 declined",
                         "at": 1012.0}  # fmt: skip
    assert len(c.recent_failures(since=0)) == MAX_FAILURES  # the oldest 5 are gone
    assert c.snapshot()[1]["pay"]["failed_total"] == MAX_FAILURES + 5
