"""Subprocesses of `bench.fleet_app` in their own process groups, always stopped: a worker, a producer."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0


class Worker:
    """One `celery worker` subprocess; `hostname` is the node name it answers broadcasts with."""

    def __init__(self, proc: subprocess.Popen[bytes], hostname: str, log: IO[bytes]) -> None:
        self.proc = proc
        self.hostname = hostname
        self._log = log

    def check_alive(self) -> None:
        """Raise with the worker's log when it has exited."""
        if self.proc.poll() is not None:
            code = self.proc.returncode
            raise RuntimeError(f"worker {self.hostname} exited with {code}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:]

    def wait_ready(self, app: Celery, timeout_s: float) -> None:
        """Block until the worker answers a ping."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise TimeoutError(f"worker {self.hostname} did not answer within {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Warm shutdown of the main process, then SIGKILL of whatever is left in its process group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_S)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children that outlived their parent
        self.proc.wait()


@contextmanager
def running_worker(name: str, env: dict[str, str], *, concurrency: int, queue: str) -> Iterator[Worker]:
    """Start `celery -A bench.fleet_app worker` (prefork) consuming `queue`; stop it on exit."""
    hostname = f"{name}@{socket.gethostname()}"
    command = [
        sys.executable, "-m", "celery", "-A", "bench.fleet_app", "worker",
        "--pool", "prefork", "--concurrency", str(concurrency), "--queues", queue,
        "--hostname", hostname, "--without-mingle", "--without-gossip", "--loglevel", "WARNING",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(proc, hostname, log)
        try:
            yield worker
        finally:
            worker.stop()


class Producer:
    """A `python -m bench.fleet_app` subprocess that pre-fills queues on request."""

    def __init__(self, proc: subprocess.Popen[str], log: IO[bytes]) -> None:
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("the producer needs pipes for stdin and stdout")
        self._stdin, self._stdout = proc.stdin, proc.stdout
        self._log = log

    def publish(self, queue: str, tasks: int, first_mark: int, timeout_s: float) -> None:
        """Send `tasks` no-op tasks to `queue`; return once all are in the broker."""
        self._stdin.write(f"{queue} {tasks} {first_mark}\n")
        self._stdin.flush()
        ready, _, _ = select.select([self._stdout], [], [], timeout_s)
        answer = self._stdout.readline().strip() if ready else ""
        if answer != "ok":
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"producer did not publish {tasks} tasks to {queue} ({answer!r}):\n{log}")


@contextmanager
def running_producer(env: dict[str, str]) -> Iterator[Producer]:
    """Start a producer configured like the worker of the same `env`; stop it on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fleet_app"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            yield Producer(proc, log)
        finally:
            with suppress(OSError, subprocess.TimeoutExpired):
                proc.communicate(timeout=STOP_GRACE_S)  # closes stdin, which ends the producer's loop
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
