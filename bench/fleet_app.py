"""The monitored app of P1: a Celery app with one no-op task, with or without the vsmmon plugin.

Its worker runs as `python -m celery -A bench.fleet_app worker …` and its producer as
`python -m bench.fleet_app`, each in a subprocess. The environment decides
the broker (`VSMMON_BENCH_REDIS_URL`) and whether `vsmmon.agent.install` runs (`VSMMON_BENCH_PLUGIN=1`),
as it would in a monitored app; without the plugin, `vsmmon.agent.plugin` is never imported.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
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
    if plugin:
        from vsmmon.agent import install

        install(app, version="bench fleet")

    @app.task(name=NOOP_TASK, ignore_result=True)
    def noop(first_mark: int, last_mark: int) -> None:
        """Count one run; stamp the monotonic clock (system-wide on Linux) when the count hits a mark."""
        count = _redis(broker_url).incr(COUNTER_KEY)
        if count in (first_mark, last_mark):
            _redis(broker_url).hset(MARKS_KEY, str(count), repr(time.monotonic()))
        if count == last_mark:
            _redis(broker_url).rpush(DONE_KEY, "1")

    return app


def publish(app: Celery, queue: str, tasks: int, first_mark: int) -> None:
    """Send `tasks` no-op tasks to `queue` through one producer, as a monitored app's client would."""
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task(NOOP_TASK, args=(first_mark, tasks), queue=queue, producer=producer)


@cache
def _redis(url: str) -> redis.Redis:
    # One client per pool process: the main worker process never calls it, so no fork shares one.
    return redis.Redis.from_url(url)


def from_environment() -> Celery:
    """The app as the environment of the worker or producer subprocess configures it."""
    return create_app(
        os.environ.get("VSMMON_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        plugin=os.environ.get("VSMMON_BENCH_PLUGIN") == "1",
    )


def __getattr__(name: str) -> Celery:
    # `celery -A bench.fleet_app` looks up `app`: build it from the environment only then.
    if name in {"app", "celery"}:
        built = from_environment()
        globals()[name] = built
        return built
    raise AttributeError(name)


def main(lines: Iterable[str]) -> None:
    """`python -m bench.fleet_app`: for each `QUEUE TASKS FIRST_MARK` line, pre-fill QUEUE, then say `ok`."""
    app = from_environment()
    for line in lines:
        queue, tasks, first_mark = line.split()
        publish(app, queue, int(tasks), int(first_mark))
        print("ok", flush=True)


if __name__ == "__main__":
    main(sys.stdin)
