"""Retention on real PostgreSQL: partitions ahead of time, whole partitions dropped, small tables trimmed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.integration.conftest import poll
from tests.store_contract import make_collection
from vsmmon import names
from vsmmon.collect.registry import evaluate
from vsmmon.config import Settings
from vsmmon.models import Collection
from vsmmon.store.postgres import PostgresStore
from vsmmon.store.retention import floor_to, policies
from vsmmon.workers.context import PipelineApp

# a fixed past time, so these partitions never meet the ones the live pipeline uses
NOW = datetime(2024, 3, 10, 12, 30, tzinfo=UTC)
AHEAD = timedelta(hours=3)
DAY = timedelta(days=1)
INSERT_HEALTH = sa.text(
    "INSERT INTO health_assessments (at, scope, subject, score, status) VALUES (:at, 'system', 'S1', 0.9, 'healthy')"
)
INSERT_ALERT = sa.text(
    "INSERT INTO alerts (id, fingerprint, type, severity, target, status, started_at, updated_at, resolved_at) "
    "VALUES (:id, :fp, 'test', 'warning', 'x', :status, :at, :at, :res)"
)


def partitions(store: PostgresStore, table: str) -> set[str]:
    query = sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(query, {"t": table})}


def count(store: PostgresStore, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_partitions_exist_ahead_of_time_and_expired_ones_are_dropped(store: PostgresStore, settings: Settings) -> None:
    rules = policies(settings)
    store.maintain(rules, NOW, AHEAD)
    hours = [f"metric_samples_p{(floor_to(NOW, 'hour') + timedelta(hours=i)):%Y%m%d%H}" for i in range(4)]
    assert set(hours) <= partitions(store, "metric_samples")
    assert "health_assessments_p20240310" in partitions(store, "health_assessments")
    assert store.maintain(rules, NOW, AHEAD).created == ()  # idempotent

    collection = make_collection(NOW)  # lands in the 12:00 partition
    store.save_collection(collection, NOW)
    assert count(store, "SELECT count(*) FROM metric_samples_p2024031012") == collection.sample_count

    later = NOW + timedelta(hours=2, minutes=1)  # 12:00-13:00 is now wholly older than 1 h
    report = store.maintain(rules, later, AHEAD)
    assert "metric_samples_p2024031012" in report.dropped
    assert "metric_samples_p2024031012" not in partitions(store, "metric_samples")
    assert "metric_samples_p2024031013" in partitions(store, "metric_samples")  # younger: kept
    assert count(store, "SELECT count(*) FROM metric_samples WHERE ts < '2024-03-10 13:00+00'") == 0
    assert store.get_collection(collection.id).sample_count == collection.sample_count  # metadata kept (7 d)


def test_samples_a_window_close_still_needs_outlive_their_retention(store: PostgresStore, settings: Settings) -> None:
    rules = policies(settings)
    store.maintain(rules, NOW, AHEAD)
    collection = make_collection(NOW)  # 12:30, claimed, its window not yet closed (the close task is behind)
    store.save_collection(collection, NOW)
    assert store.aggregate_collection(collection.id, NOW) is True
    later = NOW + timedelta(hours=2, minutes=1)
    assert "metric_samples_p2024031012" not in store.maintain(rules, later, AHEAD).dropped
    assert count(store, "SELECT count(*) FROM metric_samples") == collection.sample_count
    closed = store.close_windows(NOW + timedelta(minutes=5), later)
    assert (closed.collections, closed.windows) == (1, 1)
    [rollup] = store.rollups("celery@w0", "cpu_percent", 300)
    assert (rollup.count, rollup.sum) == (1, 12.5)  # computed from the samples retention kept
    assert "metric_samples_p2024031012" in store.maintain(rules, later, AHEAD).dropped  # no longer needed


def test_rows_the_default_partition_caught_move_into_a_new_partition(store: PostgresStore, settings: Settings) -> None:
    early = NOW - timedelta(days=400)  # no partition for it: the default one catches it
    store.save_collection(make_collection(early), early)
    assert count(store, "SELECT count(*) FROM metric_samples_default") == 4
    store.maintain(policies(settings), early, timedelta(0))  # creates the hour's partition
    assert count(store, "SELECT count(*) FROM metric_samples_default") == 0
    assert count(store, f"SELECT count(*) FROM metric_samples_p{early:%Y%m%d%H}") == 4


def test_health_past_7_days_and_alerts_past_30_days_go_younger_ones_stay(
    store: PostgresStore, settings: Settings
) -> None:
    rules = policies(settings)
    for days in (10, 8, 6, 1):  # partitions exist for the days these rows fall in
        store.maintain(rules, NOW - days * DAY, timedelta(0))
    with store.engine.begin() as conn:
        for days in (10, 8, 6, 1):
            conn.execute(INSERT_HEALTH, {"at": NOW - days * DAY})
        for days, status in ((31, "resolved"), (29, "resolved"), (40, "firing")):
            resolved_at = NOW - days * DAY if status == "resolved" else None
            row = {"id": uuid.uuid4(), "fp": f"fp-{days}", "status": status, "at": NOW - days * DAY, "res": resolved_at}
            conn.execute(INSERT_ALERT, row)
    store.maintain(rules, NOW, AHEAD)
    with store.engine.connect() as conn:
        ages = sorted(
            round((NOW - at).total_seconds() / 86400)
            for (at,) in conn.execute(sa.text("SELECT at FROM health_assessments"))
        )
        left = {row[0] for row in conn.execute(sa.text("SELECT fingerprint FROM alerts"))}
    assert ages == [1, 6]
    assert left == {"fp-29", "fp-40"}  # resolved 31 d ago: gone; resolved 29 d ago and still firing: kept


def test_the_maintenance_run_forgets_an_agent_offline_past_its_retention_and_keeps_a_recent_one(
    pipeline_app: PipelineApp, running_worker: Any, store: PostgresStore, settings: Settings
) -> None:
    now, minute = datetime.now(UTC), timedelta(minutes=1)
    long_ago = now - timedelta(seconds=settings.retention_agents_s) - timedelta(hours=1)
    lately = now - timedelta(hours=2)  # offline since, far past PURGE_AFTER_S, well within the retention
    both = make_collection(long_ago, agents=2)
    store.update_registry(both)
    store.apply_transitions(evaluate(store.agent_records(), long_ago + minute))  # both offline
    store.update_registry(Collection(uuid.uuid4(), lately, 12.0, both.reports[1:]))  # celery@w1 came back...
    store.apply_transitions(evaluate(store.agent_records(), lately))
    store.apply_transitions(evaluate(store.agent_records(), lately + minute))  # ...and went again
    assert {(a.agent_id, a.status) for a in store.agents()} == {("celery@w0", "offline"), ("celery@w1", "offline")}

    def trimmed() -> list[str] | None:
        ids = [a.agent_id for a in store.agents()]
        return ids if ids != ["celery@w0", "celery@w1"] else None

    pipeline_app.send_task(names.MAINTENANCE_RUN)
    assert poll(trimmed, deadline_s=30, what="the maintenance run to trim the registry") == ["celery@w1"]
