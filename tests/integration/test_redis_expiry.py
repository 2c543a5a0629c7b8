"""Every Redis key vsmmon writes expires: after a collection, a health check, an analysis and an alert that
reaches S5, no key but kombu's own is left without a TTL. Real Redis, PostgreSQL and Celery worker."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

import pytest
import redis

from tests.integration.conftest import poll
from tests.integration.fleet import control_app
from vsmmon import names
from vsmmon.config import Settings
from vsmmon.models import CollectionSummary
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.context import PipelineApp

pytestmark = pytest.mark.timeout(180)

KOMBU_KEYS = {
    "_kombu.binding.*": "kombu's exchange bindings, a set per exchange: declared once, rewritten on every start",
    "_kombu.binding_permanent.*": "kombu's record of the queues declared without an expiry (all of them here)",
    "_kombu.binding_deadlines": "kombu's index of queue expiries (`x-expires`): kombu sweeps it itself",
    "unacked": "kombu's messages delivered and not yet acknowledged: emptied as they are (visibility timeout)",
    "unacked_index": "the same, by delivery time: kombu's redelivery index",
    "orphan": "a queue of the monitored fleet (a list of its messages): the fleet's, not vsmmon's",
    "vsm.*": "the pipeline's queues (lists of task messages), kombu's: a queue must outlive any quiet spell",
}
"""Keys without an expiry on purpose: kombu's own, which vsmmon neither writes nor may expire."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # a fleet queue nobody consumes is algedonic pain: an alert at the first cycle, critical, so S5 decides on it
    return settings.model_copy(update={"watch_queues": "orphan", "alert_pending_s": 0.0})


def test_every_key_but_kombus_has_an_expiry_after_a_cycle_a_health_check_and_an_alert(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, settings: Settings
) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    producer = control_app(settings.require("broker_url"))
    for _ in range(3):
        producer.send_task("fleet.ok", queue="orphan")
    pipeline_app.send_task(names.COLLECT_RUN)
    poll(lambda: _aggregated(store), deadline_s=30, what="an aggregated collection")
    pipeline_app.send_task(names.HEALTH_ASSESS).get(timeout=30)
    pipeline_app.send_task(names.ANALYSIS_RUN).get(timeout=60)
    records = AlertRecords(store.engine)
    decision = poll(lambda: next(iter(records.decisions()), None), deadline_s=30, what="S5's decision on the alert")
    assert decision.decision == "notify"
    poll(lambda: client.exists(names.ALERTS_COOLDOWN_KEY), deadline_s=15, what="the alert's delivery")

    keys = {key.decode(errors="replace"): client.ttl(key) for key in client.scan_iter(count=1000)}
    for written in (names.WORKERS_KEY, names.ALERTS_STATE_KEY, names.ALERTS_COOLDOWN_KEY, names.HEALTH_PREVIOUS_KEY,
                    names.EXHAUSTION_KEY, f"{names.REALTIME_PREFIX}{running_worker.hostname}\x00_cycles"):  # fmt: skip
        assert written in keys, (written, sorted(keys))  # the test saw what it is about
    forever = {key for key, ttl in keys.items() if ttl == -1 and not any(fnmatch(key, p) for p in KOMBU_KEYS)}
    assert not forever, sorted(forever)
    assert keys[names.ALERTS_STATE_KEY] > 6 * 86400  # the ledger lasts while the pipeline runs
    client.close()


def _aggregated(store: PostgresStore) -> CollectionSummary | None:
    latest = store.latest_collection()
    return latest if latest is not None and latest.aggregated_at is not None else None
