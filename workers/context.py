"""Per-process resources of a worker: built lazily in the process that uses them, never across a fork."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery, Task

from vsmmon import names
from vsmmon.alerts.book import AlertBook
from vsmmon.collect.broker import QueueProbe, queue_probe
from vsmmon.collect.staging import RedisStaging, Staging
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.base import Store
from vsmmon.store.postgres import PostgresStore, create_engine
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.tasks.failures import FailureBook


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerContext:
    """What a task body needs: settings, the store, the staging buffer, probes, the clock."""

    settings: Settings
    store: Store
    staging: Staging
    realtime: RealtimeWindow
    queue_probes: list[tuple[QueueProbe, tuple[str, ...]]] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow
    records: AlertRecords | None = None  # alerting history (PostgreSQL)

    @property
    def alert_book(self) -> AlertBook:
        """The alert manager's ledger (Redis)."""
        return AlertBook(self.realtime.client)

    @property
    def failure_book(self) -> FailureBook:
        """The last failures of each task name across the fleet (Redis)."""
        return FailureBook(self.realtime.client)

    @property
    def alert_records(self) -> AlertRecords:
        if self.records is None:
            raise RuntimeError("this worker context has no alert records")
        return self.records


ContextFactory = Callable[[Settings], WorkerContext]


def build_context(settings: Settings) -> WorkerContext:
    engine = create_engine(settings.sqlalchemy_url(), pool_size=2)
    redis_url, horizon_s = settings.require("redis_url"), settings.buffer_horizon_s
    seen_horizon_s = max(horizon_s, math.ceil(3 * settings.collect_interval_s))  # collect looks back 2 intervals
    return WorkerContext(
        settings=settings,
        store=PostgresStore(engine),
        records=AlertRecords(engine),
        staging=RedisStaging.from_url(redis_url, horizon_s=horizon_s, seen_horizon_s=seen_horizon_s),
        realtime=RealtimeWindow(redis.Redis.from_url(settings.require("redis_url")), settings.collect_interval_s),
        queue_probes=queue_probes(settings),
    )


def queue_probes(settings: Settings) -> list[tuple[QueueProbe, tuple[str, ...]]]:
    """A probe per broker: the pipeline's queues on its broker, the watched ones on the fleet's."""
    broker = settings.require("broker_url")
    fleet = settings.fleet_broker_url or broker
    if fleet == broker:
        return [(queue_probe(broker), tuple(dict.fromkeys([*names.QUEUES, *settings.watched_queues])))]
    return [(queue_probe(broker), names.QUEUES), (queue_probe(fleet), settings.watched_queues)]


class PipelineApp(Celery):
    """A Celery app that carries vsmmon's settings and builds each process's `WorkerContext`."""

    def __init__(self, settings: Settings, context_factory: ContextFactory, **kwargs: Any) -> None:
        super().__init__("vsmmon", set_as_current=False, **kwargs)
        self.vsm_settings = settings
        self._context_factory = context_factory
        self._contexts: dict[int, WorkerContext] = {}

    def context(self) -> WorkerContext:
        """This process's context, built on first use after any fork."""
        pid = os.getpid()
        if pid not in self._contexts:
            self._contexts.clear()  # inherited from a parent: its connections are not ours to use
            self._contexts[pid] = self._context_factory(self.vsm_settings)
        return self._contexts[pid]


class VsmTask(Task[Any, Any]):
    """Base of the pipeline's tasks: `self.ctx` is this process's `WorkerContext`."""

    @property
    def ctx(self) -> WorkerContext:
        app = self.app
        assert isinstance(app, PipelineApp)
        return app.context()
