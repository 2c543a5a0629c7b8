"""What the HTTP routes use, built when the app starts and released when it stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from fastapi import Request

from vsmmon.collect.admission import Admitter
from vsmmon.collect.staging import RedisStaging, Staging
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.base import Store
from vsmmon.store.realtime import RealtimeWindow


@dataclass
class Resources:
    settings: Settings
    store: Store
    staging: Staging
    redis: redis.Redis
    realtime: RealtimeWindow
    records: AlertRecords | None = None  # the alerting history (PostgreSQL); None: the history API answers 503
    admitter: Admitter | None = None  # new pushed agent ids per minute; None: not limited (in-memory test apps)
    release: Callable[[], None] | None = None  # frees what the store holds (its engine's connections)

    def close(self) -> None:
        self.redis.close()
        if self.release is not None:
            self.release()


def default_resources(settings: Settings) -> Resources:
    from vsmmon.store.postgres import PostgresStore, create_engine

    client = redis.Redis.from_url(settings.require("redis_url"), socket_timeout=2, socket_connect_timeout=2)
    engine = create_engine(settings.sqlalchemy_url(), pool_size=4)
    return Resources(
        settings=settings,
        store=PostgresStore(engine),
        staging=RedisStaging(client),
        redis=client,
        realtime=RealtimeWindow(client, settings.collect_interval_s),
        records=AlertRecords(engine),
        admitter=Admitter(client, settings.push_new_agents_per_min),
        release=engine.dispose,
    )


def resources(request: Request) -> Resources:
    """FastAPI dependency: the app's resources."""
    built: Resources = request.app.state.resources
    return built
