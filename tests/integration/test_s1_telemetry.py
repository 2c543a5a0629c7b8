"""S1 telemetry end to end: plugin workers and pushed agents collected, persisted, served, judged.

The test plays beat: it starts a cycle every interval, as `vsmmon beat` would.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.conftest import API_TOKEN
from tests.integration.cycles import INTERVAL_S, TIMEOUT_S, Beat
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.agent import Reporter
from vsmmon.collect.staging import discovery_slot
from vsmmon.config import Settings
from vsmmon.models import CollectionSummary
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.collect import DISCOVERY_EVERY_S
from vsmmon.workers.context import PipelineApp


def status_of(store: PostgresStore, agent_id: str) -> str | None:
    return next((a.status for a in store.agents() if a.agent_id == agent_id), None)


def test_workers_and_pushed_agents_are_collected_and_a_killed_worker_goes_offline(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, live_api: str, tmp_path: Path
) -> None:
    broker = fast_settings.require("broker_url")
    reporter = Reporter(live_api, API_TOKEN)

    def push_two_agents() -> None:
        for agent_id, kind in (("llm-a", "llm_worker"), ("sensor-b", "sensor")):
            reporter.report(
                agent_id, kind, {"cpu_percent": 30.0, "rss_bytes": 2e8, "tasks_succeeded_total": 5.0},
                interval_s=INTERVAL_S,
            )  # fmt: skip

    with fleet_workers(broker, ["s1a", "s1b", "s1c"], tmp_path) as workers:
        control = control_app(broker)
        for _ in range(6):
            control.send_task("fleet.ok", queue="fleet")
        beat = Beat(pipeline, store, before_each=push_two_agents)
        for _ in range(3):
            beat.cycle()

        five = {w.hostname for w in workers} | {"llm-a", "sensor-b"}
        listing = httpx.get(f"{live_api}/api/v1/agents").json()["agents"]
        by_id = {a["agent_id"]: a for a in listing}
        assert five <= set(by_id)
        for agent_id in five:
            metrics = by_id[agent_id]["metrics"]
            assert "cpu_percent" in metrics, agent_id
            assert metrics["rss_bytes"] > 1e6, agent_id
            assert "tasks_succeeded_total" in metrics, agent_id
            assert by_id[agent_id]["status"] == "online", agent_id
        assert sum(by_id[w.hostname]["metrics"]["tasks_succeeded_total"] for w in workers) == 6
        assert by_id["llm-a"]["kind"] == "llm_worker"

        victim = workers[1]
        victim.kill()
        offline_after = None
        after_kill = []
        for n in range(1, 4):
            after_kill.append(summary := beat.cycle())
            assert summary.duration_ms < 3500, summary
            if status_of(store, victim.hostname) == "offline":
                offline_after = n
                break
        assert offline_after is not None, [a for a in store.agents() if a.agent_id == victim.hostname]
        assert after_kill[0].unreachable == (victim.hostname,)  # still expected, so it was waited for
        assert [t.to_status.value for t in store.transitions(victim.hostname)] == ["stale", "offline"]
        assert status_of(store, workers[0].hostname) == "online"
    reporter.close()


def new_discovery_slot(before: CollectionSummary, cycle: CollectionSummary) -> bool:
    """Whether `cycle` began a discovery slot (`before` being in the last one): the first cycle of each asks every
    worker, expected or not, and waits the whole timeout."""
    return discovery_slot(DISCOVERY_EVERY_S, cycle.started_at) != discovery_slot(DISCOVERY_EVERY_S, before.started_at)


def test_a_hung_worker_costs_a_cycle_only_its_timeout(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path
) -> None:
    broker = fast_settings.require("broker_url")
    env = {"VSMMON_TEST_HANG_METRICS": "1"}
    with (
        fleet_workers(broker, ["healthy"], tmp_path) as [healthy],
        fleet_workers(broker, ["wedged"], tmp_path, extra_env=env) as [wedged],
    ):
        beat = Beat(pipeline, store)
        first = beat.cycle()  # everyone answers once: the wedged worker is expected from now on
        assert wedged.hostname in {a.agent_id for a in store.agents()}
        waited = beat.cycle()
        assert status_of(store, wedged.hostname) == "online"  # one collection missed is no miss
        beat.cycle()
        assert status_of(store, wedged.hostname) == "stale"
        beat.cycle()  # past 2 intervals unseen (2.5 with the tolerance) it is offline: at the third cycle
        assert status_of(store, wedged.hostname) == "offline", [c.started_at for c in beat.done]
        after = beat.cycle()  # offline, so no longer waited for
        if new_discovery_slot(beat.done[-2], after):  # it asked everyone, so it waited the whole timeout: take the next
            previous, after = after, beat.cycle()
            assert not new_discovery_slot(previous, after)
    assert waited.unreachable == (wedged.hostname,)
    # the cycle waited for the wedged worker, but no longer than its timeout (plus the cycle's own work)
    assert TIMEOUT_S * 1000 <= waited.duration_ms < (TIMEOUT_S + 0.5) * 1000, waited
    assert wedged.hostname not in after.unreachable
    assert after.duration_ms < TIMEOUT_S * 1000, after
    assert first.duration_ms < (TIMEOUT_S + 1.0) * 1000  # a discovery cycle waits the whole timeout
    assert status_of(store, healthy.hostname) == "online"
