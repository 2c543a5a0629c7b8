"""`vsmmon up`: everything on one machine, supervised — embedded servers when no URL is set,
migrations, three workers (the collection's path, the analysis queue, control), beat and the HTTP service.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from vsmmon.config import ENV_PREFIX, Settings
from vsmmon.errors import ConfigError
from vsmmon.local import _sandbox, runfile
from vsmmon.local.embedded import EmbeddedPostgres, EmbeddedRedis, server_home
from vsmmon.local.processes import Child, stop_all
from vsmmon.redact import redact_url
from vsmmon.store import migrations

STOP_DEADLINE_S = 8.0
MAX_RESTART_DELAY_S = 30.0


class _Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that hands `settings` to a child process."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[ENV_PREFIX + name.upper()] = str(value)
    if settings.api_token is not None:
        env[ENV_PREFIX + "API_TOKEN"] = settings.api_token.get_secret_value()
    return env


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(f"{ENV_PREFIX}HTTP_PORT", f"{host}:{port} is not free ({e.strerror})") from e


def _step(say: Callable[[str], None], what: str, action: Callable[[], object]) -> None:
    started = time.monotonic()
    say(f"  {what} …")
    action()
    say(f"  {what}: ok ({time.monotonic() - started:.1f} s)")


def up(settings: Settings, say: Callable[[str], None] = print) -> int:
    """Run until SIGINT or SIGTERM; then stop every child within the deadline. Returns the exit code.

    Everything it creates is its owner's alone (umask 077): DATA_DIR 0700, run.json and the logs 0600.
    """
    umask = os.umask(0o077)
    try:
        return _up(settings, say)
    finally:
        os.umask(umask)


def _up(settings: Settings, say: Callable[[str], None]) -> int:
    data_dir = _sandbox.private_data_dir(settings.data_dir)  # its parents are left as they are
    runfile.claim(data_dir)
    _check_port_free(settings.http_host, settings.http_port)
    servers: list[Child] = []
    services: list[Child] = []
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"vsmmon up: data in {data_dir}")
        resolved = _start_servers(settings, data_dir, servers, say)
        _step(say, "database migrations", lambda: migrations.upgrade(resolved.sqlalchemy_url()))
        _step(say, "partitions", lambda: migrations.prepare_storage(resolved.sqlalchemy_url(), resolved))
        http_url = f"http://{resolved.http_host}:{resolved.http_port}"
        token = resolved.api_token.get_secret_value() if resolved.api_token else ""
        runfile.write(
            data_dir,
            runfile.RunInfo(
                os.getpid(), resolved.require("broker_url"), resolved.sqlalchemy_url(),
                resolved.require("redis_url"), http_url, token,
            ),
        )  # fmt: skip
        services = _services(resolved, data_dir / "logs")
        for child in services:
            child.start()
        say(f"vsmmon is up: dashboard and API at {http_url}  (broker {redact_url(resolved.require('broker_url'))})")
        say(f"  logs in {data_dir / 'logs'}; `vsmmon status` shows the latest collection; Ctrl-C stops everything")
        if settings.api_token is None:
            say(f"  API token (generated; set VSMMON_API_TOKEN to choose one): in {data_dir / runfile.RUN_FILE}")
        _supervise(services, say)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("vsmmon: stopping …")
        stop_all(list(reversed(services)), deadline_s=STOP_DEADLINE_S - 2)
        stop_all(list(reversed(servers)), deadline_s=2)
        runfile.remove(data_dir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("vsmmon: stopped")
    return 0


def _start_servers(settings: Settings, data_dir: Path, started: list[Child], say: Callable[[str], None]) -> Settings:
    """Start an embedded server for each URL not set; return the settings naming them (and a token)."""
    updates: dict[str, object] = {}
    home = server_home(data_dir)
    if not (settings.database_url and settings.broker_url) and home != data_dir:
        say(f"  embedded servers' data in {home} (as root; their system users cannot enter root's directories)")
        for old in (data_dir / "postgres", data_dir / "redis"):
            if old.exists() and not (home / old.name).exists():  # an older vsmmon's, which kept them here
                say(
                    f"  note: {old} is not used any more; to keep its data, stop vsmmon and move it to "
                    f"{home / old.name}, in place of the new one"
                )
    if not settings.database_url:
        pg = EmbeddedPostgres(data_dir)
        _step(say, "embedded PostgreSQL", lambda: started.append(pg.start()))
        updates["database_url"] = pg.url
    if not settings.broker_url:
        rd = EmbeddedRedis(data_dir)
        _step(say, "embedded Redis", lambda: started.append(rd.start()))
        updates["broker_url"] = rd.url
        updates["redis_url"] = settings.redis_url or rd.url
    if settings.api_token is None:  # writes need a token: make one, kept in the owner-only run file
        updates["api_token"] = SecretStr(secrets.token_urlsafe(24))
    return settings.model_copy(update=updates)


def _services(settings: Settings, logs: Path) -> list[Child]:
    """The pipeline's own processes: one worker for the collection's path alone (collect, persist, aggregate;
    two processes, so a collection waiting on its replies never holds up the last one's persist: at 10,000
    agents that wait was a p95 of 3.4 s with one), one for the analysis queue (window closes, the analysis, the
    maintenance, alert history: long, PostgreSQL-bound work), one for judgement and control (health, alerts, S3,
    S5: at 10,000 agents, alerts and webhook flushes queued behind a 5 min window close when they shared a worker
    with it), beat, the HTTP service. No worker takes another's tasks: one reserved while its pool was busy would
    wait for it."""
    logs.mkdir(mode=0o700, exist_ok=True)
    logs.chmod(0o700)
    env = settings_env(settings)
    me = [sys.executable, "-m", "vsmmon"]
    return [
        # minute-scale work, niced: on a machine it shares with the collection's path, that path keeps its interval
        Child("analysis", [*me, "worker", "--role", "analysis", "--nice", "10"], env, logs / "analysis.log"),
        Child("control", [*me, "worker", "--role", "control"], env, logs / "control.log"),
        Child("collector", [*me, "worker", "--role", "collector", "--concurrency", "2"], env, logs / "collector.log"),
        Child("beat", [*me, "beat"], env, logs / "beat.log"),
        Child("http", [*me, "serve"], env, logs / "http.log"),
    ]


def _supervise(children: list[Child], say: Callable[[str], None]) -> None:
    """Restart a child that exits, with a back-off that grows while it keeps failing."""
    due: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for child in children:
            if child.running():
                continue
            if child.name not in due:
                code = child.popen.returncode if child.popen else None
                delay = min(MAX_RESTART_DELAY_S, 2.0**child.restarts)
                say(f"vsmmon: {child.name} exited with {code}; restarting in {delay:.0f} s (see its log)")
                due[child.name] = now + delay
            elif now >= due.pop(child.name):
                child.restarts += 1
                child.start()
        time.sleep(0.25)
