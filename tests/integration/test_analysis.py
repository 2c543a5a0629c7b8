"""The analysis task on real services: a leaking agent gets a time-to-limit and a recommendation naming it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.agent.simulator import MEMORY_LIMIT_BYTES, SimAgent, metrics_at
from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.names import ACCURACY_KEY, EXHAUSTION_KEY
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.workers.context import PipelineApp


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Info alerts (recommendations) fire at their first report, and S3 decides on one held 2 s (not 60: it
    defers a younger alert before planning it), so S3 gets them within the test."""
    return settings.model_copy(update={"alert_pending_s": 0.0, "control_persist_s": 2.0})


@pytest.fixture
def window(pipeline_app: PipelineApp) -> Iterator[RealtimeWindow]:
    """The pipeline's real-time window on its Redis."""
    settings = pipeline_app.vsm_settings
    client = redis.Redis.from_url(settings.require("redis_url"))
    yield RealtimeWindow(client, settings.collect_interval_s)
    client.close()


def write_history(
    window: RealtimeWindow, store: PostgresStore, cycles: list[tuple[datetime, tuple[AgentReport, ...]]]
) -> None:
    """Collections into the real-time window and the registry, as the pipeline writes them."""
    for at, reports in cycles:
        collection = Collection(uuid.uuid4(), at, 1.0, reports)
        window.write(collection)
        store.update_registry(collection)


def test_a_leak_is_predicted_within_10_percent_and_named_in_a_recommendation(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, window: RealtimeWindow
) -> None:
    client = window.client
    leaky = SimAgent("sim-leak-0", "worker", "leak", seed=11)
    now = datetime.now(UTC)
    start = now - timedelta(seconds=120)  # two minutes of data, one report per 5 s
    write_history(window, store, [
        (start + timedelta(seconds=5.0 * step),
         (AgentReport(leaky.agent_id, AgentKind.WORKER, "h", metrics_at(leaky, 5.0 * step) or {}, interval_s=5.0),))
        for step in range(25)
    ])  # fmt: skip

    summary = pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    assert any(r.startswith("resource_adjustment:sim-leak-0:restart_worker") for r in summary["recommendations"])

    last = metrics_at(leaky, 120.0)
    assert last is not None
    truth_s = (MEMORY_LIMIT_BYTES - last["rss_bytes"]) / (1024 * 1024)  # 1 MB/s
    predicted = json.loads(client.get(EXHAUSTION_KEY) or b"{}")["memory:sim-leak-0"]
    assert abs(predicted - truth_s) <= 0.1 * truth_s, (predicted, truth_s)

    [advice] = [r for r in store.recommendations(datetime.now(UTC)) if r.target == "sim-leak-0"]
    assert "leak" in advice.rationale
    assert "512 MB" in advice.rationale
    # a second analysis refreshes the same recommendation instead of adding one
    pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    assert len([r for r in store.recommendations(datetime.now(UTC)) if r.target == "sim-leak-0"]) == 1


def test_recommendations_are_listed_by_the_api_and_the_cli(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, window: RealtimeWindow
) -> None:
    import os
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from vsmmon.web import create_app

    test_a_leak_is_predicted_within_10_percent_and_named_in_a_recommendation(
        pipeline_app, running_worker, store, window
    )
    with TestClient(create_app(pipeline_app.vsm_settings, report_self=False)) as web:
        listed = web.get("/api/v1/recommendations").json()["recommendations"]
    assert [r["action"]["command"] for r in listed if r["target"] == "sim-leak-0"] == ["restart_worker"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env["VSMMON_DATABASE_URL"] = pipeline_app.vsm_settings.sqlalchemy_url()
    shown = subprocess.run([sys.executable, "-m", "vsmmon", "recommendations"], env=env, capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    assert "sim-leak-0" in shown.stdout
    assert "likely a leak" in shown.stdout


def test_forecasts_that_fell_due_are_scored_and_their_smape_is_handed_to_s4(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, window: RealtimeWindow
) -> None:
    from vsmmon.analyse.analysis import AnalysisResult
    from vsmmon.analyse.forecast import Forecast, smape

    client = window.client
    agent = SimAgent("sim-acc-0", "worker", "leak", seed=5)
    now = datetime.now(UTC)
    write_history(window, store, [  # the last 2 minutes
        (now - timedelta(seconds=120 - 5 * step),
         (AgentReport(agent.agent_id, AgentKind.WORKER, "h", metrics_at(agent, 5.0 * step) or {}, interval_s=5.0),))
        for step in range(25)
    ])  # fmt: skip
    observed = {p.ts: p.value for p in window.read(agent.agent_id, "rss_bytes", now)}

    def truth(due: datetime) -> float:
        return observed[min(observed, key=lambda t: abs((t - due).total_seconds()))]

    made_5min, made_1h = now - timedelta(seconds=360), now - timedelta(seconds=3630)  # due 60 s and 30 s ago
    a_5min, a_1h = truth(made_5min + timedelta(seconds=300)), truth(made_1h + timedelta(seconds=3600))
    for made, horizon, predicted in ((made_5min, 300.0, 1.1 * a_5min), (made_1h, 3600.0, a_1h)):
        store.save_analysis(AnalysisResult(made, (), (("sim-acc-0", "memory_bytes",
                                           Forecast(horizon, predicted, 0.0, 1e12, 0.95)),), {}, {}, ()))  # fmt: skip

    summary = pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    expected = smape([a_5min, a_1h], [1.1 * a_5min, a_1h])  # 0.1 / 2.1 and 0, averaged
    assert summary["smape"] == pytest.approx(expected, rel=1e-9)
    handed = json.loads(client.get(ACCURACY_KEY) or b"{}")
    assert handed["forecasts"] == 2
    assert handed["smape"] == pytest.approx(expected, rel=1e-9)
    assert datetime.fromisoformat(handed["at"]) <= datetime.now(UTC)
    # scored once: the next analysis finds them no longer due, and the hour's sMAPE is the same
    assert store.due_forecasts(now - timedelta(hours=1), now) == []
    assert pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)["smape"] == pytest.approx(expected, rel=1e-9)


def test_a_queue_outrunning_its_drain_gets_a_capacity_plan_and_a_pool_grow_for_its_worker(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, window: RealtimeWindow
) -> None:
    from vsmmon.alerts.routing import signal_from_recommendation

    now = datetime.now(UTC)

    # 10+ minutes: a 4-slot worker completes 8 tasks/s (2/s a slot) while "emails" grows by 12 messages/s
    def cycle(t: float) -> tuple[AgentReport, ...]:
        worker = AgentReport(
            "celery@cap-1", AgentKind.CELERY_WORKER, "h",
            {"concurrency": 4.0, "active": 4.0, "tasks_succeeded_total": 8.0 * t, "tasks_failed_total": 0.0},
            queues=("emails",),
        )  # fmt: skip
        return worker, AgentReport("queue:emails", AgentKind.QUEUE, "broker", {"messages": 12.0 * t})

    write_history(window, store, [(now - timedelta(seconds=620 - 5.0 * s), cycle(5.0 * s)) for s in range(125)])

    from vsmmon.health.inputs import gather, queue_flows

    registry, settings = store.agents(), pipeline_app.vsm_settings
    [flow] = queue_flows(registry, window, settings, datetime.now(UTC))
    assert [flow] == gather(registry, window, settings, datetime.now(UTC)).queues  # what health sees, alone
    assert (flow.name, flow.out_per_s) == ("emails", pytest.approx(8.0))
    summary = pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    assert "resource_adjustment:celery@cap-1:pool_grow" in summary["recommendations"]
    [row] = [r for r in store.recommendations(datetime.now(UTC)) if r.target == "celery@cap-1"]
    # arrivals = drain + backlog growth ~ 8 + 12 = 20/s against 8/s; backlog ~7,440: 60 s needs (20 + 124) / 2 = 72
    assert row.action["command"] == "pool_grow"
    assert row.action["destination"] == "celery@cap-1"
    assert row.action["queue"] == "emails"
    assert 60 <= row.action["n"] <= 75
    assert f"grow the pool by {row.action['n']} to {row.action['n'] + 4}" in row.rationale
    assert "never drains" in row.rationale
    assert row.expires_at > datetime.now(UTC)
    signal = signal_from_recommendation(row, datetime.now(UTC))  # the stored recommendation, typed
    assert signal is not None
    assert (signal.target, signal.labels["command"], signal.resource) == ("celery@cap-1", "pool_grow", True)
    # the analysis task handed it to the alert manager, which routed it to S3; S3 assessed it (this
    # worker exists only in the registry: inspect gets no answer, so S3 records why it did nothing)
    records = AlertRecords(store.engine)
    action = poll(lambda: next((a for a in records.actions() if a.target == "celery@cap-1"), None),
                  deadline_s=30, what="the resource adjustment to reach S3")  # fmt: skip
    alert = records.alert(str(action.alert_id))
    assert (alert["type"], alert["labels"]) == ("resource_adjustment", {"command": "pool_grow"})
    assert action.action == "none"
    assert "not a live worker" in action.reason
