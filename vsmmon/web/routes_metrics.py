"""`GET /metrics`: the current state in Prometheus' text format, read at scrape time.

A custom collector on its own registry reads the registry, the latest assessment and the alert
manager's ledger (the recorded alerts when Redis is away) at each scrape, so the label sets are those
of the live views: a purged agent's series are gone at the next scrape. The collection duration
histogram is cumulative for this process (it starts from the stored collections and adds each newly
persisted one), like any Prometheus counter.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import redis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from vsmmon import names
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import AlertStatus, Severity
from vsmmon.collect.registry import AgentRecord, visible
from vsmmon.errors import StoreUnavailable, TransientError
from vsmmon.models import AgentInfo, HealthRow, RollupProgress
from vsmmon.store.alert_records import OPEN_STATUSES
from vsmmon.store.base import Store
from vsmmon.web import metrics_fleet
from vsmmon.web.auth import require_token_for_reads
from vsmmon.web.resources import Resources, resources

router = APIRouter(tags=["metrics"])
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
TASK_OUTCOMES = ("succeeded", "failed", "retried", "rejected")
PIPELINE_TASK_PREFIX = "task.vsmmon."


class DurationHistogram:
    """Cumulative bucket counts of collection durations, fed from the `collections` table.

    Each refresh reads the rows persisted since the newest one seen minus `lookback_s` and skips the ids
    already counted: transactions of several persist workers may commit out of their timestamps' order.
    """

    def __init__(self, buckets_s: tuple[float, ...] = DURATION_BUCKETS_S, lookback_s: float = 120.0) -> None:
        self.buckets_s = buckets_s
        self.lookback = timedelta(seconds=lookback_s)
        self.counts = [0] * (len(buckets_s) + 1)  # the last one is +Inf
        self.sum_s = 0.0
        self._newest: datetime | None = None
        self._recent: dict[UUID, datetime] = {}  # ids counted within the lookback
        self._lock = threading.Lock()

    def observe(self, duration_s: float) -> None:
        self.counts[bisect.bisect_left(self.buckets_s, duration_s)] += 1
        self.sum_s += duration_s

    def refresh(self, store: Store) -> None:
        """Add the collections persisted since the last refresh."""
        with self._lock:
            since = None if self._newest is None else self._newest - self.lookback
            for c in store.collection_durations(since):
                if c.collection_id in self._recent:
                    continue
                self.observe(c.duration_ms / 1000)
                self._recent[c.collection_id] = c.persisted_at
                self._newest = max(self._newest or c.persisted_at, c.persisted_at)
            if self._newest is not None:
                horizon = self._newest - self.lookback
                self._recent = {cid: at for cid, at in self._recent.items() if at >= horizon}

    def family(self) -> HistogramMetricFamily:
        with self._lock:
            cumulative, running = [], 0
            for bound, count in zip((*map(str, self.buckets_s), "+Inf"), self.counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            total = self.sum_s
        return HistogramMetricFamily(
            "vsmmon_collection_duration_seconds",
            "Wall time of a collection cycle, from the stored collections",
            buckets=cumulative,
            sum_value=total,
        )


class VsmmonCollector(Collector):
    """Reads vsmmon's current state at each scrape."""

    def __init__(self, res: Resources, durations: DurationHistogram) -> None:
        self.res = res
        self.durations = durations

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vsmmon_source_up", "Whether a source answered this scrape", labels=["source"])
        try:
            yield from self._database()
            up.add_metric(["database"], 1.0)
        except StoreUnavailable:
            up.add_metric(["database"], 0.0)
        try:
            lost = self.res.redis.get(names.LOST_COLLECTIONS_KEY)
            deliveries = self.res.redis.hgetall(names.ALERT_DELIVERIES_KEY)
            yield CounterMetricFamily(
                "vsmmon_lost_collections", "Collections lost after waiting past the buffer horizon",
                value=float(lost or 0),
            )  # fmt: skip
            yield _deliveries(deliveries)
            up.add_metric(["redis"], 1.0)
        except redis.RedisError:
            up.add_metric(["redis"], 0.0)
        yield up

    def _database(self) -> Iterator[Metric]:
        res, now = self.res, datetime.now(UTC)
        # read everything first: a lost database must not leave a family half written
        agents = [a for a in res.store.agents() if visible(_record(a), now, res.settings.purge_after_s)]
        history = res.store.health_history("viability", "viability", now - timedelta(hours=1))
        _, scores = res.store.agent_scores(now - timedelta(hours=1))
        alerts = _open_alerts(res)
        rollups = res.store.rollup_progress()
        self.durations.refresh(res.store)

        yield from _assessment(history[-1] if history else None)
        health = GaugeMetricFamily("vsmmon_agent_health", "Latest health score h of an agent", labels=["agent", "kind"])
        live = GaugeMetricFamily(
            "vsmmon_agent_up", "1 when the agent is online or stale, 0 offline", labels=["agent", "kind"]
        )
        messages = GaugeMetricFamily("vsmmon_queue_messages", "Messages waiting in a queue", labels=["queue"])
        consumers = GaugeMetricFamily("vsmmon_queue_consumers", "Live consumers of a queue", labels=["queue"])
        tasks: dict[tuple[str, str], float] = {}
        for a in agents:
            if a.kind == "queue":
                name = a.agent_id.removeprefix("queue:")
                if "messages" in a.metrics:
                    messages.add_metric([name], a.metrics["messages"])
                if "consumers" in a.metrics:
                    consumers.add_metric([name], a.metrics["consumers"])
                continue
            live.add_metric([a.agent_id, a.kind], 1.0 if a.live else 0.0)
            score = scores.get(a.agent_id)
            if score is not None and score.score is not None:
                health.add_metric([a.agent_id, a.kind], score.score)
            for metric, value in a.metrics.items():
                if metric.startswith(PIPELINE_TASK_PREFIX) and metric.endswith("_total"):
                    task, _, outcome = metric.removeprefix("task.").removesuffix("_total").rpartition(".")
                    if outcome in TASK_OUTCOMES:
                        tasks[task, outcome] = tasks.get((task, outcome), 0.0) + value
        yield from (health, live, messages, consumers)
        yield from metrics_fleet.families(agents)
        counter = CounterMetricFamily(
            "vsmmon_pipeline_tasks", "Pipeline tasks run by the live workers, by outcome", labels=["task", "outcome"]
        )
        for (task, outcome), value in sorted(tasks.items()):
            counter.add_metric([task, outcome], value)
        yield counter
        if alerts is not None:  # neither the ledger nor the history could be read: no figure rather than a 0
            yield from _alerts(alerts)
        yield self.durations.family()
        yield from _rollups(rollups)


def _record(a: AgentInfo) -> AgentRecord:
    return AgentRecord(a.agent_id, a.kind, a.last_seen, a.interval_s, a.status, a.status_since)


def _alerts(counts: dict[tuple[str, str], int]) -> Iterator[Metric]:
    firing = GaugeMetricFamily("vsmmon_alerts_firing", "Alerts firing now", labels=["severity"])
    open_ = GaugeMetricFamily("vsmmon_alerts_open", "Alerts not resolved", labels=["severity", "status"])
    for severity in sorted({*map(str, Severity), *(k[0] for k in counts)}):
        firing.add_metric([severity], float(counts.get((severity, AlertStatus.FIRING), 0)))
        for status in OPEN_STATUSES:
            open_.add_metric([severity, str(status)], float(counts.get((severity, status), 0)))
    yield from (firing, open_)


def _rollups(progress: RollupProgress) -> Iterator[Metric]:
    """Alert on `time() - vsmmon_rollups_closed_to_timestamp_seconds > 900`: window closes are falling behind."""
    yield GaugeMetricFamily(
        "vsmmon_rollups_pending_collections", "Aggregated collections whose 5 min window is not yet stored",
        value=float(progress.pending),
    )  # fmt: skip
    if progress.closed_to is not None:
        yield GaugeMetricFamily(
            "vsmmon_rollups_closed_to_timestamp_seconds", "Every 5 min window before this time is stored",
            value=progress.closed_to.timestamp(),
        )  # fmt: skip


def _assessment(latest: HealthRow | None) -> Iterator[Metric]:
    viability = GaugeMetricFamily("vsmmon_viability", "Viability of the latest assessment (0..1)")
    overall = GaugeMetricFamily("vsmmon_overall_health", "Weighted mean of the system scores (0..1)")
    systems = GaugeMetricFamily("vsmmon_system_health", "Score of each VSM system (0..1)", labels=["system"])
    state = GaugeMetricFamily("vsmmon_system_state", "1 for the state each system is in", labels=["system", "state"])
    at = GaugeMetricFamily("vsmmon_assessment_timestamp_seconds", "When the latest assessment was made")
    if latest is not None:
        summary, when = latest.inputs, latest.at
        at.add_metric([], when.timestamp())
        if summary.get("viability") is not None:
            viability.add_metric([], float(summary["viability"]))
        if summary.get("overall_health") is not None:
            overall.add_metric([], float(summary["overall_health"]))
        for name, system in sorted(summary.get("systems", {}).items()):
            if system.get("score") is not None:
                systems.add_metric([name], float(system["score"]))
            state.add_metric([name, str(system.get("state"))], 1.0)
        state.add_metric(["viability", str(summary.get("viability_state"))], 1.0)
    yield from (viability, overall, systems, state, at)


def registry_for(res: Resources, durations: DurationHistogram) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VsmmonCollector(res, durations))
    return registry


@router.get("/metrics", dependencies=[Depends(require_token_for_reads)], response_class=Response)
async def metrics(request: Request, res: Annotated[Resources, Depends(resources)]) -> Response:
    """The Prometheus exposition of vsmmon's current state."""
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(res, DurationHistogram())
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _open_alerts(res: Resources) -> dict[tuple[str, str], int] | None:
    """Open alerts by (severity, status) from the alert manager's ledger (what is true now); the recorded
    history when Redis cannot be read (None when this service has none)."""
    try:
        found = AlertBook(res.redis).read().state.alerts.values()
    except TransientError:
        if res.records is None:
            return None
        return {(str(severity), str(status)): n for (severity, status), n in res.records.open_counts().items()}
    return dict(Counter((str(a.severity), str(a.status)) for a in found))


def _deliveries(raw: Mapping[bytes | str, bytes | str]) -> Metric:
    """POSTs to webhooks and Alertmanagers by outcome: sent, refused (a 4xx), retried, failed (retries spent)."""
    family = CounterMetricFamily(
        "vsmmon_alert_deliveries", "Alert POSTs to receivers by outcome (sent, refused, retried, failed)",
        labels=["receiver", "url", "outcome"],
    )  # fmt: skip
    for key, count in sorted(raw.items()):
        text = key.decode(errors="replace") if isinstance(key, bytes) else key
        if text.count("|") < 2:
            continue  # not ours
        receiver, rest = text.split("|", 1)
        url, outcome = rest.rsplit("|", 1)  # a URL may hold a "|"; receiver and outcome never do
        family.add_metric([receiver, url, outcome], float(count))
    return family
