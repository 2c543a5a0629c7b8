"""The monitored app of the measures: a Celery app with one no-op task, with or without the vsmmon plugin.

Its workers run as `python -m celery -A bench.fleet_app worker …` and its producers as
`python -m bench.fleet_app [load …]`, each in a subprocess. The environment decides the broker
(`VSMMON_BENCH_REDIS_URL`), whether `vsmmon.agent.install` runs (`VSMMON_BENCH_PLUGIN=1`), as it would
in a monitored app (without the plugin, `vsmmon.agent.plugin` is never imported), and whether workers
and clients send task events for a monitor like Flower (`VSMMON_BENCH_EVENTS=1`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from functools import cache

import redis
from celery import Celery

NOOP_TASK = "bench.noop"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
LOAD_TICK_S = 0.005


def create_app(broker_url: str, *, plugin: bool, events: bool = False) -> Celery:
    """A JSON-only app whose `bench.noop` counts its runs in a Redis key the caller names."""
    app = Celery("vsmmon_bench_fleet", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=events,
        task_send_sent_event=events,
    )
    if plugin:
        from vsmmon.agent import install

        install(app, version="bench fleet")

    @app.task(name=NOOP_TASK, ignore_result=True)
    def noop(counter: str) -> None:
        """Count one run in `counter`."""
        _redis(broker_url).incr(counter)

    return app


def publish(app: Celery, queue: str, tasks: int, counter: str) -> None:
    """Send `tasks` no-op tasks to `queue` through one producer, as a monitored app's client would."""
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task(NOOP_TASK, args=(counter,), queue=queue, producer=producer)


def load(app: Celery, queue: str, rate: float, seconds: float, counter: str) -> int:
    """Send no-op tasks to `queue` at `rate` per second for `seconds`, evenly; return how many were sent."""
    sent, started = 0, time.monotonic()
    with app.producer_or_acquire() as producer:
        while (elapsed := time.monotonic() - started) < seconds:
            for _ in range(int(elapsed * rate) - sent):
                app.send_task(NOOP_TASK, args=(counter,), queue=queue, producer=producer)
                sent += 1
            time.sleep(LOAD_TICK_S)
    return sent


@cache
def _redis(url: str) -> redis.Redis:
    # One client per pool process: the main worker process never calls it, so no fork shares one.
    return redis.Redis.from_url(url)


def from_environment() -> Celery:
    """The app as the environment of the worker or producer subprocess configures it."""
    return create_app(
        os.environ.get("VSMMON_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        plugin=os.environ.get("VSMMON_BENCH_PLUGIN") == "1",
        events=os.environ.get("VSMMON_BENCH_EVENTS") == "1",
    )


def __getattr__(name: str) -> Celery:
    # `celery -A bench.fleet_app` looks up `app`: build it from the environment only then.
    if name in {"app", "celery"}:
        built = from_environment()
        globals()[name] = built
        return built
    raise AttributeError(name)


def main(argv: Sequence[str], lines: Iterable[str]) -> None:
    """`python -m bench.fleet_app`: for each `QUEUE TASKS COUNTER` line, pre-fill QUEUE, then say `ok`.

    `python -m bench.fleet_app load QUEUE RATE SECONDS COUNTER`: publish at a fixed rate, then say `sent N`.
    """
    app = from_environment()
    if argv[:1] == ["load"]:
        queue, rate, seconds, counter = argv[1:]
        print(f"sent {load(app, queue, float(rate), float(seconds), counter)}", flush=True)
        return
    for line in lines:
        queue, tasks, counter = line.split()
        publish(app, queue, int(tasks), counter)
        print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:], sys.stdin)
