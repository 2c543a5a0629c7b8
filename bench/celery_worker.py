"""Subprocesses in their own process groups, always stopped: workers, producers, and any other command."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO

from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0
PING_TIMEOUT_S = 1.0


class Spawned:
    """A subprocess started in a new session; its output goes to a temporary log."""

    def __init__(
        self, proc: subprocess.Popen[bytes], name: str, log: IO[bytes], stop_signal: signal.Signals = signal.SIGTERM
    ) -> None:
        self.proc = proc
        self.name = name
        self._log = log
        self._stop_signal = stop_signal
        self._terminated = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        """Raise with the process's log when it has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def output(self) -> str:
        """Everything the process wrote so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def terminate(self) -> None:
        """Send the stop signal without waiting; `stop` waits."""
        if self.proc.poll() is None and not self._terminated:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, self._stop_signal)  # the whole group: a worker's pool children too
            self._terminated = True

    def stop(self) -> None:
        """The stop signal, then SIGKILL of whatever is left in its process group after a grace period."""
        self.terminate()
        if self.proc.poll() is None:
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_S)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # children that outlived their parent
        self.proc.wait()


@contextmanager
def spawned(
    name: str, command: Sequence[str], env: dict[str, str], stop_signal: signal.Signals = signal.SIGTERM
) -> Iterator[Spawned]:
    """Run `command` from the repository root with `env` added; stop its whole process group on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Spawned(proc, name, log, stop_signal)
        try:
            yield child
        finally:
            child.stop()


class Worker:
    """One `celery worker` subprocess; `hostname` is the node name it answers broadcasts with."""

    def __init__(self, process: Spawned, hostname: str) -> None:
        self.process = process
        self.hostname = hostname

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        self.process.check_alive()

    def log_tail(self, chars: int = 3000) -> str:
        return self.process.log_tail(chars)


def wait_all_ready(app: Celery, workers: Sequence[Worker], timeout_s: float) -> None:
    """Block until every worker has answered a ping; fail when one dies or the deadline passes."""
    waiting = {w.hostname: w for w in workers}
    deadline = time.monotonic() + timeout_s
    while waiting:
        for worker in waiting.values():
            worker.check_alive()
        if time.monotonic() > deadline:
            names = ", ".join(sorted(waiting))
            raise TimeoutError(
                f"{names} did not answer within {timeout_s} s:\n{next(iter(waiting.values())).log_tail()}"
            )
        replies = app.control.ping(destination=sorted(waiting), timeout=PING_TIMEOUT_S, limit=len(waiting))
        for reply in replies or []:
            for hostname in reply:
                waiting.pop(hostname, None)


@contextmanager
def running_worker(
    name: str,
    env: dict[str, str],
    *,
    queue: str,
    concurrency: int = 1,
    pool: str = "prefork",
    events: bool = False,
    wrapper: Sequence[str] = (),
) -> Iterator[Worker]:
    """Start `celery -A bench.fleet_app worker` consuming `queue`, run by `wrapper` if any; stop it on exit."""
    hostname = f"{name}@{socket.gethostname()}"
    command = [
        *wrapper, sys.executable, "-m", "celery", "-A", "bench.fleet_app", "worker",
        "--pool", pool, "--concurrency", str(concurrency), "--queues", queue,
        "--hostname", hostname, "--without-mingle", "--without-gossip", "--loglevel", "WARNING",
    ]  # fmt: skip
    if events:
        command.append("--task-events")
    # No shutdown at all: a measure never needs a worker to finish anything, and the Redis db is flushed
    with spawned(f"worker {hostname}", command, env, signal.SIGKILL) as process:
        yield Worker(process, hostname)


@contextmanager
def running_fleet(
    names: Sequence[str],
    env: dict[str, str],
    app: Celery,
    *,
    queue: str,
    ready_timeout_s: float,
    concurrency: int = 1,
    pool: str = "prefork",
    events: bool = False,
) -> Iterator[list[Worker]]:
    """Start one worker per name, all consuming `queue`, and wait until every one answers a ping."""
    with ExitStack() as stack:
        workers = [
            stack.enter_context(
                running_worker(name, env, queue=queue, concurrency=concurrency, pool=pool, events=events)
            )
            for name in names
        ]
        try:
            wait_all_ready(app, workers, ready_timeout_s)
            yield workers
        finally:
            for worker in workers:  # all at once: the stack then waits for each in turn
                worker.process.terminate()


class Producer:
    """A `python -m bench.fleet_app` subprocess that pre-fills queues on request."""

    def __init__(self, proc: subprocess.Popen[str], log: IO[bytes]) -> None:
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("the producer needs pipes for stdin and stdout")
        self._stdin, self._stdout = proc.stdin, proc.stdout
        self._log = log

    def request(self, queue: str, tasks: int, counter: str) -> None:
        """Ask for `tasks` no-op tasks counting into `counter` on `queue`; `wait` says when they are sent."""
        self._stdin.write(f"{queue} {tasks} {counter}\n")
        self._stdin.flush()

    def wait(self, timeout_s: float) -> None:
        """Return once the oldest unanswered request's tasks are all in the broker."""
        ready, _, _ = select.select([self._stdout], [], [], timeout_s)
        answer = self._stdout.readline().strip() if ready else ""
        if answer != "ok":
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"producer did not publish its tasks ({answer!r}):\n{log}")


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
