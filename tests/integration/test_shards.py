"""Sharded cycles on a real worker, Redis and PostgreSQL: a large cycle is split into shard tasks, each agent is
stored once by the shard that owns it, and no shard judges another shard's agents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from tests.integration.cycles import Beat
from vsmmon import names
from vsmmon.collect.shards import owner
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, AgentStatus
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

SENSORS = [f"sensor-{i:02d}" for i in range(24)]
PER_SHARD = 4  # 24 pushed reports (and the worker) past 4 a shard: 8 shards


@pytest.fixture
def sharded(fast_settings: Settings, clean_services: None) -> Iterator[PipelineApp]:
    app = create_app(fast_settings.model_copy(update={"cycle_shard_agents": PER_SHARD}))
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="WARNING",
                      queues=list(names.QUEUES), shutdown_timeout=20):  # fmt: skip
        yield app


def push(settings: Settings, agents: list[str], value: float = 1.0) -> None:
    staging = RedisStaging.from_url(settings.require("redis_url"))
    staging.push([AgentReport(a, AgentKind.SENSOR, "h", {"temp_c": value}) for a in agents])


def stored_by_shard(store: PostgresStore) -> list[tuple[str, int, int]]:
    query = sa.text(
        "SELECT s.agent_id, c.shard, c.shards FROM metric_samples s JOIN collections c ON c.id = s.collection_id "
        "WHERE s.agent_id LIKE 'sensor-%' ORDER BY s.agent_id"
    )
    with store.engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(query)]


def test_a_large_cycle_is_split_into_shards_and_each_agent_is_stored_once_by_its_own(
    sharded: PipelineApp, store: PostgresStore
) -> None:
    settings = sharded.vsm_settings
    beat = Beat(sharded, store, before_each=lambda: push(settings, SENSORS))
    summary = beat.cycle()

    assert (summary.shards, summary.shards_stored) == (8, 8)
    rows = stored_by_shard(store)
    assert [a for a, _, _ in rows] == SENSORS  # every sensor once: no shard drained another's slots
    assert all(shard == owner(AgentKind.SENSOR, a, 8) for a, shard, _ in rows)
    assert len({shard for _, shard, _ in rows}) > 4  # spread over the shards, not all in one
    asked = [a for a in store.agent_records() if a.kind is AgentKind.CELERY_WORKER]
    assert [a.agent_id for a in asked] == [sharded_worker_name(store)]
    assert summary.agent_count == len(store.agent_records())  # the cycle's summary counts every shard
    with store.engine.connect() as conn:
        parts = conn.execute(sa.text("SELECT shard, shards, aggregated_at FROM collections ORDER BY shard")).all()
    assert [(p[0], p[1]) for p in parts] == [(k, 8) for k in range(8)]
    assert all(p[2] is not None for p in parts)


def sharded_worker_name(store: PostgresStore) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT id FROM agents WHERE kind = 'celery_worker'")).scalar_one())


def test_no_shard_judges_another_shards_agents_and_a_silent_one_is_lost_in_its_own(
    sharded: PipelineApp, store: PostgresStore
) -> None:
    settings = sharded.vsm_settings
    silent = next(a for a in SENSORS if owner(AgentKind.SENSOR, a, 8) not in (0, 1))
    pushing = list(SENSORS)
    beat = Beat(sharded, store, before_each=lambda: push(settings, pushing))
    for _ in range(2):
        beat.cycle()
    pushing.remove(silent)
    statuses = []
    for _ in range(4):  # stale at the second cycle it misses, offline at the third (collect/registry.py)
        beat.cycle()
        statuses.append({r.agent_id: r.status for r in store.agent_records()}[silent])

    assert statuses[:3] == [AgentStatus.ONLINE, AgentStatus.STALE, AgentStatus.OFFLINE]
    with store.engine.connect() as conn:
        changed = conn.execute(sa.text("SELECT agent_id, to_status FROM agent_transitions ORDER BY at")).all()
    assert [(r[0], r[1]) for r in changed] == [(silent, "stale"), (silent, "offline")]  # no one else, ever
    records = {r.agent_id: r for r in store.agent_records()}
    assert all(records[a].status is AgentStatus.ONLINE for a in pushing)
