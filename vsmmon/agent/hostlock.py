"""One reporter per host: the worker process holding a lock file reads the host's metrics.

Workers on the same host race for a non-blocking `flock`; the holder keeps it for its life, and
when it dies the kernel releases it and another worker takes over on its next call.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

LOCK_NAME = "vsmmon-host-reporter.lock"


_by_path: dict[Path, HostReporterLock] = {}


class HostReporterLock:
    """Try-acquire on every call; once held, held until the process exits."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(tempfile.gettempdir()) / LOCK_NAME
        self._fd: int | None = None
        self._pid = 0

    @classmethod
    def for_broker(cls, broker_url: str) -> HostReporterLock:
        """One reporter per host and broker: fleets on different brokers each get their host's figures.

        The same object for the same broker within a process: flock locks belong to an open file, so a
        second object in the holder's own process would find the lock taken.
        """
        digest = hashlib.sha256(broker_url.encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"vsmmon-host-reporter-{digest}.lock"
        return _by_path.setdefault(path, cls(path))

    def held(self) -> bool:
        """True when this process is the host's reporter (acquiring the lock if it is free)."""
        if self._fd is not None and self._pid == os.getpid():
            return True
        self._fd = None  # a forked child does not hold its parent's lock
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd, self._pid = fd, os.getpid()
        return True
