"""A fleet's state written the way the pipeline writes it: registry, real-time window, assessment, analysis.

Used by the browser tests, the screenshots and the P6 benchmark. The stages are the real ones
(`evaluate`, `analyse_fleet`, the stores); only the worker processes are left out.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.codec import public_alert
from vsmmon.alerts.model import Severity, Signal
from vsmmon.analyse.analysis import MemorySeries, analyse_fleet
from vsmmon.collect.registry import Transition
from vsmmon.config import Settings
from vsmmon.health.agents import MB, AgentInputs
from vsmmon.health.assessment import HealthAssessment, evaluate
from vsmmon.health.codec import assessment_to_dict, rows
from vsmmon.health.systems import ControlInputs, QueueFlow
from vsmmon.models import AgentKind, AgentReport, AgentStatus, Collection
from vsmmon.names import ALERTS_CHANNEL, HEALTH_CHANNEL
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.tasks.failures import FailureBook, TaskFailure

INTERVAL_S = 5.0
QUEUES = ("vsm.collect", "vsm.analysis", "orders", "emails")
TASK_NAMES = (
    "shop.orders.charge", "shop.orders.refund", "shop.emails.send", "shop.emails.render", "shop.reports.daily",
    "shop.images.resize", "shop.search.reindex", "shop.billing.invoice", "shop.users.sync", "shop.webhooks.deliver",
    "shop.exports.csv", "shop.cache.warm",
)  # fmt: skip
FAILING = {"shop.emails.send": 0.2, "shop.webhooks.deliver": 0.05}
"""Task names that fail, and the share of their runs that do (their failures: `FAILURES`)."""
SLOW = "shop.reports.daily"
TASKS_PER_WORKER = 4


@dataclass(frozen=True)
class Fleet:
    workers: list[str]
    offline: list[str]
    now: datetime


def worker_metrics(i: int, t_s: float, rng: random.Random) -> dict[str, float]:
    leak = 3 * MB * t_s / INTERVAL_S if i == 0 else 0.0  # the first worker leaks: a forecast worth drawing
    return {
        "cpu_percent": 20 + 15 * math.sin(t_s / 60 + i) + rng.uniform(0, 5),
        "rss_bytes": (150 + (i % 7) * 40) * MB + leak,
        "children_rss_bytes": 80 * MB,
        "active": float(rng.randint(0, 4)),
        "concurrency": 4.0,
        "tasks_succeeded_total": 1000 + 12 * t_s + i,
        "tasks_failed_total": 3 + t_s / 50,
        "task_runtime_p95_s": 0.12 + 0.03 * math.sin(t_s / 40),
        "queue_wait_p95_s": 0.02 + rng.uniform(0, 0.01),
        "task.vsmmon.collect.run.succeeded_total": 100 + t_s / INTERVAL_S,
        "task.vsmmon.collect.run.runtime_p95_s": 0.05 + 0.001 * i,
    }


def task_names(n: int) -> list[str]:
    """`n` task names: the shop's, then numbered batch jobs."""
    return list(TASK_NAMES[:n]) + [f"shop.jobs.batch_{k:03d}" for k in range(n - len(TASK_NAMES))]


def runs_of(i: int, names: list[str]) -> list[str]:
    """The task names worker `i` runs: `TASKS_PER_WORKER` of `names`, the next ones after worker `i - 1`'s."""
    return [names[(i * TASKS_PER_WORKER + j) % len(names)] for j in range(min(TASKS_PER_WORKER, len(names)))]


def task_metrics(i: int, t_s: float, names: list[str]) -> dict[str, float]:
    """The plugin's per-name figures of worker `i` (`runs_of`): some names fail, one is slow."""
    found: dict[str, float] = {}
    for name in runs_of(i, names):
        k = names.index(name)
        rate = 0.2 + (k % 5) * 0.3  # runs a second on this worker
        failing = FAILING.get(name, 0.0)
        p50 = 2.5 if name == SLOW else 0.02 * (1 + k % 7)
        prefix = f"task.{name}."
        found |= {
            f"{prefix}succeeded_total": 50 + rate * (1 - failing) * t_s, f"{prefix}failed_total": rate * failing * t_s,
            f"{prefix}retried_total": rate * failing * t_s / 2, f"{prefix}runtime_p50_s": p50,
            f"{prefix}runtime_p95_s": 2 * p50, f"{prefix}runtime_p99_s": 3 * p50,
            f"{prefix}wait_p50_s": 0.01 + 0.002 * (i % 5), f"{prefix}wait_p95_s": 0.05 + 0.01 * (i % 5),
        }  # fmt: skip
    return found


FAILURES = {
    "shop.emails.send": ("smtplib.SMTPServerDisconnected", "Connection unexpectedly closed"),
    "shop.webhooks.deliver": ("httpx.ConnectTimeout", "timed out connecting to hooks.example.com:443"),
}


WEBHOOK_ARGUMENTS = "args=('order-1042',) kwargs={'url': 'https://hooks.example.com/<hidden>'}"


def task_failures(workers: list[str], names: list[str], now: datetime) -> list[TaskFailure]:
    """The last failures of the failing names (three each, 40 s apart), as the collect task keeps them."""
    found = []
    for k, (name, (exception, message)) in enumerate(FAILURES.items()):
        running = [w for i, w in enumerate(workers) if name in runs_of(i, names)]
        for m, worker in enumerate(running[:3]):
            at = now - timedelta(seconds=20 + 40 * m)
            shown = WEBHOOK_ARGUMENTS if name == "shop.webhooks.deliver" else None  # its plugin opted in
            found.append(TaskFailure(name, str(uuid.UUID(int=100 * k + m)), worker, exception, message, at, shown))
    return found


def worker_histogram(t_s: float) -> dict[str, float]:
    """The plugin's sparse runtime histogram of `vsmmon.collect.run`: 40 % of the runs within 50 ms, all within 100."""
    runs = 100 + t_s / INTERVAL_S
    task = "task.vsmmon.collect.run."
    return {f"{task}runtime_count": runs, f"{task}runtime_sum_s": 0.06 * runs,
            f"{task}runtime_le_50ms": 0.4 * runs, f"{task}runtime_le_100ms": runs}  # fmt: skip


def seed(
    store: PostgresStore, client: redis.Redis, agents: int = 40, offline: int = 3, cycles: int = 60, tasks: int = 12
) -> Fleet:
    """Register `agents` workers and the queues, `cycles` collections of history, `offline` of them offline; the
    workers run `tasks` task names between them, and the failing ones' last failures are kept."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    window = RealtimeWindow(client, INTERVAL_S)
    names = [f"celery@worker-{i:04d}" for i in range(agents)]
    jobs = task_names(tasks)
    consumers = {q: sum(1 for i in range(agents - offline) if i % len(QUEUES) == k) for k, q in enumerate(QUEUES)}
    start = now - timedelta(seconds=INTERVAL_S * (cycles - 1))
    for c in range(cycles):
        at = start + timedelta(seconds=INTERVAL_S * c)
        t_s = (at - start).total_seconds()
        reports = [
            AgentReport(name, AgentKind.CELERY_WORKER, f"host-{i % 5}",
                        worker_metrics(i, t_s, rng) | task_metrics(i, t_s, jobs), version="2.3",
                        queues=(QUEUES[i % len(QUEUES)],), latest=worker_histogram(t_s))
            for i, name in enumerate(names)
        ]  # fmt: skip
        reports += [
            AgentReport(
                f"queue:{q}",
                AgentKind.QUEUE,
                "",
                {
                    "messages": float(round(5 * k + 20 * math.sin(t_s / 50) ** 2)),
                    "consumers": float(consumers[q]),
                    "oldest_age_s": 1.5 + 4 * k,
                },
            )
            for k, q in enumerate(QUEUES)
        ]
        collection = Collection(uuid.uuid4(), at, 8.0 + rng.uniform(0, 30), tuple(reports))
        window.write(collection)
        if c >= cycles - 3:  # the registry and a few stored collections (the /metrics histogram)
            store.save_collection(collection, datetime.now(UTC))
            store.update_registry(collection)
            store.aggregate_collection(collection.id, at)
    gone = names[-offline:] if offline else []
    store.apply_transitions(
        [Transition(n, now, AgentStatus.ONLINE, AgentStatus.OFFLINE, "missed its reports") for n in gone]
    )
    analyse(store, window, names[:3], now)
    FailureBook(client).record(task_failures(names, jobs, now))
    return Fleet(names, gone, now)


def analyse(store: PostgresStore, window: RealtimeWindow, names: list[str], now: datetime) -> None:
    """The analysis stage on the window's memory and CPU series: forecasts, trends, recommendations."""
    memory, series = [], {}
    for name in names:
        main = window.read(name, "rss_bytes", now)
        origin = main[0].ts
        memory.append(
            MemorySeries(name, ([(p.ts - origin).total_seconds() for p in main], [p.value + 80 * MB for p in main]),
                         1024 * MB)
        )  # fmt: skip
        for metric in ("cpu_percent", "task_runtime_p95_s"):
            points = window.read(name, metric, now, 300)
            series[name, metric, 300] = ([(p.ts - now).total_seconds() for p in points], [p.value for p in points])
    store.save_analysis(analyse_fleet(now, memory, series, []))


def assessment(fleet: Fleet, at: datetime | None = None, *, degraded: bool = False) -> HealthAssessment:
    """A real assessment of the fleet (the health stage's pure entry point)."""
    rng = random.Random(11)
    agents = [
        AgentInputs(
            name, "celery_worker", name not in fleet.offline,
            {"rss_bytes": (300 if not degraded or i % 3 else 900) * MB, "concurrency": 4.0, "active": 2.0,
             "task_runtime_p95_s": 0.15},
            512 * MB, 1024 * MB, 400.0, float(rng.randint(0, 30 if degraded else 3)), rng.uniform(0.2, 0.7), 0.12,
        )
        for i, name in enumerate(fleet.workers)
    ]  # fmt: skip
    flows = [QueueFlow(q, 10.0 * k, 4.0, 4.0 - (1.5 if degraded else 0), [10.0 * k] * 20) for k, q in enumerate(QUEUES)]
    control = ControlInputs(
        active_total=2.0 * len(agents), concurrency_total=4.0 * len(agents),
        pool_series={a.agent_id: [4.0] * 20 for a in agents}, identities=[(QUEUES[0], "2.3|abc")] * len(agents),
    )  # fmt: skip
    return evaluate(at or datetime.now(UTC), agents, flows, control, expected_capacity=4.0 * len(agents))


def store_and_publish(store: PostgresStore, client: redis.Redis, result: HealthAssessment) -> dict[str, Any]:
    """What the health task does with an assessment: store its rows, publish its summary."""
    store.save_health(rows(result))
    summary = assessment_to_dict(result, agents=False)
    client.publish(HEALTH_CHANNEL, json.dumps(summary))
    return summary


def raise_alert(store: PostgresStore, client: redis.Redis, settings: Settings, target: str) -> dict[str, Any]:
    """A critical alert through the real alert manager (ledger in Redis, rows in PostgreSQL), announced as
    the alerts worker announces it."""
    outcome = alert_desk.report(
        AlertBook(client), "browser-test",
        [Signal("memory_high", target, Severity.CRITICAL, {"queue": "orders"}, "RSS above the hard limit",
                resource=True)],
        datetime.now(UTC), ttl_s=600, policy=alert_desk.policy_for(settings),
    )  # fmt: skip
    AlertRecords(store.engine).save(outcome.changed, outcome.events)
    [alert] = [public_alert(a) for a in outcome.changed]
    client.publish(ALERTS_CHANNEL, json.dumps({"type": "alert", "event": alert["status"], "data": alert}))
    return alert
