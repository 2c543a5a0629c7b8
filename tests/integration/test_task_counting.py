"""Every task a monitored worker runs is counted, whatever its class and whatever the pool.

`received = succeeded + failed + retried + rejected + active` in the worker's own figures; tasks of a
custom `base=` class, bound tasks and `shared_task`s count like the rest; a request class of the user's
own keeps running its hooks; the solo pool's memory is its one process, counted once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.conftest import poll
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.config import Settings

SENT = {  # task name -> how many are sent
    "fleet.ok": 3, "fleet.fail": 2, "fleet.retry_once": 1, "fleet.custom_base": 2, "fleet.custom_base_fail": 1,
    "fleet.own_request": 2, "fleet.bound": 1, "fleet.shared": 1,
}  # fmt: skip
SUCCEEDED = {"fleet.ok": 3, "fleet.retry_once": 1, "fleet.custom_base": 2, "fleet.own_request": 2,
             "fleet.bound": 1, "fleet.shared": 1}  # fmt: skip
FAILED = {"fleet.fail": 2, "fleet.custom_base_fail": 1}


def metrics_of(app: Any, hostname: str) -> dict[str, Any] | None:
    replies = app.control.broadcast("vsm_metrics", reply=True, timeout=2, destination=[hostname], limit=1)
    return next((r[hostname] for r in replies or [] if hostname in r), None)


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo", "gevent", "eventlet"])
def test_every_task_is_counted_whatever_its_class_and_pool(
    pool: str, settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    broker = settings.require("broker_url")
    concurrency = 1 if pool == "solo" else 2
    with fleet_workers(broker, [f"count-{pool}"], tmp_path, pool=pool, concurrency=concurrency) as [worker]:
        app = control_app(broker)
        for name, n in SENT.items():
            for _ in range(n):
                app.send_task(name, queue="fleet")

        def settled() -> dict[str, Any] | None:
            reply = metrics_of(app, worker.hostname)
            tasks = (reply or {}).get("tasks", {})
            done = sum(t.get("succeeded_total", 0) + t.get("failed_total", 0) for t in tasks.values())
            return reply if done == sum(SUCCEEDED.values()) + sum(FAILED.values()) else None

        reply = poll(settled, deadline_s=60, what=f"the {pool} worker to count every task")
        tasks, metrics = reply["tasks"], reply["metrics"]
        assert {n: t["succeeded_total"] for n, t in tasks.items() if t.get("succeeded_total")} == SUCCEEDED
        assert {n: t["failed_total"] for n, t in tasks.items() if t.get("failed_total")} == FAILED
        assert tasks["fleet.retry_once"]["retried_total"] == 1
        outcomes = sum(metrics[f"tasks_{k}_total"] for k in ("succeeded", "failed", "retried", "rejected"))
        assert metrics["tasks_received_total"] == outcomes + metrics["active"] == sum(SENT.values()) + 1  # + the retry
        assert int(redis.Redis.from_url(broker).get("fleet:accepted") or 0) == 2  # the user's own hook still ran
        assert metrics["concurrency"] == concurrency
        if pool == "solo":  # one process: its memory once, no "child"
            assert metrics["children"] == 0
            assert metrics.get("children_rss_bytes", 0.0) == 0.0
