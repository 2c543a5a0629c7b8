"""A Celery worker of `bench.fleet_app` in its own subprocess and process group, always stopped."""

from __future__ import annotations

import os
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


class WorkerProcess:
    """One `celery worker` subprocess; `hostname` is the node name it answers broadcasts with."""

    def __init__(self, proc: subprocess.Popen[bytes], hostname: str, log: IO[bytes]) -> None:
        self.proc = proc
        self.hostname = hostname
        self._log = log

    def check_alive(self) -> None:
        """Raise with the worker's log when it has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.hostname} exited with {self.proc.returncode}:\n{self.log_tail()}")

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
def running_worker(name: str, env: dict[str, str], *, concurrency: int, queue: str) -> Iterator[WorkerProcess]:
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
        worker = WorkerProcess(proc, hostname, log)
        try:
            yield worker
        finally:
            worker.stop()
