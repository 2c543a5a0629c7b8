"""Child processes of `vsmmon up`: own session, tied to the parent's life, stopped in order."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_PR_SET_PDEATHSIG = 1


def _child_setup(uid: int | None, gid: int | None) -> Callable[[], None]:
    def setup() -> None:
        os.umask(0o077)  # what a child creates (a server's files, a log, beat's schedule) is its owner's alone
        if gid is not None:
            os.setgroups([])  # root's groups would make group bits apply instead of "others"
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        # after any setuid (which would clear it): the child gets SIGTERM when its parent dies,
        # so a `vsmmon up` killed with SIGKILL leaves no server behind
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return setup


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    log_path: Path | None = None
    run_as: str | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0

    def start(self) -> None:
        uid = gid = None
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            uid, gid = entry.pw_uid, entry.pw_gid
        out = _open_log(self.log_path) if self.log_path else subprocess.DEVNULL
        try:
            self.popen = subprocess.Popen(
                list(self.argv),
                env=dict(self.env) if self.env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which stops us in order
                preexec_fn=_child_setup(uid, gid),  # noqa: PLW1509 (the supervisor is single-threaded here)
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float) -> None:
        """Ask the process to stop; kill its whole process group if it has not within `timeout_s`."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, self.stop_signal)
            try:
                self.popen.wait(timeout=max(0.1, timeout_s))
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        # pool children of a worker share its process group: make sure none outlives it
        _signal_group(self.popen.pid, signal.SIGKILL)


def _open_log(path: Path) -> BinaryIO:
    """`path` for appending, owner-only (an older vsmmon's 0644 log too), never through a symbolic link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_all(children: Sequence[Child], deadline_s: float) -> None:
    """Stop children in the given order, sharing one deadline between them."""
    end = time.monotonic() + deadline_s
    for child in children:
        child.stop(timeout_s=(end - time.monotonic()) / 1.5)
