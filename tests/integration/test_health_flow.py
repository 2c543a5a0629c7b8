"""Stop half the workers: S1 falls and viability leaves normal within 2 health intervals; bring them
back: a recovery. Real workers, real collection, real health tasks (the test plays beat)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cycles import Beat
from tests.integration.fleet import fleet_workers
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore
from workers.context import PipelineApp


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
            after = [assess(pipeline)]
            beat.cycle()
            after.append(assess(pipeline))  # within 2 health intervals
        raised = [x for a in after for x in a["alerts"]]  # type: ignore[attr-defined]
        assert "S1:critical" in raised or "S1:warning" in raised, after
        assert min(float(a["viability"]) for a in after) < float(before["viability"])  # type: ignore[arg-type]
        from fastapi.testclient import TestClient

        from vsmmon.web import create_app as create_web

        with TestClient(create_web(fast_settings, report_self=False)) as web:
            latest = web.get("/api/v1/health").json()
        assert latest["systems"]["S1"]["state"] in ("degraded", "unhealthy")
        assert latest["systems"]["S1"]["factors"][0]["inputs"]["availability"] < 1
        s1_now = store.health_history("system", "S1", store.latest_collection().started_at)[-1]  # type: ignore[union-attr]
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
        killed = []
        for _ in range(4):
            beat.cycle()
            killed.append(assess(pipeline))
        status = {a.agent_id: a.status.value for a in store.agents()}
        assert {status[w.hostname] for w in staying} == {"offline"}, status
        raised = [x for k in killed for x in k["alerts"]]  # type: ignore[attr-defined]
        assert "S1:critical" in raised or "S1:warning" in raised, killed
