"""The plugin's canary in a real prefork worker: sent to one worker's direct queue, run by that worker."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path
from typing import Any

import psutil
from celery.utils import worker_direct

from tests.integration.conftest import poll
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.config import Settings
from vsmmon.names import CANARY_TASK


def canary_result(log: Path, nonce: str) -> dict[str, Any] | None:
    """The canary's return value, as the worker logged its success (at debug level: the audit's lines stay out
    of a worker's log at INFO), once it is there."""
    match = re.search(r"succeeded in [0-9.e-]+s: (\{[^\n]*'nonce': '" + nonce + r"'[^\n]*\})", log.read_text())
    return ast.literal_eval(match.group(1)) if match else None


def test_a_canary_sent_to_a_workers_direct_queue_is_answered_by_that_worker(
    settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    broker = settings.require("broker_url")
    with fleet_workers(broker, ["canary-a", "canary-b"], tmp_path, loglevel="DEBUG") as workers:
        app = control_app(broker)
        target, other = workers
        direct = worker_direct(target.hostname)
        nonce = uuid.uuid4().hex
        # the audit has the worker consume its direct queue only while it probes
        with app.connection_for_write() as conn:
            direct.bind(conn.default_channel).declare()
        added = app.control.add_consumer(direct.name, direct.exchange.name, "direct", direct.routing_key,
                                         destination=[target.hostname], reply=True, timeout=5)  # fmt: skip
        assert added == [{target.hostname: {"ok": f"add consumer {direct.name}"}}]
        app.send_task(CANARY_TASK, args=(nonce,), exchange=direct.exchange.name, routing_key=direct.routing_key)

        reply = poll(lambda: canary_result(target.log, nonce), deadline_s=30, what=f"{target.name} to run the canary")
        pool = {child.pid for child in psutil.Process(target.process.pid).children()}
        assert reply["nonce"] == nonce
        assert reply["hostname"] == target.hostname
        assert reply["pid"] in pool  # a pool process of that worker ran it
        assert reply["received_at"] > 0
        assert canary_result(other.log, nonce) is None  # the other worker, on the same queues, never saw it
