"""The worker plugin inside real prefork workers: counts, percentiles, queue wait, process metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from tests.integration.conftest import poll
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.collect.collector import parse_worker_reply
from vsmmon.config import Settings


def metrics_of(app: Any, hostname: str) -> dict[str, Any] | None:
    replies = app.control.broadcast("vsm_metrics", reply=True, timeout=2, destination=[hostname], limit=1)
    return next((r[hostname] for r in replies or [] if hostname in r), None)


def test_vsm_metrics_counts_outcomes_in_a_prefork_worker(
    settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    broker = settings.require("broker_url")
    with fleet_workers(broker, ["plug"], tmp_path) as [worker]:
        app = control_app(broker)
        for _ in range(5):
            app.send_task("fleet.ok", queue="fleet")
        for _ in range(2):
            app.send_task("fleet.fail", queue="fleet")
        app.send_task("fleet.retry_once", queue="fleet")

        def settled() -> dict[str, Any] | None:
            reply = metrics_of(app, worker.hostname)
            tasks = (reply or {}).get("tasks", {})
            done = tasks.get("fleet.retry_once", {}).get("succeeded_total") == 1
            return reply if done and tasks.get("fleet.ok", {}).get("succeeded_total") == 5 else None

        reply = poll(settled, deadline_s=30, what="the plugin to count 5 ok, 2 failed, 1 retried")
        tasks, metrics = reply["tasks"], reply["metrics"]
        assert tasks["fleet.fail"]["failed_total"] == 2
        assert tasks["fleet.fail"]["succeeded_total"] == 0
        assert tasks["fleet.retry_once"]["retried_total"] == 1
        assert metrics["tasks_succeeded_total"] == 6
        assert metrics["tasks_failed_total"] == 2
        assert 0 <= metrics["task_runtime_p50_s"] <= metrics["task_runtime_p99_s"] < 5
        assert 0 <= metrics["queue_wait_p50_s"] < 30
        assert metrics["concurrency"] == 2
        assert metrics["children"] == 2  # the prefork pool's processes, read with psutil
        assert metrics["children_rss_bytes"] > 10e6
        assert metrics["rss_bytes"] > 10e6
        assert reply["queues"] == ["fleet"]
        assert reply["version"].startswith("fleet 1.0; vsmmon")
        assert len(reply["config_hash"]) == 16
        assert reply["errors"] == {}

        report = parse_worker_reply(worker.hostname, reply)
        assert report.metrics["task.fleet.fail.failed_total"] == 2
        assert report.queues == ("fleet",)
        assert report.errors == {}

        # the second reading of CPU % comes from the kept Process objects: a real, bounded figure
        second = metrics_of(app, worker.hostname)
        assert second is not None
        assert 0 <= second["metrics"]["cpu_percent"] <= 100 * 64
    client = redis.Redis.from_url(broker)
    client.close()
