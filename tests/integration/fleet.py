"""Real worker subprocesses of the monitored test fleet (`tests/fleet_app.py`).

With `VSMMON_TEST_FLEET_PYTHON` set (`make matrix`), the workers run under that interpreter, from a copy of
the app in a folder of their own: they import the vsmmon installed there, not this checkout.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from tests.integration.conftest import poll

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FleetWorker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def kill(self) -> None:
        """SIGKILL the whole worker, pool children included: it sends no goodbye."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM to the worker, as `docker stop` or a scale-in sends it: a warm shutdown, and a goodbye."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def control_app(broker_url: str) -> Celery:
    app = Celery("fleet-control", broker=broker_url, set_as_current=False)
    app.conf.update(accept_content=["json"], task_serializer="json", broker_connection_retry_on_startup=True)
    return app


@contextmanager
def fleet_workers(
    broker_url: str,
    names: list[str],
    log_dir: Path,
    *,
    concurrency: int = 2,
    queues: str = "fleet",
    pool: str = "prefork",
    extra_env: dict[str, str] | None = None,
    loglevel: str = "INFO",
) -> Iterator[list[FleetWorker]]:
    """Start one `celery worker` subprocess per name and wait until each answers a ping."""
    python, module, cwd = sys.executable, "tests.fleet_app", ROOT
    log_dir.mkdir(parents=True, exist_ok=True)
    if other := os.environ.get("VSMMON_TEST_FLEET_PYTHON"):  # the plugin as another venv installed it
        python, module, cwd = other, "fleet_app", log_dir / "app"
        cwd.mkdir(exist_ok=True)
        shutil.copy(ROOT / "tests" / "fleet_app.py", cwd / "fleet_app.py")
    env = {**os.environ, "VSMMON_TEST_FLEET_BROKER_URL": broker_url, "PYTHONPATH": str(cwd), **(extra_env or {})}
    workers: list[FleetWorker] = []
    try:
        for name in names:
            log = log_dir / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        python, "-m", "celery", "-A", module, "worker",
                        f"--hostname={name}@%h", f"--concurrency={concurrency}", f"--pool={pool}",
                        f"--queues={queues}", "--without-gossip", "--without-mingle", f"--loglevel={loglevel}",
                    ],
                    cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            workers.append(FleetWorker(name, process, log))
        control = control_app(broker_url)
        expected = {w.hostname for w in workers}

        def all_answer() -> bool:
            for w in workers:
                if w.process.poll() is not None:
                    raise AssertionError(f"{w.name} exited: {w.log.read_text()[-2000:]}")
            replies = control.control.ping(timeout=0.5) or []
            return expected <= {name for reply in replies for name in reply}

        poll(all_answer, deadline_s=60, what=f"workers {sorted(expected)} to answer a ping", every_s=0.2)
        yield workers
    finally:
        for w in workers:
            if w.process.poll() is None:
                os.killpg(w.process.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(w.process.pid, signal.SIGKILL)
                w.process.wait(timeout=5)
