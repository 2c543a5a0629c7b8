"""The S3* audit on real workers: an honest one passes every check; a wedged one (its only pool process
busy, yet it answers pings and reports itself fine) does not take the canary: a finding and a lower S3
and S5 score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import poll
from tests.integration.cycles import Beat
from tests.integration.fleet import control_app, fleet_workers
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.context import PipelineApp

pytestmark = pytest.mark.timeout(120)


def audit(app: PipelineApp, hostname: str) -> dict[str, Any]:
    result: dict[str, Any] = app.send_task(names.HEALTH_AUDIT, args=(hostname,)).get(timeout=30)
    return result


def busy(broker: str, hostname: str) -> bool:
    active = control_app(broker).control.inspect(destination=[hostname], timeout=2).active() or {}
    return bool(active.get(hostname))


def factor(assessment: dict[str, Any], system: str, name: str) -> dict[str, Any]:
    return next(f for f in assessment["systems"][system]["factors"] if f["name"] == name)


def test_an_honest_worker_passes_and_a_wedged_one_is_found_out(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    broker = fast_settings.require("broker_url")
    with (
        fleet_workers(broker, ["honest"], tmp_path / "a", concurrency=2) as (honest,),
        fleet_workers(broker, ["wedged"], tmp_path / "b", concurrency=1, queues="stuck") as (wedged,),
    ):
        beat = Beat(pipeline, store)
        for _ in range(2):
            beat.cycle()
        good = audit(pipeline, honest.hostname)
        assert good["checks"] == ["reachability", "pool", "canary", "accounting"]
        assert good["findings"] == []
        assert good["score"] == 1.0
        said = honest.log.read_text()  # the worker logs at info level: the audit left no line there
        assert "ready." in said
        assert ".dq2" not in said
        assert f"Task {names.CANARY_TASK}[" not in said  # neither received nor succeeded lines (the banner lists it)
        control_app(broker).send_task("fleet.sleep", args=(10.0,), queue="stuck")  # its one process, busy
        poll(lambda: busy(broker, wedged.hostname) or None, deadline_s=10, what="the wedged worker to start sleeping")
        bad = audit(pipeline, wedged.hostname)
        assert [f["check"] for f in bad["findings"]] == ["canary"]
        assert "not taken within 5 s" in bad["findings"][0]["message"]
        assert bad["score"] == pytest.approx(2 / 3)
        checked = pipeline.send_task(names.HEALTH_CHECK).get(timeout=30)
    for system in ("S3", "S5"):
        seen = factor(checked, system, "audit")
        assert seen["score"] == pytest.approx(2 / 3)
        assert seen["inputs"]["worker"] == wedged.hostname


def test_a_worker_stopping_as_it_is_audited_is_no_finding_and_a_wedged_live_one_still_is(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    """SIGTERM while a task runs: the warm shutdown answers no ping, and its goodbye is read at the next
    collection. The audit waits for the registry to judge it, and drops the round: no finding, no score."""
    import signal

    broker = fast_settings.require("broker_url")
    with fleet_workers(broker, ["leaving"], tmp_path, concurrency=1, queues="stuck") as (leaving,):
        beat = Beat(pipeline, store)
        for _ in range(2):
            beat.cycle()
        control_app(broker).send_task("fleet.sleep", args=(12.0,), queue="stuck")  # its shutdown waits for it
        poll(lambda: busy(broker, leaving.hostname) or None, deadline_s=10, what="the task to start")
        leaving.process.send_signal(signal.SIGTERM)
        pending = pipeline.send_task(names.HEALTH_AUDIT, args=(leaving.hostname,))
        for _ in range(3):  # collections go on: one reads the goodbye
            beat.cycle()
        result = pending.get(timeout=30)
        assert leaving.process.poll() is None  # still finishing its task: it was stopping, not gone
    assert result == {"audited": leaving.hostname, "void": "stopped during the audit: no finding, the registry says it"}
    assert pipeline.context().realtime.client.get(names.AUDIT_KEY) is None  # no score for S3 and S5


def consumed(broker: str, hostname: str) -> set[str]:
    found = control_app(broker).control.inspect(destination=[hostname], timeout=2).active_queues() or {}
    return {q["name"] for q in found.get(hostname, [])}


def test_the_audit_leaves_a_users_own_direct_queue_consumer_in_place(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    """A worker started with `worker_direct` consumes its direct queue itself: the audit's canary goes to that
    consumer, and the audit neither cancels it (the user's direct tasks would stop arriving) nor purges it."""
    broker = fast_settings.require("broker_url")
    env = {"VSMMON_TEST_WORKER_DIRECT": "1"}
    with fleet_workers(broker, ["direct"], tmp_path, extra_env=env) as (worker,):
        direct = f"{worker.hostname}.dq2"
        assert direct in consumed(broker, worker.hostname)
        beat = Beat(pipeline, store)
        for _ in range(2):
            beat.cycle()
        result = audit(pipeline, worker.hostname)
        assert result["findings"] == [], result
        assert result["score"] == 1.0
        assert direct in consumed(broker, worker.hostname)  # still the user's: not cancelled by the audit
        sent = control_app(broker).send_task("fleet.ok", queue=direct)
        assert sent.id
        poll(lambda: worker_ran_ok(broker, worker.hostname) or None, deadline_s=10, what="the direct task to run")


def worker_ran_ok(broker: str, hostname: str) -> bool:
    stats = control_app(broker).control.inspect(destination=[hostname], timeout=2).stats() or {}
    return bool((stats.get(hostname) or {}).get("total", {}).get("fleet.ok"))
