"""What P8 runs beside the fleet and how it reads it: CPU time of process trees, Flower, the whole vsmmon
pipeline (`vsmmon up` on the bench's Redis and a throwaway database) and its PostgreSQL backends."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.celery_worker import Spawned, spawned

READY_TIMEOUT_S = 60.0
EVENT_LINE = re.compile(r"^flower_events_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$", re.MULTILINE)


def cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds of each process and its live descendants, each with its waited-for children's
    (a pool process a worker replaced and reaped is in that worker's `children_*`, at any depth of the tree)."""
    total = 0.0
    for pid in pids:
        process = psutil.Process(pid)
        for member in (process, *process.children(recursive=True)):
            with suppress(psutil.NoSuchProcess):  # one that exited since: its time is in its parent's children_*
                times = member.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
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


class Pipeline:
    """A running `vsmmon up` (its three workers, beat and HTTP service) and the database it stores into."""

    def __init__(self, process: Spawned, database_url: str, http_url: str) -> None:
        self.process = process
        self.database = make_url(database_url).database or ""
        self.engine = sa.create_engine(database_url, pool_size=1)
        self.http_url = http_url

    def backends_cpu_s(self) -> float:
        """CPU seconds of the PostgreSQL backends serving its database (those alive now: the pipeline's pooled
        connections; one that closed in between is not counted)."""
        total = 0.0
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or ())
            if line.startswith("postgres: ") and f" {self.database} " in f"{line} ":
                with suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    def online(self, hostnames: Sequence[str]) -> int:
        """How many of `hostnames` the registry has online."""
        query = sa.text("SELECT count(*) FROM agents WHERE id = ANY(:ids) AND status = 'online'")
        with self.engine.connect() as conn:
            return int(conn.execute(query, {"ids": list(hostnames)}).scalar_one())

    def collections(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(aggregated_at) FROM collections")).scalar_one())

    def wait_watching(self, hostnames: Sequence[str]) -> None:
        """Until the registry has every worker of the fleet online (found by discovery, then collected)."""
        deadline = time.monotonic() + 2 * READY_TIMEOUT_S
        while True:
            self.process.check_alive()
            with suppress(sa.exc.SQLAlchemyError):  # before its migrations ran
                if self.online(hostnames) == len(hostnames):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"vsmmon up did not register the fleet:\n{self.process.log_tail()}")
            time.sleep(0.5)


@contextmanager
def running_pipeline(env: dict[str, str], database_url: str, every_s: float) -> Iterator[Pipeline]:
    """`vsmmon up` on `env`'s Redis (VSMMON_BENCH_REDIS_URL) and `database_url`, collecting every `every_s`;
    stopped (SIGTERM, its parts with it) on exit."""
    with tempfile.TemporaryDirectory(prefix="vsmmon-p8-") as data:
        port = free_port()
        env = {**{k: v for k, v in env.items() if not k.startswith("VSMMON_") or k.startswith("VSMMON_BENCH")},
               "VSMMON_BROKER_URL": env["VSMMON_BENCH_REDIS_URL"], "VSMMON_DATABASE_URL": database_url,
               "VSMMON_DATA_DIR": data, "VSMMON_HTTP_PORT": str(port), "VSMMON_API_TOKEN": secrets.token_urlsafe(16),
               "VSMMON_COLLECT_INTERVAL_S": str(every_s), "VSMMON_LOG_LEVEL": "WARNING"}  # fmt: skip
        with spawned("vsmmon up", [sys.executable, "-m", "vsmmon", "up"], env) as process:
            pipeline = Pipeline(process, database_url, f"http://127.0.0.1:{port}")
            try:
                yield pipeline
            finally:
                pipeline.engine.dispose()
