"""One scenario's own vsmmon pipeline on the machine's services, with time compressed, and what it recorded.

`running_pipeline` creates a throwaway PostgreSQL database (migrated, partitions made, as `vsmmon db
upgrade` does), flushes the scenario's Redis db index, and runs `vsmmon worker --role all`, `vsmmon beat`
and, for pushed agents, `vsmmon serve` as subprocesses. `Observer` reads what the pipeline recorded:
alerts that fired (with their firing time), S3's actions, the registry, the latest health scores.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from bench.celery_worker import Spawned, spawned
from bench.scenarios.truth import FiredAlert, TakenAction
from bench.services import database_url, throwaway_database
from vsmmon import names
from vsmmon.config import load_settings
from vsmmon.local.embedded import free_port
from vsmmon.models import AgentInfo
from vsmmon.store import migrations
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore

COLLECT_INTERVAL_S = 2.0
HEALTH_INTERVAL_S = 10.0
FACTOR = 1 / 3  # the health interval's compression (30 s -> 10 s); collection is 5 s -> 2 s
COMPRESSION = {
    "VSMMON_COLLECT_INTERVAL_S": COLLECT_INTERVAL_S,  # 5 s
    "VSMMON_HEALTH_INTERVAL_S": HEALTH_INTERVAL_S,  # 30 s
    "VSMMON_AUDIT_INTERVAL_S": 120 * FACTOR,
    "VSMMON_ALERT_PENDING_S": 30 * FACTOR,
    "VSMMON_ALERT_RESOLVE_AFTER_S": 60 * FACTOR,
    "VSMMON_ALERT_COOLDOWN_S": 300 * FACTOR,
    "VSMMON_ALERT_ESCALATE_AFTER_S": 900 * FACTOR,
    "VSMMON_CONTROL_PERSIST_S": 60 * FACTOR,
    "VSMMON_CONTROL_VERIFY_AFTER_S": 300 * FACTOR,
    "VSMMON_CONTROL_COOLDOWN_S": 300 * FACTOR,
}
"""Settings of every scenario's pipeline: each lifecycle period scaled like the health interval."""
DEFAULT_REDIS_URLS = ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/1")
READY_TIMEOUT_S = 90.0
_MIGRATING = threading.Lock()


def redis_urls() -> tuple[str, ...]:
    """The Redis db indexes scenarios may flush, one per lane (`VSMMON_SCENARIO_REDIS_URLS`, comma-separated)."""
    given = os.environ.get("VSMMON_SCENARIO_REDIS_URLS", "")
    return tuple(u.strip() for u in given.split(",") if u.strip()) or DEFAULT_REDIS_URLS


@dataclass
class Pipeline:
    name: str
    broker_url: str
    database_url: str
    data_dir: Path
    token: str
    http_url: str | None
    env: dict[str, str]
    processes: list[Spawned]
    started_at: datetime

    def check_alive(self) -> None:
        for p in self.processes:
            p.check_alive()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


def pipeline_env(broker_url: str, db_url: str, data_dir: Path, *, token: str, port: int, watch: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update({k: f"{v:g}" for k, v in COMPRESSION.items()})
    env.update(
        VSMMON_BROKER_URL=broker_url,
        VSMMON_DATABASE_URL=db_url,
        VSMMON_DATA_DIR=str(data_dir),
        VSMMON_API_TOKEN=token,
        VSMMON_HTTP_PORT=str(port),
        VSMMON_LOG_LEVEL="WARNING",
        VSMMON_WATCH_QUEUES=watch,
    )
    return env


@contextmanager
def running_pipeline(name: str, broker_url: str, *, http: bool, watch: str = "") -> Iterator[Pipeline]:
    """A fresh database and Redis db index, the pipeline's processes started; all stopped and dropped on exit."""
    with ExitStack() as stack:
        db_url = stack.enter_context(throwaway_database(database_url()))
        client = redis.Redis.from_url(broker_url)
        client.flushdb()
        stack.callback(client.close)
        stack.callback(client.flushdb)
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"vsmmon-scenario-{name}-")))
        token, port = secrets.token_urlsafe(16), free_port()
        env = pipeline_env(broker_url, db_url, data_dir, token=token, port=port, watch=watch)
        with _MIGRATING:  # Alembic's `context` and `op` are module globals: one migration at a time per process
            migrations.upgrade(db_url)
            migrations.prepare_storage(db_url, load_settings(env))
        me = [sys.executable, "-m", "vsmmon"]
        commands = {"worker": [*me, "worker", "--role", "all", "--concurrency", "2"], "beat": [*me, "beat"]}
        if http:
            commands["http"] = [*me, "serve"]
        processes = [stack.enter_context(spawned(f"{name} {part}", cmd, env)) for part, cmd in commands.items()]
        pipeline = Pipeline(name, broker_url, db_url, data_dir, token, f"http://127.0.0.1:{port}" if http else None,
                            env, processes, datetime.now(UTC))  # fmt: skip
        wait_ready(pipeline)
        yield pipeline


def wait_ready(pipeline: Pipeline) -> None:
    """Until a collection is stored (worker, beat, persist all work) and the HTTP service, if any, is ready."""
    engine = sa.create_engine(pipeline.database_url, pool_size=1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        store = PostgresStore(engine)
        while time.monotonic() < deadline:
            pipeline.check_alive()
            http_ok = pipeline.http_url is None or _ready(pipeline.http_url)
            if http_ok and store.latest_collection() is not None:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise TimeoutError(f"{pipeline.name}: no collection stored within {READY_TIMEOUT_S:.0f} s:\n"
                       + "\n".join(p.log_tail(1500) for p in pipeline.processes))  # fmt: skip


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Observer:
    """What the pipeline recorded: fired alerts (each one's events read once), S3's actions, registry, health."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.engine = sa.create_engine(pipeline.database_url, pool_size=2)
        self.records = AlertRecords(self.engine)
        self.store = PostgresStore(self.engine)
        self.redis = redis.Redis.from_url(pipeline.broker_url)
        self._fired: dict[str, FiredAlert] = {}
        self._pending_only: set[str] = set()

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()

    def alerts(self) -> list[FiredAlert]:
        """Every alert that fired so far, oldest first (pending ones that closed unseen are left out)."""
        for row in self.records.alerts(limit=2000):
            key = str(row["id"])
            if row["status"] == "pending" or key in self._pending_only:
                continue
            known = self._fired.get(key)
            if known is not None:
                if known.resolved_at is None and row["resolved_at"] is not None:
                    self._fired[key] = replace(known, resolved_at=row["resolved_at"])
                continue
            events = self.records.alert(key)["events"]
            firing = [e["at"] for e in events if e["event"] == "firing"]
            if not firing:
                if row["status"] == "resolved":
                    self._pending_only.add(key)
                continue
            self._fired[key] = FiredAlert(key, row["fingerprint"], row["type"], row["target"], row["severity"],
                                          min(firing), row["resolved_at"], row["summary"],
                                          {str(k): str(v) for k, v in (row["labels"] or {}).items()})  # fmt: skip
        return sorted(self._fired.values(), key=lambda a: a.fired_at)

    def actions(self) -> list[TakenAction]:
        """S3's recorded actions, oldest first ("none" records included: they say why S3 did nothing)."""
        found = self.records.actions(limit=1000)
        return [TakenAction(a.at, a.target, a.action, a.reason, a.dry_run) for a in reversed(found)]

    def agents(self) -> list[AgentInfo]:
        return self.store.agents()

    def backlog(self, queue: str) -> int:
        """Messages waiting in a fleet queue on the broker (a plain Redis list)."""
        return int(self.redis.llen(queue))

    def health(self) -> dict[str, Any]:
        """The latest assessment's bands and viability, as the health stage carries them."""
        raw = self.redis.get(names.HEALTH_PREVIOUS_KEY)
        with suppress(ValueError, TypeError):
            return dict(json.loads(raw)) if raw else {}
        return {}

    def systems(self, at: datetime) -> str:
        """Viability over the last checks up to `at`, and each system's score and band at the last of them."""
        since = at - timedelta(seconds=35)
        history = [r for r in self.store.health_history("viability", "viability", since) if r.at <= at]
        shown = ", ".join(f"{r.at:%H:%M:%S} {r.score:.2f}" for r in history if r.score is not None)
        parts = []
        for name in ("S1", "S2", "S3", "S4", "S5"):
            rows = [r for r in self.store.health_history("system", name, since) if r.at <= at]
            if rows:
                score = "unknown" if rows[-1].score is None else f"{rows[-1].score:.2f}"
                parts.append(f"{name} {score} {rows[-1].status}")
        low = []
        for agent in self.store.agents():
            rows = [r for r in self.store.health_history("agent", agent.agent_id, since) if r.at <= at]
            if rows and rows[-1].score is not None and rows[-1].score < 0.9:
                low.append(self.factors(agent.agent_id, at, scope="agent"))
        agents = f"; agents below 0.9: {' / '.join(low)}" if low else ""
        return f"viability {shown or 'none stored'}; {', '.join(parts)}{agents}"

    def factors(self, system: str, at: datetime, scope: str = "system") -> str:
        """The factors of a system's (or an agent's) stored score nearest before `at`, for explaining an alert."""
        since = at - timedelta(seconds=30)
        rows = [r for r in self.store.health_history(scope, system, since) if r.at <= at]
        if not rows:
            return "no stored score"
        row = rows[-1]
        parts = []
        for f in row.inputs.get("factors", []):
            score = f.get("score")
            shown = "unknown" if score is None else f"{score:.2f}"
            inputs = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in (f.get("inputs") or {}).items()}
            parts.append(f"{f.get('name')}={shown} {inputs}")
        score = "unknown" if row.score is None else f"{row.score:.2f}"
        return f"{system} {score} at {row.at:%H:%M:%S}: " + "; ".join(parts)


def hostname(name: str) -> str:
    """The node name of a fleet worker, as `--hostname NAME@%h` gives it."""
    return f"{name}@{socket.gethostname()}"
