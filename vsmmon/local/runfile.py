"""`DATA_DIR/run.json`: how a running `vsmmon up` is reached (URLs with their passwords, the API token),
so `vsmmon status` finds it; only its owner can read it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from pydantic import SecretStr

from vsmmon.config import Settings
from vsmmon.errors import AlreadyRunning
from vsmmon.local._sandbox import write_private

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunInfo:
    pid: int
    broker_url: str
    database_url: str
    redis_url: str
    http_url: str
    api_token: str


def write(data_dir: Path, info: RunInfo) -> None:
    """Write run.json owner-only (0600) from its first byte: its URLs hold the embedded servers' passwords."""
    write_private(data_dir / RUN_FILE, json.dumps(asdict(info), indent=2))


def read(data_dir: Path) -> RunInfo | None:
    """The run file of a live `vsmmon up`, or None (no file, unreadable, or its process is gone)."""
    try:
        info = RunInfo(**json.loads((data_dir / RUN_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if psutil.pid_exists(info.pid) and info.pid != os.getpid() else None


def remove(data_dir: Path) -> None:
    (data_dir / RUN_FILE).unlink(missing_ok=True)


def claim(data_dir: Path) -> None:
    """Raise if another live `vsmmon up` owns `data_dir`.

    Raises:
        AlreadyRunning: it does.
    """
    running = read(data_dir)
    if running is not None:
        raise AlreadyRunning(running.pid, str(data_dir))


def resolve(settings: Settings) -> Settings:
    """Fill unset URLs from a running embedded `vsmmon up` in the same DATA_DIR, if there is one."""
    if settings.database_url and settings.broker_url and settings.api_token:
        return settings
    info = read(settings.data_dir.resolve())
    if info is None:
        return settings
    return settings.model_copy(
        update={
            "database_url": settings.database_url or info.database_url,
            "broker_url": settings.broker_url or info.broker_url,
            "redis_url": settings.redis_url or info.redis_url,
            "api_token": settings.api_token or SecretStr(info.api_token),
        }
    )
