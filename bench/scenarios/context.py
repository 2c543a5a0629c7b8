"""What a scenario's body drives: its monitored fleet (real Celery worker subprocesses with the plugin),
task producers, `vsmmon simulate`, the fault's time, waits that print progress, and extra checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from datetime import UTC, datetime

import psutil

from bench.celery_worker import Spawned, Worker, spawned, wait_all_ready
from bench.scenarios.fleet_app import SHORT_TASK, create_app
from bench.scenarios.pipeline import COLLECT_INTERVAL_S, Observer, Pipeline, hostname
from bench.scenarios.truth import Check

PROGRESS_EVERY_S = 15.0
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0
FLEET_MODULE = "bench.scenarios.fleet_app"


class Run:
    """One scenario in progress on its own pipeline."""

    def __init__(self, name: str, pipeline: Pipeline, observer: Observer, stack: ExitStack, queue: str) -> None:
        self.name, self.pipeline, self.observer, self.queue = name, pipeline, observer, queue
        self._stack = stack
        self.app = create_app(pipeline.broker_url)
        stack.callback(self.app.close)
        self.workers: dict[str, Worker] = {}
        self.fault_at: datetime | None = None
        self.fault: str = ""
        self.checks: list[Check] = []
        self.notes: list[str] = []
        self.extra: dict[str, str] = {}  # figures a scenario reports beside the verdict (e.g. the backlog)
        self.backlog: list[tuple[float, int]] = []  # (seconds since the start, messages waiting), each second
        self.phase = "warm-up"
        self.started = time.monotonic()
        self._next_print = self.started + PROGRESS_EVERY_S
        self._extra: list[Spawned] = []

    # -- the fleet ------------------------------------------------------------------------------------
    def start_workers(self, names: list[str], concurrency: int = 2) -> None:
        """Start one plugin worker per name on the scenario's queue, and wait until all answer a ping."""
        started = [self._start(name, concurrency) for name in names]
        wait_all_ready(self.app, started, READY_TIMEOUT_S)

    def _start(self, name: str, concurrency: int) -> Worker:
        host = hostname(name)
        command = [
            sys.executable, "-m", "celery", "-A", FLEET_MODULE, "worker", "--hostname", host, "--pool", "prefork",
            "--concurrency", str(concurrency), "-Q", self.queue, "--without-mingle", "--without-gossip",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        env = {"VSMMON_SCENARIO_FLEET_BROKER_URL": self.pipeline.broker_url}
        process = self._stack.enter_context(spawned(f"{self.name} {host}", command, env))
        worker = Worker(process, host)
        self.workers[name] = worker
        return worker

    def sigterm(self, name: str) -> int:
        """SIGTERM to the worker's main process (a clean stop: it finishes its tasks, says goodbye); its exit code."""
        proc = self.workers[name].process.proc
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.notes.append(f"{name} did not stop within {EXIT_TIMEOUT_S:.0f} s of SIGTERM")
            return -1

    def sigkill(self, name: str) -> None:
        """SIGKILL to the worker's whole process group (main and pool processes), as the OOM killer or a crash."""
        process = self.workers[name].process
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.proc.wait()

    def restart(self, name: str, concurrency: int = 2) -> None:
        self.start_workers([name], concurrency)

    def send(self, task: str, args: tuple[object, ...] = (), n: int = 1) -> None:
        with self.app.producer_or_acquire() as producer:
            for _ in range(n):
                self.app.send_task(task, args=args, queue=self.queue, producer=producer)

    @contextmanager
    def load(self, rate: Callable[[float], float], task: str = SHORT_TASK,
             args: tuple[object, ...] = ()) -> Iterator[None]:  # fmt: skip
        """Send `task` in the background at `rate(seconds since start)` per second, until the block ends."""
        stop = threading.Event()

        def produce() -> None:
            sent, owed, last = 0, 0.0, time.monotonic()
            with self.app.producer_or_acquire() as producer:
                while not stop.is_set():
                    now = time.monotonic()
                    owed += rate(now - self.started) * (now - last)
                    last = now
                    while owed >= 1:
                        self.app.send_task(task, args=args, queue=self.queue, producer=producer)
                        owed, sent = owed - 1, sent + 1
                    stop.wait(0.05)

        thread = threading.Thread(target=produce, name=f"{self.name}-load", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)

    def trickle(self, per_s: float) -> AbstractContextManager[None]:
        """A steady `per_s` short tasks a second."""
        return self.load(lambda _t: per_s)

    # -- pushed agents ----------------------------------------------------------------------------------
    def simulate(self, agents: int, profile: str) -> Spawned:
        """`vsmmon simulate` pushing to the pipeline's HTTP service every collection interval, until stopped."""
        if self.pipeline.http_url is None:
            raise RuntimeError(f"{self.name}: pushed agents need the HTTP service")
        command = [sys.executable, "-m", "vsmmon", "simulate", "--agents", str(agents), "--profile", profile,
                   "--interval", f"{COLLECT_INTERVAL_S:g}", "--url", self.pipeline.http_url]  # fmt: skip
        env = {**self.pipeline.env}
        process = self._stack.enter_context(spawned(f"{self.name} simulate", command, env, signal.SIGKILL))
        self._extra.append(process)
        return process

    # -- time, truth and progress --------------------------------------------------------------------------
    def inject(self, what: str) -> None:
        """The fault (or the planned change) happens now: times to detect count from here."""
        self.fault_at, self.fault = datetime.now(UTC), what
        self.phase = what
        self.say(f"-- {what}")

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, passed, detail))
        self.say(f"check {name}: {'ok' if passed else 'FAILED'} ({detail})")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait(self, seconds: float, phase: str | None = None) -> None:
        """Let `seconds` pass, sampling the backlog each second and printing progress every 15 s."""
        if phase:
            self.phase = phase
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.pipeline.check_alive()
            if self.queue:
                self.backlog.append((self.elapsed(), self.observer.backlog(self.queue)))
            if time.monotonic() >= self._next_print:
                self.progress()
                self._next_print += PROGRESS_EVERY_S
            time.sleep(min(1.0, left))

    def progress(self) -> None:
        health = self.observer.health()
        states = " ".join(f"{k}:{v[0]}" for k, v in sorted(health.get("states", {}).items()))
        viability = health.get("viability")
        shown = "?" if viability is None else f"{viability:.2f}"
        fired = self.observer.alerts()
        last = "; ".join(a.describe() for a in fired[-3:])
        backlog = f" | backlog {self.backlog[-1][1]}" if self.backlog else ""
        self.say(f"{self.phase} | {states} viability {shown}{backlog} | alerts fired {len(fired)}"
                 + (f" (latest: {last})" if last else ""))  # fmt: skip

    def say(self, text: str) -> None:
        print(f"[{self.name} {self.elapsed():5.0f} s] {text}", flush=True)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of these processes and their children so far (exited pool processes included)."""
    total = 0.0
    for pid in pids:
        with suppress(psutil.Error):
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
    return total
