"""The tasks and queues views on a real fleet: two plugin workers run 20 task names, some failing, some slow; the
API and `vsmmon tasks` give the rates, failure ratios, percentiles and last exception the test's own counts say,
and each queue's consumers and drain.

Each batch is complete in the workers' counters (read through `vsm_metrics`, as a collection reads them) before
the collection that follows it, so the window holds exactly two points per series: one before the second
batch, one after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.integration.conftest import poll
from tests.integration.cycles import Beat
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.cli.main import build_parser
from vsmmon.cli.queues import cmd_queues
from vsmmon.cli.tasks import cmd_tasks
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app
from vsmmon.workers.context import PipelineApp

NAMES = [f"fleet.work.t{i:02d}" for i in range(20)]
FAILING, HALF, SLOW = "fleet.work.t03", "fleet.work.t08", "fleet.work.t11"


def second_batch() -> list[tuple[str, float, bool]]:
    """(task, sleep, fail) of each run: 2 to 4 runs a name; t03 always fails, t08 every other run, t11 sleeps."""
    runs = []
    for i, name in enumerate(NAMES):
        for k in range(2 + i % 3):
            runs.append((name, 0.3 if name == SLOW else 0.0, name == FAILING or (name == HALF and k % 2 == 0)))
    return runs


@pytest.fixture
def api(fast_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fast_settings, report_self=False)) as client:
        yield client


def counted(broker: str, hostnames: list[str]) -> dict[str, dict[str, float]]:
    """Each task name's finished runs (succeeded + failed), summed over the workers, as their plugins count now."""
    replies = control_app(broker).control.broadcast("vsm_metrics", reply=True, timeout=2, destination=hostnames)
    found: dict[str, dict[str, float]] = {}
    for reply in replies:
        for figures in reply.values():
            for name, f in figures.get("tasks", {}).items():
                mine = found.setdefault(name, {"finished": 0.0, "failed": 0.0})
                mine["finished"] += f["succeeded_total"] + f["failed_total"]
                mine["failed"] += f["failed_total"]
    return found


def send_and_wait(broker: str, runs: list[tuple[str, str, float, bool]], hostnames: list[str]) -> None:
    app = control_app(broker)
    before = counted(broker, hostnames)
    for name, queue, sleep_s, fail in runs:
        app.send_task(name, kwargs={"sleep_s": sleep_s, "fail": fail}, queue=queue)
    want: dict[str, float] = {}
    for name, *_ in runs:
        want[name] = want.get(name, 0.0) + 1

    def done() -> bool:
        now = counted(broker, hostnames)
        return all(now.get(n, {}).get("finished", 0.0) - before.get(n, {}).get("finished", 0.0) == c
                   for n, c in want.items())  # fmt: skip

    poll(done, deadline_s=60, what="every run of the batch counted by the plugins")


def test_the_tasks_view_gives_each_names_rate_failures_percentiles_and_last_exception(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, api: TestClient, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    broker = fast_settings.require("broker_url")
    with fleet_workers(broker, ["tv1"], tmp_path / "a", queues="tv1") as (w1,), \
            fleet_workers(broker, ["tv2"], tmp_path / "b", queues="tv2") as (w2,):  # fmt: skip
        hosts = [w1.hostname, w2.hostname]
        first = [(n, q, 0.3 if n == SLOW else 0.0, n == FAILING) for n in NAMES for q in ("tv1", "tv2")]
        send_and_wait(broker, first, hosts)
        beat = Beat(pipeline, store)
        a = beat.cycle()
        plan = second_batch()
        send_and_wait(broker, [(n, ("tv1", "tv2")[k % 2], s, f) for k, (n, s, f) in enumerate(plan)], hosts)
        b = beat.cycle()
        interval = fast_settings.collect_interval_s
        span_s = (int(b.started_at.timestamp() // interval) - int(a.started_at.timestamp() // interval)) * interval
        body = api.get("/api/v1/tasks").json()
        rows = {r["name"]: r for r in body["tasks"]}
        assert set(NAMES) <= set(rows)
        for name in NAMES:
            runs = [r for r in plan if r[0] == name]
            row = rows[name]
            assert row["rate_per_s"] == pytest.approx(len(runs) / span_s), name
            assert row["failure_ratio"] == pytest.approx(sum(1 for r in runs if r[2]) / len(runs)), name
            assert row["succeeded_total"] + row["failed_total"] == 2 + len(runs)
            assert sorted(row["workers"]) == sorted(hosts)
        assert rows[FAILING]["failure_ratio"] == 1.0
        assert rows[HALF]["failure_ratio"] == 0.5
        assert 0.3 <= rows[SLOW]["runtime_p50_s"] < 0.6
        assert all(rows[n]["runtime_p95_s"] < 0.25 for n in NAMES if n != SLOW)
        assert rows[FAILING]["last_failure"]["exception"] == "LookupError"
        assert rows[FAILING]["last_failure"]["message"] == f"{FAILING} failed on purpose"
        assert rows["fleet.work.t00"]["last_failure"] is None
        assert [r["name"] for r in api.get("/api/v1/tasks", params={"sort": "failures"}).json()["tasks"][:2]] == [
            FAILING, HALF,
        ]  # fmt: skip
        assert [r["name"] for r in api.get("/api/v1/tasks", params={"q": "T1"}).json()["tasks"]] == sorted(
            [n for n in NAMES if "t1" in n], key=lambda n: (-rows[n]["rate_per_s"], n)
        )
        detail = api.get(f"/api/v1/tasks/{FAILING}").json()
        failing_runs = sum(1 for r in plan if r[0] == FAILING)
        assert len(detail["failures"]) == 2 + failing_runs  # each once, though replies carry them for 2 minutes
        assert {f["worker"] for f in detail["failures"]} == set(hosts)
        assert len({f["task_id"] for f in detail["failures"]}) == 2 + failing_runs
        assert {f["arguments"] for f in detail["failures"]} == {None}  # not opted in: no arguments kept
        assert detail["charts"]["failed_per_s"][-1][1] == pytest.approx(failing_runs / span_s)
        assert api.get("/api/v1/tasks/fleet.never.ran").status_code == 404
        assert cmd_tasks(build_parser().parse_args(["tasks", "--json", "--filter", "t03"]), fast_settings) == 0
        (printed,) = json.loads(capsys.readouterr().out)["tasks"]
        assert printed["name"] == FAILING
        assert cmd_tasks(build_parser().parse_args(["tasks"]), fast_settings) == 0
        text = capsys.readouterr().out
        assert f"LookupError: {FAILING} failed on purpose" in text
        assert sum(1 for line in text.splitlines() if line.startswith("fleet.work.")) == 20
        queues = {q["name"]: q for q in api.get("/api/v1/queues").json()["queues"]}
        for k, (queue, host) in enumerate((("tv1", w1.hostname), ("tv2", w2.hostname))):
            row = queues[queue]
            assert (row["workers"], row["consumers"]) == ([host], 1)
            assert (row["messages"], row["state"], row["drain_time_s"]) == (0, "empty", 0)
            assert row["drain_per_s"] == pytest.approx(sum(1 for i in range(len(plan)) if i % 2 == k) / span_s)
            assert not row["pipeline"]
        assert queues["vsm.collect"]["pipeline"]
        charted = api.get("/api/v1/queues/tv1").json()
        assert [v for _, v in charted["charts"]["messages"]] == [0, 0]  # the two collections
        assert [v for _, v in charted["charts"]["consumers"]] == [1, 1]
        assert api.get("/api/v1/queues/nobody.consumes.this").status_code == 404
        assert cmd_queues(build_parser().parse_args(["queues", "--json"]), fast_settings) == 0
        printed_queues = {q["name"]: q for q in json.loads(capsys.readouterr().out)["queues"]}
        assert printed_queues["tv1"]["workers"] == [w1.hostname]
        assert cmd_queues(build_parser().parse_args(["queues"]), fast_settings) == 0
        lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
        assert lines["tv2"].split()[1:3] == ["0", "1"]  # no message waiting, one consumer
        assert lines["tv2"].endswith("empty")


def test_an_idle_fleet_has_no_task_rows_and_no_queues(api: TestClient, clean_services: None) -> None:
    body: dict[str, Any] = api.get("/api/v1/tasks").json()
    assert body["tasks"] == []
    assert api.get("/api/v1/queues").json()["queues"] == []
    assert datetime.fromisoformat(body["at"]) <= datetime.now(UTC)


def test_the_tasks_api_wants_the_token_when_reads_need_one_and_names_a_bad_parameter(
    fast_settings: Settings, clean_services: None
) -> None:
    guarded = fast_settings.model_copy(update={"api_token": SecretStr("t" * 32), "reads_need_token": True})
    with TestClient(create_app(guarded, report_self=False)) as client:
        for path in ("/api/v1/tasks", "/api/v1/tasks/fleet.work.t00", "/api/v1/queues", "/api/v1/queues/tv1"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": f"Bearer {'t' * 32}"}
        assert client.get("/api/v1/tasks", headers=auth).status_code == 200
        bad = client.get("/api/v1/tasks", params={"sort": "drop table"}, headers=auth)
        assert bad.status_code == 422
        assert "sort" in bad.text
        assert client.get("/api/v1/tasks", params={"q": "x" * 500}, headers=auth).status_code == 422


def test_failures_keep_their_arguments_only_where_the_operator_opted_in_and_as_the_sender_showed_them(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, api: TestClient, tmp_path: Path
) -> None:
    broker = fast_settings.require("broker_url")
    opted_in = {"VSMMON_TEST_FAILURE_ARGUMENTS": "1"}
    with fleet_workers(broker, ["fa1"], tmp_path, queues="fa1", extra_env=opted_in) as (worker,):
        app = control_app(broker)
        app.send_task(FAILING, kwargs={"sleep_s": 0.0, "fail": True}, queue="fa1")
        app.send_task(FAILING, kwargs={"sleep_s": 0.0, "fail": True}, queue="fa1",
                      kwargsrepr="{'sleep_s': '<hidden>', 'fail': True}")  # fmt: skip
        poll(lambda: counted(broker, [worker.hostname]).get(FAILING, {}).get("failed") == 2, deadline_s=60,
             what="both failures counted")  # fmt: skip
        Beat(pipeline, store).cycle()
        shown = sorted(f["arguments"] for f in api.get(f"/api/v1/tasks/{FAILING}").json()["failures"])
    assert shown == [
        "args=() kwargs={'sleep_s': '<hidden>', 'fail': True}",  # the sender's own repr, not the value
        "args=() kwargs={'sleep_s': 0.0, 'fail': True}",
    ]
