"""Kill half the workers: S1 falls and viability leaves normal as soon as the registry judges them offline
(unseen for 2 x the interval), without waiting for a scheduled health check; bring them back: a recovery.
Stop workers on purpose: stopped, never lost. Real workers, real collection, real health tasks (the test
plays beat)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.integration.conftest import CYCLE_INTERVAL_S, poll
from tests.integration.cycles import Beat
from tests.integration.fleet import control_app, fleet_workers
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.context import PipelineApp


def assess(app: PipelineApp) -> dict[str, object]:
    result: dict[str, object] = app.send_task(names.HEALTH_ASSESS).get(timeout=30)
    return result


def test_half_the_fleet_stopped_degrades_s1_and_viability_then_recovers(
    pipeline: PipelineApp,
    fast_settings: Settings,
    store: PostgresStore,
    tmp_path: Path,
) -> None:
    broker = fast_settings.require("broker_url")
    beat = Beat(pipeline, store)
    names_ = ["h1", "h2", "h3", "h4"]
    with fleet_workers(broker, names_[:2], tmp_path / "a", concurrency=1) as stable:
        with fleet_workers(broker, names_[2:], tmp_path / "b", concurrency=1) as doomed:
            for _ in range(3):
                beat.cycle()
            before = assess(pipeline)
            assert before["state"] == "normal", before
            s1_before = store.health_history("system", "S1", store.latest_collection().started_at)[-1]  # type: ignore[union-attr]
            assert s1_before.status == "healthy"
            for w in doomed:
                w.kill()
            killed_at = beat.cycle().started_at  # the first collection they miss: stale
            beat.cycle()  # offline here or at the next, as the cycles' start times fall (past 2 x interval unseen)
            beat.cycle()  # by the third: offline, and the persist task that judged so asks for an assessment
            [set_off] = poll(
                lambda: store.health_history("viability", "viability", killed_at),
                deadline_s=20, what="an assessment set off by the loss, before any scheduled one",
            )  # fmt: skip
        raised = {f"{a['subject']}:{a['kind']}" for a in set_off.inputs["alerts"]}
        assert raised & {"S1:critical", "S1:warning"}, set_off.inputs
        assert set_off.score is not None
        assert set_off.score < float(before["viability"])  # type: ignore[arg-type]
        from fastapi.testclient import TestClient

        from vsmmon.web import create_app as create_web

        with TestClient(create_web(fast_settings, report_self=False)) as web:
            latest = web.get("/api/v1/health").json()
        assert latest["systems"]["S1"]["state"] in ("degraded", "unhealthy")
        assert latest["systems"]["S1"]["factors"][0]["inputs"]["availability"] < 1
        s1_now = store.health_history("system", "S1", killed_at)[-1]
        assert s1_now.status in ("degraded", "unhealthy")
        with fleet_workers(broker, names_[2:], tmp_path / "c", concurrency=1):  # brought back
            beat.discover_next()  # offline workers are looked for by the discovery cycle, not by every one
            recovered = []
            for _ in range(3):
                beat.cycle()
                recovered.append(assess(pipeline))
                if "S1:recovery" in recovered[-1]["alerts"]:  # type: ignore[operator]
                    break
        assert "S1:recovery" in recovered[-1]["alerts"], recovered  # type: ignore[operator]
        assert recovered[-1]["state"] == "normal"
        assert stable


def test_a_planned_scale_in_is_not_an_outage_and_a_kill_of_as_many_is(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    """Half the fleet stopped with SIGTERM says goodbye: stopped, not offline; S1 stays healthy, no alert.
    Then the other half is SIGKILLed: offline, its capacity still expected, S1 unhealthy."""
    broker = fast_settings.require("broker_url")
    beat = Beat(pipeline, store)
    with fleet_workers(broker, ["p1", "p2"], tmp_path / "a", concurrency=1) as staying:
        with fleet_workers(broker, ["p3", "p4"], tmp_path / "b", concurrency=1) as leaving:
            for _ in range(3):
                beat.cycle()
            before = assess(pipeline)
            assert before["state"] == "normal", before
            for w in leaving:
                w.stop()
                assert w.process.returncode == 0, w.log.read_text()[-2000:]
        gone = {w.hostname for w in leaving}
        checks = []
        for _ in range(4):  # past the 2 x interval after which a silent worker is offline
            summary = beat.cycle()
            assert not gone & set(summary.unreachable), summary  # they said goodbye: not waited for
            checks.append(assess(pipeline))
        status = {a.agent_id: a.status.value for a in store.agents()}
        assert {status[h] for h in gone} == {"stopped"}, status
        for h in gone:
            assert "offline" not in [t.to_status.value for t in store.transitions(h)]
        assert all(c["alerts"] == [] for c in checks), checks
        s1 = store.health_history("system", "S1", store.latest_collection().started_at)[-1]  # type: ignore[union-attr]
        assert s1.status == "healthy", s1
        assert checks[-1]["state"] == "normal", checks[-1]

        for w in staying:
            w.kill()
        killed_at = beat.cycle().started_at
        for _ in range(2):
            beat.cycle()
        status = {a.agent_id: a.status.value for a in store.agents()}
        assert {status[w.hostname] for w in staying} == {"offline"}, status  # past 2 x the interval unseen

        def raised() -> set[str]:  # by the assessment the loss set off, or a scheduled one
            rows = store.health_history("viability", "viability", killed_at)
            return {f"{a['subject']}:{a['kind']}" for r in rows for a in r.inputs["alerts"]}

        found = poll(lambda: raised() & {"S1:critical", "S1:warning"}, deadline_s=20, what="an S1 alert")
        assert found


def test_a_worker_stopped_while_its_task_finishes_is_stopped_at_once_and_never_lost(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    """SIGTERM while a task runs: the warm shutdown waits for the task and answers nothing meanwhile, for longer
    than the 2 x interval after which a silent worker is offline. The goodbye said as the stop began
    makes it stopped at the next collection, and no assessment counts it lost."""
    broker = fast_settings.require("broker_url")
    beat = Beat(pipeline, store)
    task_s = 6 * CYCLE_INTERVAL_S
    with (
        fleet_workers(broker, ["slow1"], tmp_path / "a", concurrency=1, queues="slow") as [leaving],
        fleet_workers(broker, ["slow2"], tmp_path / "b", concurrency=1) as [staying],
    ):
        for _ in range(2):
            beat.cycle()
        control = control_app(broker)
        control.send_task("fleet.sleep", args=(task_s,), queue="slow")
        poll(lambda: (control.control.inspect([leaving.hostname], timeout=0.5).active() or {}).get(leaving.hostname),
             deadline_s=20, what="the long task to start")  # fmt: skip
        stopping_at = beat.cycle().started_at
        leaving.process.send_signal(signal.SIGTERM)
        for _ in range(4):  # 8 s of collections (past 2 x the 2 s interval) while the task still has seconds to go
            summary = beat.cycle()
            assert leaving.hostname not in summary.unreachable, summary  # it said goodbye: not waited for
        assert leaving.process.poll() is None, "the warm shutdown should still wait for its task"
        status = {a.agent_id: a.status.value for a in store.agents()}
        assert status[leaving.hostname] == "stopped", status
        assert status[staying.hostname] == "online", status
        assert "offline" not in [t.to_status.value for t in store.transitions(leaving.hostname)]
        leaving.process.wait(timeout=30)
        assert leaving.process.returncode == 0, leaving.log.read_text()[-2000:]
    assessments = store.health_history("viability", "viability", stopping_at)
    assert all(a.inputs["alerts"] == [] for a in assessments), [a.inputs for a in assessments]
