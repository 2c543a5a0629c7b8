"""What the HTTP routes use, built when the app starts and released when it stops."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from fastapi import Request

from vsmmon.collect.staging import RedisStaging, Staging
from vsmmon.config import Settings
from vsmmon.store.base import Store
from vsmmon.store.realtime import RealtimeWindow


@dataclass
class Resources:
    settings: Settings
    store: Store
    staging: Staging
    redis: redis.Redis
    realtime: RealtimeWindow

    def close(self) -> None:
        self.redis.close()
        engine = getattr(self.store, "engine", None)
        if engine is not None:
            engine.dispose()


def default_resources(settings: Settings) -> Resources:
    from vsmmon.store.postgres import PostgresStore, create_engine

    client = redis.Redis.from_url(settings.require("redis_url"), socket_timeout=2, socket_connect_timeout=2)
    return Resources(
        settings=settings,
        store=PostgresStore(create_engine(settings.sqlalchemy_url(), pool_size=4)),
        staging=RedisStaging(client),
        redis=client,
        realtime=RealtimeWindow(client, settings.collect_interval_s),
    )


def resources(request: Request) -> Resources:
    """FastAPI dependency: the app's resources."""
    built: Resources = request.app.state.resources
    return built
