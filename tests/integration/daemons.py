"""Debian's Prometheus and Alertmanager as test servers: started on a free loopback port, polled until ready."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.integration.conftest import poll
from vsmmon.local.embedded import free_port


@contextmanager
def serving(argv: Callable[[int], Sequence[str]], log_path: Path, what: str) -> Iterator[str]:
    """Run `argv(port)` until the block ends, once its `/-/ready` answers 200; yields its base URL."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(argv(port)), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            poll(ready, deadline_s=30, what=f"{what} to be ready")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)
