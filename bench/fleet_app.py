"""The monitored app of P1: a Celery app with one no-op task, with or without the vsmmon plugin.

Started as `python -m celery -A bench.fleet_app worker …` in a subprocess. The environment decides
the broker (`VSMMON_BENCH_REDIS_URL`) and whether `vsmmon.agent.install` runs
(`VSMMON_BENCH_PLUGIN=1`); without the plugin, `vsmmon.agent.plugin` is never imported in the process.
"""

from __future__ import annotations

import os
import time
from functools import cache

import redis
from celery import Celery

NOOP_TASK = "bench.noop"
COUNTER_KEY = "bench:noop:count"
MARKS_KEY = "bench:noop:marks"
DONE_KEY = "bench:noop:done"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def create_app(broker_url: str, *, plugin: bool) -> Celery:
    """A JSON-only app whose `bench.noop` counts its runs in Redis and stamps the marks it reaches."""
    app = Celery("vsmmon_bench_fleet", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name=NOOP_TASK, ignore_result=True)
    def noop(first_mark: int, last_mark: int) -> None:
        """Count one run; stamp the monotonic clock when the count reaches a mark."""
        count = _redis(broker_url).incr(COUNTER_KEY)
        if count in (first_mark, last_mark):
            _redis(broker_url).hset(MARKS_KEY, str(count), repr(time.monotonic()))
        if count == last_mark:
            _redis(broker_url).rpush(DONE_KEY, "1")

    if plugin:
        from vsmmon.agent import install

        install(app)
    return app


@cache
def _redis(url: str) -> redis.Redis:
    # One client per pool process: the main worker process never calls it, so no fork shares one.
    return redis.Redis.from_url(url)


def __getattr__(name: str) -> Celery:
    # `celery -A bench.fleet_app` looks up `app`: build it from the environment only then.
    if name in {"app", "celery"}:
        built = create_app(
            os.environ.get("VSMMON_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
            plugin=os.environ.get("VSMMON_BENCH_PLUGIN") == "1",
        )
        globals()[name] = built
        return built
    raise AttributeError(name)
