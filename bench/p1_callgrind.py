"""P1's instruction counter: a Celery worker run under Valgrind's callgrind, counted window by window.

The worker starts uninstrumented (`--instr-atstart=no`: Valgrind's core only, so start-up takes seconds,
not a minute) and is switched on once it is warm. Each window then zeroes the counters of the main
process and of every pool child, lets the caller run tasks, and dumps them: the window's cost is the sum
of the dumped `totals:` lines. Commands reach the processes through Valgrind's gdbserver (`vgdb`, the
tool `callgrind_control` wraps) on a private FIFO prefix; `--trace-children=yes` gives forked pool
children a gdbserver of their own, and `--trace-children-skip=*` leaves exec'd helpers (`uname`) alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import psutil

VALGRIND = "valgrind"
VGDB = "vgdb"
COMMAND_TIMEOUT_S = 120.0
DUMP_TIMEOUT_S = 60.0
TOTALS = re.compile(rb"^totals:\s*(\d+)\s*$", re.MULTILINE)
"""The last line of a callgrind dump: the file is complete once it is there."""


def require_valgrind() -> None:
    """Fail with the fix when Valgrind is not installed (`make bench` installs it)."""
    missing = [tool for tool in (VALGRIND, VGDB) if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"P1 needs Valgrind ({', '.join(missing)} not found): apt-get install -y valgrind")


def callgrind_prefix(out_dir: Path) -> list[str]:
    """The command that runs a program under callgrind, uninstrumented until switched on, files in `out_dir`."""
    return [
        VALGRIND, "--tool=callgrind", "--quiet", "--instr-atstart=no",
        "--trace-children=yes", "--trace-children-skip=*",
        f"--vgdb-prefix={out_dir / 'vgdb'}", f"--callgrind-out-file={out_dir / 'callgrind.out.%p'}",
    ]  # fmt: skip


class Callgrind:
    """The processes of one callgrind-run worker: its main process and its pool children."""

    def __init__(self, main_pid: int, out_dir: Path, children: int) -> None:
        self.out_dir = out_dir
        self.pids = [main_pid, *self._children(main_pid, children)]
        self._parts = dict.fromkeys(self.pids, 0)

    @staticmethod
    def _children(main_pid: int, expected: int, timeout_s: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while True:
            pids = sorted(child.pid for child in psutil.Process(main_pid).children())
            if len(pids) == expected:
                return pids
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {main_pid} has children {pids}, expected {expected}")
            time.sleep(0.1)

    def command(self, *words: str) -> None:
        """Send one callgrind monitor command (`instrumentation on`, `zero`, `dump`) to every process."""
        for pid in self.pids:
            done = subprocess.run(
                [VGDB, f"--vgdb-prefix={self.out_dir / 'vgdb'}", f"--pid={pid}", *words],
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"vgdb {' '.join(words)} to {pid} failed: {done.stderr.decode(errors='replace')}")

    def switch_on(self) -> None:
        self.command("instrumentation", "on")

    def zero(self) -> None:
        self.command("zero")

    def dump(self) -> list[int]:
        """Dump every process's counters since the last zero or dump; return their instruction counts."""
        self.command("dump")
        counts = []
        for pid in self.pids:
            self._parts[pid] += 1
            counts.append(self._read(self.out_dir / f"callgrind.out.{pid}.{self._parts[pid]}"))
        return counts

    @staticmethod
    def _read(path: Path) -> int:
        deadline = time.monotonic() + DUMP_TIMEOUT_S
        while True:
            match = TOTALS.search(path.read_bytes()) if path.exists() else None
            if match:
                return int(match.group(1))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no callgrind dump in {path}")
            time.sleep(0.05)
