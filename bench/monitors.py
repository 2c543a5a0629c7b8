"""What P8 runs beside the fleet and how it reads it: CPU time of process trees, Flower, vsmmon's collector loop."""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psutil

from bench.celery_worker import Spawned, spawned

READY_TIMEOUT_S = 60.0
EVENT_LINE = re.compile(r"^flower_events_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$", re.MULTILINE)


def cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds of each process, its live descendants and its waited-for children."""
    total = 0.0
    for pid in pids:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            with suppress(psutil.NoSuchProcess):  # one that exited since: its time is in its parent's children_*
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    return total


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Flower:
    """A running `celery flower` and its HTTP API."""

    def __init__(self, process: Spawned, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            body: bytes = response.read()
            return body

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.process.check_alive()
            with suppress(OSError):
                if self.get("/healthcheck") == b"OK":
                    return
            time.sleep(0.2)
        raise TimeoutError(f"flower did not answer within {READY_TIMEOUT_S} s:\n{self.process.log_tail()}")

    def events(self, event_type: str) -> float:
        """How many events of `event_type` Flower counted so far, from its Prometheus `/metrics`."""
        text = self.get("/metrics").decode()
        return sum(float(m["value"]) for m in EVENT_LINE.finditer(text) if f'type="{event_type}"' in m["labels"])

    def tasks(self, state: str, limit: int) -> dict[str, Any]:
        """Tasks in `state` Flower keeps, from its API (`/api/tasks`), by task id."""
        tasks: dict[str, Any] = json.loads(self.get(f"/api/tasks?state={state}&limit={limit}"))
        return tasks


@contextmanager
def running_flower(env: dict[str, str]) -> Iterator[Flower]:
    """`celery -A bench.fleet_app flower` on a free local port, its API open; stopped on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "celery", "-A", "bench.fleet_app", "flower",
        f"--port={port}", "--address=127.0.0.1", "--logging=warning",
    ]  # fmt: skip
    env = {**env, "FLOWER_UNAUTHENTICATED_API": "true"}
    with spawned("flower", command, env, signal.SIGKILL) as process:  # nothing of its state is needed after
        flower = Flower(process, port)
        flower.wait_ready()
        yield flower


class CollectorLoop:
    """A running `python -m bench.collector_loop` and what its cycles reported."""

    def __init__(self, process: Spawned) -> None:
        self.process = process

    def cycles(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.process.output().splitlines() if line.startswith("{")]

    def wait_first_cycle(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.cycles():
            self.process.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the collector loop did not cycle:\n{self.process.log_tail()}")
            time.sleep(0.1)


@contextmanager
def running_collector_loop(env: dict[str, str], every_s: float, hostnames: Sequence[str]) -> Iterator[CollectorLoop]:
    """vsmmon's collection cycle every `every_s` over `hostnames`, in a subprocess; stopped on exit."""
    command = [sys.executable, "-m", "bench.collector_loop", str(every_s), *hostnames]
    with spawned("collector loop", command, env) as process:
        loop = CollectorLoop(process)
        loop.wait_first_cycle()
        yield loop
