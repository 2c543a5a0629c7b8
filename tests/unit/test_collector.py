import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vsmmon.collect.collector import MAX_METRICS_PER_AGENT, clean_metrics, collect, parse_worker_reply
from vsmmon.models import AgentKind, AgentReport

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOST = AgentReport("host:h1", AgentKind.HOST, "h1", {"cpu_percent": 3.0})


def reply(**metrics: object) -> dict[str, object]:
    return {"host": "h1", "version": "0.1.0", "metrics": metrics, "errors": {}}


def test_collection_holds_host_and_worker_reports_and_names_who_did_not_answer() -> None:
    c = collect(
        collection_id=uuid.uuid4(),
        now=NOW,
        duration_ms=40.0,
        host_reports=[HOST],
        worker_replies={
            "celery@b": reply(cpu_percent=5.0),
            "celery@a": reply(cpu_percent=7.0, rss_bytes=1e6),
        },
        expected_workers=["celery@a", "celery@b", "celery@c"],
    )
    assert [r.agent_id for r in c.reports] == ["host:h1", "celery@a", "celery@b"]
    assert c.unreachable == ("celery@c",)
    assert (c.agent_count, c.sample_count) == (3, 4)
    assert {s.ts for s in c.samples()} == {NOW}
    assert c.reports[1].kind is AgentKind.CELERY_WORKER
    assert c.reports[1].version == "0.1.0"


def test_now_must_be_tz_aware_and_is_kept_in_utc() -> None:
    with pytest.raises(ValueError, match="naive"):
        collect(collection_id=uuid.uuid4(), now=datetime(2026, 1, 1), duration_ms=0, host_reports=[],
                worker_replies={})  # fmt: skip
    plus_two = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    c = collect(collection_id=uuid.uuid4(), now=plus_two, duration_ms=0, host_reports=[], worker_replies={})
    assert c.started_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("bad", [None, "text", 42, ["a"]])
def test_a_reply_that_is_not_an_object_becomes_an_error_not_an_exception(bad: object) -> None:
    report = parse_worker_reply("celery@x", bad)
    assert report.metrics == {}
    assert report.errors["reply"].startswith("expected an object, got")


def test_non_numeric_and_non_finite_metrics_are_dropped_with_a_reason() -> None:
    metrics, problems = clean_metrics(
        {"ok": 1, "f": 2.5, "nan": math.nan, "inf": math.inf, "s": "7", "b": True, "n": None}
    )
    assert metrics == {"ok": 1.0, "f": 2.5}
    assert problems == {
        "metric:nan": "expected a finite number, got nan",
        "metric:inf": "expected a finite number, got inf",
        "metric:s": "expected a number, got str",
        "metric:b": "expected a number, got bool",
        "metric:n": "expected a number, got NoneType",
    }


def test_worker_errors_are_carried_into_the_report() -> None:
    raw = reply(cpu_percent=1.0)
    raw["errors"] = {"psutil": "AccessDenied"}
    report = parse_worker_reply("celery@x", raw)
    assert report.errors == {"psutil": "AccessDenied"}
    assert report.metrics == {"cpu_percent": 1.0}


def test_too_many_metrics_are_cut_and_said() -> None:
    metrics, problems = clean_metrics({f"m{i}": i for i in range(MAX_METRICS_PER_AGENT + 10)})
    assert len(metrics) == MAX_METRICS_PER_AGENT
    assert "metrics" in problems


def test_numbers_the_window_cannot_hold_are_dropped_with_a_reason_and_the_rest_kept() -> None:
    """A reply with an integer past the float range used to raise OverflowError and lose the whole collection."""
    metrics, problems = clean_metrics({"huge": 10**400, "big": 1e39, "ok": 3.0e38, "neg": -1e39, "fine": 2})
    assert metrics == {"ok": 3.0e38, "fine": 2.0}
    assert problems["metric:huge"] == "expected a number of magnitude at most 3.403e+38, got an integer of 1329 bits"
    assert problems["metric:big"] == "expected a number of magnitude at most 3.403e+38, got 1e+39"
    assert "metric:neg" in problems
    report = parse_worker_reply("w1@h", {"metrics": {"rss_bytes": 1.0, "x": 10**400}})
    assert report.metrics == {"rss_bytes": 1.0}


def test_a_report_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        AgentReport("a", AgentKind.SENSOR, "h", {"x": math.inf})


def test_queues_become_reports_with_consumers_counted_from_worker_replies_where_the_broker_cannot() -> None:
    from vsmmon.collect.broker import QueueStats

    c = collect(
        collection_id=uuid.uuid4(),
        now=NOW,
        duration_ms=1.0,
        host_reports=[],
        worker_replies={
            "celery@a": {**reply(), "queues": ["fleet", "vsm.collect"]},
            "celery@b": {**reply(), "queues": ["fleet"]},
        },
        queue_stats=[
            QueueStats("fleet", 12, None, 3.5, {0: 10, 9: 2}),
            QueueStats("rabbit", 4, 7, None, {}),
            QueueStats("orphan", 9, None, None, {}),
        ],
        queue_errors={"gone": "not declared"},
    )
    by_id = {r.agent_id: r for r in c.reports}
    assert by_id["queue:fleet"].metrics == {
        "messages": 12.0, "consumers": 2.0, "oldest_age_s": 3.5,
        "messages_priority_0": 10.0, "messages_priority_9": 2.0,
    }  # fmt: skip
    assert by_id["queue:rabbit"].metrics == {"messages": 4.0, "consumers": 7.0}
    assert by_id["queue:orphan"].metrics["consumers"] == 0.0  # a queue nobody consumes is still seen
    assert by_id["queue:gone"].errors == {"broker": "not declared"}
    assert by_id["queue:gone"].kind is AgentKind.QUEUE


def test_pushed_reports_keep_the_latest_per_agent_and_never_shadow_a_worker() -> None:
    old = AgentReport("llm-1", AgentKind.LLM_WORKER, "g", {"cpu_percent": 1.0})
    new = AgentReport("llm-1", AgentKind.LLM_WORKER, "g", {"cpu_percent": 2.0})
    impostor = AgentReport("celery@a", AgentKind.API, "x", {"cpu_percent": 99.0})
    c = collect(
        collection_id=uuid.uuid4(), now=NOW, duration_ms=1.0, host_reports=[],
        worker_replies={"celery@a": reply(cpu_percent=5.0)}, pushed_reports=[old, new, impostor],
    )  # fmt: skip
    by_id = {r.agent_id: r for r in c.reports}
    assert by_id["llm-1"].metrics == {"cpu_percent": 2.0}
    assert by_id["celery@a"].kind is AgentKind.CELERY_WORKER
    assert len(c.reports) == 2


def test_the_elected_workers_host_section_becomes_the_hosts_report_once() -> None:
    host = {"metrics": {"cpu_percent": 40.0, "load1": 1.5, "bad": "x"}, "errors": {"disk": "denied"}}
    c = collect(
        collection_id=uuid.uuid4(), now=NOW, duration_ms=1.0, host_reports=[],
        worker_replies={"celery@a": {**reply(cpu_percent=1.0), "host_metrics": host},
                        "celery@b": {**reply(cpu_percent=2.0), "host_metrics": None}},
    )  # fmt: skip
    hosts = [r for r in c.reports if r.kind is AgentKind.HOST]
    assert [h.agent_id for h in hosts] == ["host:h1"]
    assert hosts[0].metrics == {"cpu_percent": 40.0, "load1": 1.5}
    assert hosts[0].errors == {"disk": "denied", "metric:bad": "expected a number, got str"}


def test_the_queues_the_fleet_consumes_are_discovered_from_the_replies_bounded_and_clean() -> None:
    from vsmmon.collect.collector import MAX_DISCOVERED_QUEUES, consumed_queues

    replies = {
        "w1@h": {"queues": ["work", "email"]}, "w2@h": {"queues": ["work", "vsm.collect"]},
        "w3@h": {"queues": ["bad\x00name", "", 7, "x" * 300]}, "w4@h": "garbage", "w5@h": {"queues": "work"},
    }  # fmt: skip
    assert consumed_queues(replies) == ("email", "work")  # the pipeline's own queues are probed already
    many = {f"w{i}@h": {"queues": [f"q{i:04d}"]} for i in range(1000)}
    assert len(consumed_queues(many)) == MAX_DISCOVERED_QUEUES


def _cycles(replies_by_cycle: list[tuple[dict[str, object], list[str]]]) -> list[tuple[int, str]]:
    """Run collections 5 s apart through the registry as the persist task does; the transitions, by cycle."""
    from vsmmon.collect.registry import evaluate
    from vsmmon.store.memory import MemoryStore

    store, seen = MemoryStore(), []
    for cycle, (replies, goodbyes) in enumerate(replies_by_cycle):
        now = NOW + timedelta(seconds=5 * cycle)
        c = collect(collection_id=uuid.uuid4(), now=now, duration_ms=1.0, host_reports=[], worker_replies=replies,
                    expected_workers=["celery@w1"], stopped=goodbyes)  # fmt: skip
        store.update_registry(c)
        transitions = evaluate(store.agent_records(), now, c.stopped)
        store.apply_transitions(transitions)
        seen += [(cycle, t.to_status.value) for t in transitions]
    return seen


def test_a_worker_still_answering_while_it_stops_stays_stopped_and_is_never_lost() -> None:
    answering, stopping = {"celery@w1": reply(cpu_percent=1.0)}, {"celery@w1": {**reply(), "stopping": True}}
    # its goodbye is collected in cycle 1; the warm shutdown still answers cycles 1 and 2, then it is gone
    cycles = [(answering, []), (stopping, ["celery@w1"]), (stopping, []), *[({}, [])] * 8, (answering, [])]
    assert _cycles(cycles) == [(1, "stopped"), (11, "online")]  # back only when a new process answers
    c = collect(collection_id=uuid.uuid4(), now=NOW, duration_ms=1.0, host_reports=[], worker_replies=stopping,
                expected_workers=["celery@w1"])  # fmt: skip
    assert (c.reports, c.unreachable, c.stopped) == ((), (), ("celery@w1",))  # no report, not waited for


def test_a_stopping_reply_before_the_goodbye_arrives_is_the_goodbye() -> None:
    answering, stopping = {"celery@w1": reply(cpu_percent=1.0)}, {"celery@w1": {**reply(), "stopping": True}}
    cycles = [(answering, []), (stopping, []), ({}, ["celery@w1"]), *[({}, [])] * 6]
    assert _cycles(cycles) == [(1, "stopped")]


@pytest.mark.parametrize("flag", [False, "yes", 1, None])
def test_only_a_stopping_flag_of_true_means_stopping(flag: object) -> None:
    c = collect(collection_id=uuid.uuid4(), now=NOW, duration_ms=1.0, host_reports=[],
                worker_replies={"celery@w1": {**reply(), "stopping": flag}})  # fmt: skip
    assert ([r.agent_id for r in c.reports], c.stopped) == (["celery@w1"], ())


def test_a_tasks_runtime_histogram_is_kept_as_the_latest_and_in_no_series() -> None:
    from vsmmon.codec import report_from_json, report_to_json

    figures = {"succeeded_total": 3, "runtime_p95_s": 0.2, "runtime_count": 3, "runtime_sum_s": 0.41,
               "runtime_le_5ms": 1, "runtime_le_250ms": 3}  # fmt: skip
    c = collect(collection_id=uuid.uuid4(), now=NOW, duration_ms=1.0, host_reports=[HOST],
                worker_replies={"celery@w1": {**reply(active=1), "tasks": {"app.add": figures}}})  # fmt: skip
    (report,) = [r for r in c.reports if r.agent_id == "celery@w1"]
    assert report.latest == {"task.app.add.runtime_count": 3.0, "task.app.add.runtime_sum_s": 0.41,
                             "task.app.add.runtime_le_5ms": 1.0, "task.app.add.runtime_le_250ms": 3.0}  # fmt: skip
    assert report.metrics == {"active": 1.0, "task.app.add.succeeded_total": 3.0, "task.app.add.runtime_p95_s": 0.2}
    assert {s.metric for s in c.samples()} == {"cpu_percent", *report.metrics}
    assert c.sample_count == 4
    assert report_from_json(report_to_json(report)) == report  # the staging buffer keeps them


def test_histogram_figures_are_capped_on_their_own_and_a_bad_one_is_dropped_with_a_reason() -> None:
    tasks = {f"t{i}": {"runtime_count": 1, "runtime_sum_s": 0.1} for i in range(MAX_METRICS_PER_AGENT)}
    tasks["t0"]["runtime_le_5ms"] = "many"  # type: ignore[assignment]
    report = parse_worker_reply("celery@w1", {**reply(active=1), "tasks": tasks})
    assert len(report.latest) == MAX_METRICS_PER_AGENT
    assert report.metrics == {"active": 1.0}
    assert report.errors["metric:task.t0.runtime_le_5ms"] == "expected a number, got str"
    assert report.errors["histograms"] == f"more than {MAX_METRICS_PER_AGENT} histogram figures; the rest were dropped"
