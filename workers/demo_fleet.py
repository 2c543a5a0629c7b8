"""A demo monitored fleet for the compose file and demos: a Celery app with the vsmmon plugin, and a load.

celery -A vsmmon.workers.demo_fleet worker -Q demo        # a monitored worker
python -m vsmmon.workers.demo_fleet --rate 5              # publish ~5 demo tasks/s, forever
"""

from __future__ import annotations

import argparse
import os
import random
import time

from celery import Celery

import vsmmon.agent

app = Celery("demo", set_as_current=False)
app.conf.update(
    broker_url=os.environ.get("DEMO_BROKER_URL") or os.environ.get("VSMMON_BROKER_URL", "redis://127.0.0.1:6379/0"),
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_queue="demo",
    broker_connection_retry_on_startup=True,
)
vsmmon.agent.install(app, version="demo 1.0")


@app.task(name="demo.work")
def work(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="demo.flaky")
def flaky(failure_rate: float) -> None:
    if random.random() < failure_rate:
        raise RuntimeError("demo failure")


def main() -> None:
    parser = argparse.ArgumentParser(description="publish demo load to the demo fleet")
    parser.add_argument("--rate", type=float, default=5.0, help="tasks per second")
    args = parser.parse_args()
    while True:
        app.send_task("demo.work", args=(random.uniform(0.01, 0.2),), queue="demo")
        if random.random() < 0.2:
            app.send_task("demo.flaky", args=(0.1,), queue="demo")
        time.sleep(1 / args.rate)


if __name__ == "__main__":
    main()
