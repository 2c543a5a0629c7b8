"""Flower on the pipeline: workers and tasks listed with readable names, `vsmmon.health.check` applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.local.embedded import free_port
from vsmmon.workers.context import PipelineApp

AUTH = ("ops", "s3cret-pass")


def test_flower_lists_the_pipeline_and_applies_a_health_check(
    pipeline_app: PipelineApp, running_worker: Any, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSMMON_", "FLOWER_"))}
    env.update(VSMMON_BROKER_URL=settings.require("broker_url"), VSMMON_DATABASE_URL=settings.sqlalchemy_url(),
               VSMMON_DATA_DIR=str(tmp_path), FLOWER_BASIC_AUTH=":".join(AUTH))  # fmt: skip
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        flower = subprocess.Popen([sys.executable, "-m", "vsmmon", "flower", "--port", str(port)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def api(path: str) -> Any:
            try:
                r = httpx.get(base + path, auth=AUTH, timeout=5)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 200 else None

        workers = poll(lambda: api("/api/workers?refresh=1"), deadline_s=60, what=f"Flower's workers ({log})")
        assert running_worker.hostname in workers
        assert httpx.get(base + "/api/workers", timeout=5).status_code == 401  # behind auth

        pipeline_app.send_task(names.COLLECT_RUN)
        tasks = poll(
            lambda: (t := api("/api/tasks")) and any(v.get("name") == names.COLLECT_RUN for v in t.values()) and t,
            deadline_s=30, what="the collect task in Flower",
        )  # fmt: skip
        collect = next(v for v in tasks.values() if v.get("name") == names.COLLECT_RUN)
        assert collect["args"] in ("()", "[]")  # messages carry ids, not payloads
        chained = [v for v in tasks.values() if v.get("name") == names.PERSIST_COLLECTION]
        assert all(len(str(v.get("args"))) < 80 for v in chained)

        applied = httpx.post(base + f"/api/task/async-apply/{names.HEALTH_CHECK}", json={}, auth=AUTH, timeout=10)
        assert applied.status_code == 200, applied.text
        task_id = applied.json()["task-id"]
        result = poll(
            lambda: (r := api(f"/api/task/result/{task_id}")) and r.get("state") == "SUCCESS" and r,
            deadline_s=30, what="the health check applied from Flower",
        )  # fmt: skip
        assert "viability" in result["result"]
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(timeout=15)
