"""`vsmmon up`, `status` and `db` as an operator runs them: real subprocesses, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.conftest import poll
from tests.store_contract import make_collection
from vsmmon.config import Settings
from vsmmon.local.embedded import free_port, server_home
from vsmmon.models import HealthRow
from vsmmon.store import migrations
from vsmmon.store.postgres import store_for

STOP_DEADLINE_S = 10
# what `vsmmon up` runs (vsmmon/local/up.py): the HTTP service, beat, and a worker per role
UP_PROCESSES = {"vsmmon-http", "vsmmon-beat", "vsmmon-collector", "vsmmon-analysis", "vsmmon-control"}


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update({k: v for k, v in variables.items() if v})
    return env


def vsmmon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vsmmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def latest_collection(env: dict[str, str]) -> dict[str, object] | None:
    result = vsmmon("status", "--json", env=env)
    if result.returncode != 0:
        return None
    latest: dict[str, object] | None = json.loads(result.stdout)["latest"]
    return latest


def pipeline_agents(base_url: str) -> set[str] | None:
    """The kinds of vsmmon's own processes the registry shows, once HTTP, beat and the three workers are there."""
    try:
        agents = httpx.get(f"{base_url}/api/v1/agents", timeout=2).json()["agents"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    seen = {a["agent_id"].split("@")[0] for a in agents if a["agent_id"].startswith("vsmmon-")}
    return seen if seen >= UP_PROCESSES else None


def run_up_until_a_collection(
    env: dict[str, str], log: Path, stop_with: signal.Signals = signal.SIGINT, *, wait_for_self: bool = False
) -> tuple[list[psutil.Process], str]:
    """Start `vsmmon up`, wait for /healthz then a persisted collection, signal it; return its tree."""
    port = env["VSMMON_HTTP_PORT"]
    with log.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "vsmmon", "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        poll(
            lambda: healthy(f"http://127.0.0.1:{port}/healthz"),
            deadline_s=60,
            what="GET /healthz",
            every_s=0.2,
        )
        latest = poll(lambda: latest_collection(env), deadline_s=15, what="a persisted collection", every_s=0.5)
        if wait_for_self:  # the pipeline's own processes report themselves within a few cycles
            base = f"http://127.0.0.1:{port}"
            poll(lambda: pipeline_agents(base), deadline_s=30, what="vsmmon's own processes in the registry")
        tree = [up_proc := psutil.Process(up.pid), *up_proc.children(recursive=True)]
        up.send_signal(stop_with)
        assert up.wait(timeout=STOP_DEADLINE_S) == 0
    finally:
        if up.poll() is None:
            up.kill()
    _, alive = psutil.wait_procs(tree, timeout=1)
    assert alive == [], f"left behind: {alive}\n{log.read_text()}"
    assert isinstance(latest["sample_count"], int)
    assert latest["sample_count"] > 0
    return tree, log.read_text()


@pytest.mark.slow
def test_up_on_the_embedded_servers_collects_and_stops_cleanly_on_sigint_and_sigterm(tmp_path: Path) -> None:
    env = environment(VSMMON_DATA_DIR=str(tmp_path / "data"), VSMMON_HTTP_PORT=str(free_port()))
    home = server_home(tmp_path / "data")  # the data dir itself, or under /var/lib/vsmmon as root
    try:
        up_twice(env, tmp_path, home)
    finally:
        if home != (tmp_path / "data").resolve():
            shutil.rmtree(home, ignore_errors=True)


def up_twice(env: dict[str, str], tmp_path: Path, home: Path) -> None:
    tree, output = run_up_until_a_collection(env, tmp_path / "up.log", wait_for_self=True)
    assert "embedded PostgreSQL: ok" in output
    assert "embedded Redis: ok" in output
    assert "vsmmon: stopped" in output
    assert len(tree) >= 6  # supervisor, postgres, redis, worker (+ pool), beat, http
    # a second `vsmmon up` finds the first one's data: the collection is still there
    env["VSMMON_HTTP_PORT"] = str(free_port())
    _, output2 = run_up_until_a_collection(env, tmp_path / "up2.log", stop_with=signal.SIGTERM)
    assert "embedded PostgreSQL: ok" in output2
    assert (home / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "data" / "run.json").exists()


@pytest.mark.slow
def test_up_with_urls_set_uses_them_and_starts_no_server(
    settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    env = environment(
        VSMMON_BROKER_URL=settings.require("broker_url"),
        VSMMON_DATABASE_URL=settings.sqlalchemy_url(),
        VSMMON_DATA_DIR=str(tmp_path / "data"),
        VSMMON_HTTP_PORT=str(free_port()),
    )
    _, output = run_up_until_a_collection(env, tmp_path / "up.log")
    assert "embedded" not in output
    assert not (tmp_path / "data" / "postgres").exists()
    assert not (server_home(tmp_path / "data") / "postgres").exists()


def test_status_and_db_commands_against_the_configured_database(settings: Settings, clean_services: None) -> None:
    env = environment(VSMMON_DATABASE_URL=settings.sqlalchemy_url(), VSMMON_BROKER_URL=settings.require("broker_url"))
    current = vsmmon("db", "current", env=env)
    assert current.returncode == 0
    head = migrations.current(settings.sqlalchemy_url())[1]
    assert current.stdout.strip() == f"{head} (up to date)"
    empty = vsmmon("status", env=env)
    assert empty.returncode == 1
    assert empty.stdout.strip() == "no collection stored yet"
    collection = make_collection(datetime.now(UTC))
    with store_for(settings.sqlalchemy_url()) as store:
        store.save_collection(collection, collection.started_at)
        store.aggregate_collection(collection.id, collection.started_at)
    shown = vsmmon("status", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "aggregated      yes" in shown.stdout
    assert "5 min windows stored up to none yet; 1 collections pending" in shown.stdout
    with store_for(settings.sqlalchemy_url()) as store:
        store.update_registry(collection)
        at = datetime.now(UTC)
        store.save_health(
            [
                HealthRow(at, "agent", "celery@w0", 0.9, "healthy", {"factors": []}),
                HealthRow(at, "viability", "viability", 0.95, "normal", {}),
            ]
        )  # w1: not assessed yet
    shown = vsmmon("status", env=env)
    assert "agents            2 known" in shown.stdout
    listed = [line.split() for line in shown.stdout.splitlines() if line.startswith("  celery@")]
    assert listed == [["celery@w0", "celery_worker", "online", "0.90", "healthy"],
                      ["celery@w1", "celery_worker", "online", "-"]]  # fmt: skip
    as_json = json.loads(vsmmon("status", "--json", env=env).stdout)
    assert [(a["id"], a["kind"], a["status"], a["health"], a["state"]) for a in as_json["agents"]] == [
        ("celery@w0", "celery_worker", "online", 0.9, "healthy"),
        ("celery@w1", "celery_worker", "online", None, None),
    ]
    assert as_json["latest"]["id"] == str(collection.id)
    assert as_json["rollups"] == {"closed_to": None, "pending": 1,
                                  "oldest_pending": collection.started_at.isoformat()}  # fmt: skip
