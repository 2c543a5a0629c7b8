"""A monitored Celery app as a user would have one: a few tasks and the vsmmon plugin in one line.

Started by tests as real worker subprocesses: `celery -A tests.fleet_app worker …`, with the broker
from VSMMON_TEST_FLEET_BROKER_URL.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery, Task, shared_task
from celery.worker.request import Request

import vsmmon.agent

BROKER_URL = os.environ.get("VSMMON_TEST_FLEET_BROKER_URL", "memory://")
app = Celery("fleet", broker=BROKER_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_queue="fleet",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_direct=os.environ.get("VSMMON_TEST_WORKER_DIRECT") == "1",  # a user's own direct-queue consumer
)
# failures keep their arguments only where a test opts in, as an operator would
vsmmon.agent.install(app, version="fleet 1.0", failure_arguments=os.environ.get("VSMMON_TEST_FAILURE_ARGUMENTS") == "1")


@app.task(name="fleet.ok")
def ok() -> str:
    return "ok"


@app.task(name="fleet.fail")
def fail() -> None:
    raise ValueError("this task always fails")


@app.task(name="fleet.retry_once", bind=True, max_retries=1, default_retry_delay=0)
def retry_once(self: object) -> str:
    if getattr(self, "request").retries == 0:  # noqa: B009
        raise getattr(self, "retry")()  # noqa: B009
    return "retried"


class CustomTask(Task):  # type: ignore[misc]
    """A base class of the user's own, as `@app.task(base=...)` commonly gives (derived from celery.Task,
    not from `app.Task`)."""


class AcceptedRequest(Request):
    """A request class of the user's own whose hook must keep running with the plugin installed."""

    def on_accepted(self, pid: Any, time_accepted: Any) -> None:
        redis.Redis.from_url(BROKER_URL).incr("fleet:accepted")
        super().on_accepted(pid, time_accepted)


class OwnRequestTask(Task):  # type: ignore[misc]
    Request = AcceptedRequest


@app.task(name="fleet.custom_base", base=CustomTask)
def custom_base() -> str:
    return "custom"


@app.task(name="fleet.custom_base_fail", base=CustomTask)
def custom_base_fail() -> None:
    raise RuntimeError("a failing task of a custom base class")


@app.task(name="fleet.own_request", base=OwnRequestTask)
def own_request() -> str:
    return "hooked"


@app.task(name="fleet.bound", bind=True)
def bound(self: Any) -> str:
    return str(self.request.id)


@shared_task(name="fleet.shared")
def shared() -> str:
    return "shared"


@app.task(name="fleet.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


if os.environ.get("VSMMON_TEST_HANG_METRICS") == "1":
    # a worker that answers once, then wedges: its consumer thread blocks in vsm_metrics
    from celery.worker.control import inspect_command

    from vsmmon.agent.plugin import vsm_metrics as real_vsm_metrics

    answered = []

    @inspect_command(name="vsm_metrics")
    def wedging_metrics(state: object, **kwargs: object) -> dict[str, object]:
        if answered:
            time.sleep(10)
        answered.append(True)
        return real_vsm_metrics(state, **kwargs)


WORK_TASKS = 20
"""`fleet.work.t00` .. `t19`: a fleet of task names, each run as slow and as failing as a test asks."""


def _work(name: str) -> Any:
    @app.task(name=name)
    def work(sleep_s: float = 0.0, fail: bool = False) -> str:
        time.sleep(sleep_s)
        if fail:
            raise LookupError(f"{name} failed on purpose")
        return name

    return work


WORK = [_work(f"fleet.work.t{i:02d}") for i in range(WORK_TASKS)]
