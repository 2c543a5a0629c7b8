"""The embedded servers of `vsmmon up`, as another local user sees them (issue #20, items 1 and 8).

One real `vsmmon up` for the module, started as an operator starts it (with VSMMON_API_TOKEN in its
environment), its data directory inside a 0700 directory of its own. Checks made as another user run as
`nobody` (through runuser) when the tests run as root, else as ourselves without the passwords.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis

from tests.integration.conftest import poll
from tests.integration.test_cli_up import environment, healthy
from vsmmon.errors import EmbeddedServerError
from vsmmon.local.embedded import EmbeddedPostgres, free_port, server_home

pytestmark = pytest.mark.slow
TOKEN = "security-test-token-0f3c"
AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="the servers run as system users only when started as root")


@dataclass(frozen=True)
class Running:
    data_dir: Path
    home: Path  # where the servers keep their data
    run: dict[str, str]  # run.json
    parent_modes: dict[Path, int]  # of every parent of data_dir, before `up` ran
    servers: dict[str, psutil.Process]  # "postgres", "redis": the server processes

    @property
    def redis_port(self) -> int:
        return int(urlsplit(self.run["broker_url"]).port or 0)

    @property
    def pg_port(self) -> int:
        return int(urlsplit(self.run["database_url"]).port or 0)


def modes(paths: Iterator[Path] | list[Path]) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in paths}


def server_processes(up: psutil.Process) -> dict[str, psutil.Process] | None:
    found = {}
    for child in up.children():
        name = child.name()
        if name == "postgres" or name.startswith("redis-server"):
            found["postgres" if name == "postgres" else "redis"] = child
    return found if len(found) == 2 else None


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("embedded-security")
    private = base / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    data_dir = private / "data"
    before = modes(list(data_dir.parents))
    port = free_port()
    env = environment(VSMMON_DATA_DIR=str(data_dir), VSMMON_HTTP_PORT=str(port), VSMMON_API_TOKEN=TOKEN)
    log = base / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "vsmmon", "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        poll(lambda: up.poll() is not None or healthy(f"http://127.0.0.1:{port}/healthz"), deadline_s=90,
             what="GET /healthz", every_s=0.2)  # fmt: skip
        assert up.poll() is None, log.read_text()
        servers = poll(lambda: server_processes(psutil.Process(up.pid)), deadline_s=5, what="the two servers")
        run = json.loads((data_dir / "run.json").read_text())
        yield Running(data_dir.resolve(), server_home(data_dir), run, before, servers)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=15)
        except subprocess.TimeoutExpired:
            up.kill()
        if AS_ROOT and server_home(data_dir) != data_dir.resolve():
            shutil.rmtree(server_home(data_dir), ignore_errors=True)


def as_another_user(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`argv` run as `nobody` (as ourselves when not root), with none of our passwords around."""
    command = ["runuser", "-u", "nobody", "--", *argv] if AS_ROOT else argv
    return subprocess.run(command, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}, capture_output=True,
                          text=True, timeout=30, check=False, cwd="/")  # fmt: skip


def redis_cli() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        pytest.skip("redis-cli is not installed")
    return found


def test_redis_refuses_a_local_user_without_the_password(running: Running) -> None:
    for command in (["ping"], ["keys", "*"], ["lpush", "vsm.s3.control", "forged"], ["shutdown", "nosave"]):
        result = as_another_user([redis_cli(), "-h", "127.0.0.1", "-p", str(running.redis_port), *command])
        assert "NOAUTH" in result.stdout + result.stderr, (command, result)
    assert redis.Redis.from_url(running.run["broker_url"]).ping()  # and the shutdown did not happen


def test_redis_has_no_config_debug_or_module_command_even_with_the_password(running: Running) -> None:
    client = redis.Redis.from_url(running.run["broker_url"])
    assert client.ping()
    for command in (("CONFIG", "SET", "dir", "/tmp"), ("CONFIG", "GET", "dir"), ("DEBUG", "SLEEP", "0"),
                    ("MODULE", "LIST")):  # fmt: skip
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command(*command)
    client.close()


@needs_root
def test_both_servers_run_unprivileged_on_loopback_with_no_password_on_their_command_line(running: Running) -> None:
    for name, proc in running.servers.items():
        assert proc.username() != "root", name
    secrets = [urlsplit(running.run[k]).password for k in ("broker_url", "database_url")]
    assert all(secrets)
    for name, proc in running.servers.items():
        listening = [c.laddr for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening, name
        assert {a.ip for a in listening} == {"127.0.0.1"}, (name, listening)
        command_line = " ".join(proc.cmdline())
        assert not any(s in command_line for s in secrets if s), name


def test_postgres_refuses_local_users_without_the_password(running: Running) -> None:
    for role in ("postgres", urlsplit(running.run["database_url"]).username or ""):
        for password, refusal in ((None, "no password supplied"), ("guess", "password authentication failed")):
            argv = ["psql", "-X", "-w", "-h", "127.0.0.1", "-p", str(running.pg_port), "-U", role, "-d", "vsmmon",
                    "-c", "select 1"]  # fmt: skip
            result = as_another_user(argv, {"PGPASSWORD": password} if password else None)
            assert result.returncode != 0, (role, password, result.stdout)
            assert refusal in result.stderr, (role, password, result.stderr)
    hba = (running.home / "postgres" / "pg_hba.conf").read_text().splitlines()
    methods = {line.split()[-1] for line in hba if line.strip() and not line.lstrip().startswith("#")}
    assert methods == {"scram-sha-256"}


def test_the_pipeline_role_owns_its_database_and_cannot_run_programs(running: Running) -> None:
    url = running.run["database_url"].replace("postgresql+psycopg://", "postgresql://")
    assert urlsplit(url).username != "postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        role = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
                            " FROM pg_roles WHERE rolname = current_user").fetchone()  # fmt: skip
        assert role == (False, False, False, False, False)
        owns = conn.execute("SELECT pg_get_userbyid(datdba) = current_user FROM pg_database"
                            " WHERE datname = current_database()").fetchone()  # fmt: skip
        assert owns == (True,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")


def test_no_server_inherits_the_environment_of_up(running: Running) -> None:
    for name, proc in running.servers.items():
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace").split("\0")
        assert not [v for v in environ if v.startswith("VSMMON_")], name
        assert not [v for v in environ if TOKEN in v], name


def test_what_up_creates_is_its_owners_alone(running: Running) -> None:
    assert stat.S_IMODE(running.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((running.data_dir / "run.json").stat().st_mode) == 0o600
    logs = [*running.data_dir.glob("*.log"), *(running.data_dir / "logs").glob("*.log")]
    assert len(logs) >= 6  # postgres, redis, worker, collector, beat, http
    for path in running.data_dir.rglob("*"):
        assert stat.S_IMODE(path.lstat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    for server in ("postgres", "redis"):
        assert stat.S_IMODE((running.home / server).stat().st_mode) == 0o700, server
    redis_files = list((running.home / "redis").iterdir())
    assert any(p.name.startswith("appendonly") for p in redis_files)
    for path in redis_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_up_changes_no_parent_directory(running: Running) -> None:
    assert modes(list(running.data_dir.parents)) == running.parent_modes


@needs_root
def test_a_server_user_that_cannot_reach_its_directory_stops_start_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsmmon.local import _sandbox

    closed = Path(tempfile.mkdtemp(prefix="vsmmon-closed-"))  # 0700, root's; /tmp above it is passable
    try:
        (closed / "srv").mkdir()
        monkeypatch.setattr(_sandbox, "ROOT_SERVER_BASE", closed / "srv" / "vsmmon")
        pg = EmbeddedPostgres(tmp_path / "data")
        with pytest.raises(EmbeddedServerError) as caught:
            pg.start()
        message = str(caught.value)
        assert f"runs as {pwd.getpwuid(pg.pgdata.stat().st_uid).pw_name}" in message
        assert f"{closed} (mode 0700, owner root) gives it no search (x) permission" in message
        assert f"chmod o+x {closed}" in message
        assert "VSMMON_DATABASE_URL" in message
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700  # told, not changed
        assert not pg.child.running()
    finally:
        shutil.rmtree(closed)


def test_the_pipeline_role_cannot_make_itself_superuser_through_the_next_start(tmp_path: Path) -> None:
    """The role owns `vsmmon` and its `public` schema: an operator it plants there, one that the superuser's
    ownership hand-over (`_ADOPT`) would pick over pg_catalog's, must not run as superuser at the next start."""
    pg = EmbeddedPostgres(tmp_path / "data")
    pg.start()
    try:
        url = pg.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""
                CREATE FUNCTION public.escalate(oid, regnamespace) RETURNS boolean LANGUAGE plpgsql AS $$
                BEGIN EXECUTE 'ALTER ROLE vsmmon SUPERUSER'; RETURN $1 = $2::oid; END $$;
                CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regnamespace, FUNCTION = public.escalate);
                ALTER DATABASE vsmmon SET search_path = public, pg_catalog;
            """)  # fmt: skip
    finally:
        pg.child.stop(15)
    again = EmbeddedPostgres(tmp_path / "data")
    again.start()
    try:
        url = again.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    finally:
        again.child.stop(15)
        if AS_ROOT:
            shutil.rmtree(again.home, ignore_errors=True)
