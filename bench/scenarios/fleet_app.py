"""The monitored app of the scenarios: a Celery app with the vsmmon plugin, as a user would have one.

Its workers run as `python -m celery -A bench.scenarios.fleet_app worker …` subprocesses, with the broker
from `VSMMON_SCENARIO_FLEET_BROKER_URL`; the harness sends tasks through `create_app(broker_url)`.

Tasks: `scen.short` (a few milliseconds of work), `scen.sleep(seconds)` (holds a pool slot) and
`scen.leak(mb)`, which keeps `mb` MiB in a module-level list of the pool process that runs it: a leak.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import vsmmon.agent

SHORT_TASK = "scen.short"
SLEEP_TASK = "scen.sleep"
LEAK_TASK = "scen.leak"
MIB = 1024 * 1024

_leaked: list[bytearray] = []  # grows in the pool process that runs `scen.leak`, never freed


def create_app(broker_url: str) -> Celery:
    """A JSON-only app with late acks and prefetch 1 (the backlog stays in the broker, where it is measured)."""
    app = Celery("vsmmon_scenarios_fleet", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    vsmmon.agent.install(app, version="scenarios fleet 1.0")

    @app.task(name=SHORT_TASK, ignore_result=True)
    def short() -> None:
        time.sleep(0.01)

    @app.task(name=SLEEP_TASK, ignore_result=True)
    def sleep(seconds: float) -> None:
        time.sleep(float(seconds))

    @app.task(name=LEAK_TASK, ignore_result=True)
    def leak(mb: float) -> int:
        chunk = bytearray(int(float(mb) * MIB))
        chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page: resident, not only reserved
        _leaked.append(chunk)
        return len(_leaked)

    return app


def __getattr__(name: str) -> Celery:
    # `celery -A bench.scenarios.fleet_app` looks up `app`: built from the environment only then.
    if name in {"app", "celery"}:
        built = create_app(os.environ["VSMMON_SCENARIO_FLEET_BROKER_URL"])
        globals()[name] = built
        return built
    raise AttributeError(name)
