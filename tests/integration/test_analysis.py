"""The analysis task on real services: a leaking agent gets a time-to-limit and a recommendation naming it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.realtime import RealtimeWindow
from vsmmon.simulator import MEMORY_LIMIT_BYTES, SimAgent, metrics_at
from vsmmon.storage.postgres import PostgresStore
from workers import names
from workers.analyse import EXHAUSTION_KEY
from workers.context import PipelineApp


def test_a_leak_is_predicted_within_10_percent_and_named_in_a_recommendation(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    settings = pipeline_app.vsm_settings
    client = redis.Redis.from_url(settings.require("redis_url"))
    window = RealtimeWindow(client, settings.collect_interval_s)
    leaky = SimAgent("sim-leak-0", "worker", "leak", seed=11)
    now = datetime.now(UTC)
    start = now - timedelta(seconds=120)  # two minutes of data, one report per 5 s
    for step in range(25):
        t = step * 5.0
        report = AgentReport(leaky.agent_id, AgentKind.WORKER, "h", metrics_at(leaky, t) or {}, interval_s=5.0)
        collection = Collection(uuid.uuid4(), start + timedelta(seconds=t), 1.0, (report,))
        window.write(collection)
        store.update_registry(collection)

    summary = pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    assert any(r.startswith("resource_adjustment:sim-leak-0:restart_worker") for r in summary["recommendations"])

    last = metrics_at(leaky, 120.0)
    assert last is not None
    truth_s = (MEMORY_LIMIT_BYTES - last["rss_bytes"]) / (1024 * 1024)  # 1 MB/s
    predicted = json.loads(client.get(EXHAUSTION_KEY) or b"{}")["memory:sim-leak-0"]
    assert abs(predicted - truth_s) <= 0.1 * truth_s, (predicted, truth_s)

    [advice] = [r for r in store.recommendations(datetime.now(UTC)) if r["target"] == "sim-leak-0"]
    assert "leak" in advice["rationale"]
    assert "512 MB" in advice["rationale"]
    # a second analysis refreshes the same recommendation instead of adding one
    pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    assert len([r for r in store.recommendations(datetime.now(UTC)) if r["target"] == "sim-leak-0"]) == 1
    client.close()


def test_recommendations_are_listed_by_the_api_and_the_cli(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore
) -> None:
    import os
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from vsmmon.web import create_app

    test_a_leak_is_predicted_within_10_percent_and_named_in_a_recommendation(pipeline_app, running_worker, store)
    with TestClient(create_app(pipeline_app.vsm_settings, report_self=False)) as web:
        listed = web.get("/api/v1/recommendations").json()["recommendations"]
    assert [r["action"]["command"] for r in listed if r["target"] == "sim-leak-0"] == ["restart_worker"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env["VSMMON_DATABASE_URL"] = pipeline_app.vsm_settings.sqlalchemy_url()
    shown = subprocess.run([sys.executable, "-m", "vsmmon", "recommendations"], env=env, capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    assert "sim-leak-0" in shown.stdout
    assert "likely a leak" in shown.stdout
