"""In-memory `Store` for unit tests and demos; same contract as the PostgreSQL one."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID

from vsmmon.analyse.analysis import AnalysisResult, DueForecast, accuracy
from vsmmon.analyse.recommend import Recommendation
from vsmmon.collect.registry import AgentRecord, Transition
from vsmmon.collect.shards import cycle_summary
from vsmmon.errors import NotFound
from vsmmon.models import (
    ROLLUP_WINDOWS_S,
    AgentInfo,
    AgentStatus,
    Collection,
    CollectionSummary,
    HealthRow,
    Rollup,
    RollupProgress,
    Sample,
    WindowsClosed,
)
from vsmmon.store._partitions import MaintenanceReport
from vsmmon.store.aggregator import aggregate, fold
from vsmmon.store.base import (
    AgentScore,
    CollectionDuration,
    ForecastPoint,
    GridRow,
    StoredForecast,
    StoredTrend,
    change_time,
)
from vsmmon.store.retention import Policy


@dataclass
class MemoryStore:
    """Keeps everything in dicts; not shared between processes."""

    summaries: dict[UUID, CollectionSummary] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    unaggregated: dict[UUID, list[Sample]] = field(default_factory=dict)  # a stored collection's own samples
    registry: dict[str, AgentInfo] = field(default_factory=dict)
    history: list[Transition] = field(default_factory=list)
    health: dict[tuple[str, str, datetime], HealthRow] = field(default_factory=dict)
    advice: dict[str, Recommendation] = field(default_factory=dict)
    forecasts: dict[tuple[datetime, str, str, int], tuple[float, float | None]] = field(default_factory=dict)
    bounds: dict[tuple[datetime, str, str, int], tuple[float | None, float | None]] = field(default_factory=dict)
    trends: dict[tuple[datetime, str, str, int], StoredTrend] = field(default_factory=dict)
    _rollups: dict[tuple[str, str, int, datetime], Rollup] = field(default_factory=dict)

    def save_collection(self, collection: Collection, now: datetime) -> bool:
        if collection.id in self.summaries:
            return False
        self.summaries[collection.id] = CollectionSummary(
            collection.id, collection.started_at, collection.duration_ms, collection.agent_count,
            collection.sample_count, collection.unreachable, now, None, collection.shard, collection.shards,
        )  # fmt: skip
        self.samples.extend(collection.samples())
        self.unaggregated[collection.id] = list(collection.samples())
        return True

    def update_registry(self, collection: Collection) -> None:
        at = collection.started_at
        for r in collection.reports:
            known = self.registry.get(r.agent_id)
            if known is not None and known.last_seen > at:
                continue  # a late retry of an older collection must not roll the registry back
            self.registry[r.agent_id] = AgentInfo(
                r.agent_id, r.kind, r.host, r.version,
                known.status if known else AgentStatus.ONLINE, known.status_since if known else at,
                known.first_seen if known else at, at, r.interval_s or collection.interval_s,
                r.config_hash, r.queues, {**r.metrics, **r.latest}, dict(r.errors),
            )  # fmt: skip

    def aggregate_collection(self, collection_id: UUID, now: datetime) -> bool:
        summary = self.get_collection(collection_id)
        if summary.aggregated_at is not None:
            return False
        rollups = aggregate(self.unaggregated.pop(collection_id, []))
        # every level at once: the same windows, as they stand now, that PostgreSQL's closes and folds give
        for rollup in [r for w in ROLLUP_WINDOWS_S for r in fold(rollups, w)]:
            key = (rollup.agent_id, rollup.metric, rollup.window_s, rollup.window_start)
            existing = self._rollups.get(key)
            self._rollups[key] = rollup if existing is None else existing.merge(rollup)
        self.summaries[collection_id] = replace(summary, aggregated_at=now)
        return True

    def close_due(self, started_at: datetime) -> datetime | None:
        return None  # every collection is merged into every level when it is aggregated

    def close_windows(self, cutoff: datetime, now: datetime) -> WindowsClosed:
        return WindowsClosed(cutoff, 0, 0, 0, 0, 0)

    def rollup_progress(self) -> RollupProgress:
        return RollupProgress(None, 0, None)  # nothing waits: every level is merged at once

    def latest_collection(self) -> CollectionSummary | None:
        newest = max((s.started_at for s in self.summaries.values()), default=None)
        return cycle_summary([s for s in self.summaries.values() if s.started_at == newest]) if newest else None

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        try:
            return self.summaries[collection_id]
        except KeyError:
            raise NotFound(f"collection {collection_id} is not stored") from None

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        found = [r for (a, m, w, _), r in self._rollups.items() if (a, m, w) == (agent_id, metric, window_s)]
        return sorted(found, key=lambda r: r.window_start)

    def agent_records(self) -> list[AgentRecord]:
        return [
            AgentRecord(a.agent_id, a.kind, a.last_seen, a.interval_s, AgentStatus(a.status), a.status_since)
            for a in self.registry.values()
        ]

    def apply_transitions(self, transitions: list[Transition]) -> int:
        applied = 0
        for t in transitions:
            known = self.registry.get(t.agent_id)
            if known is None or known.status != t.from_status:
                continue
            self.registry[t.agent_id] = replace(known, status=t.to_status, status_since=t.at)
            self.history.append(t)
            applied += 1
        return applied

    def agents(self, metrics: Sequence[str] | None = None) -> list[AgentInfo]:
        found = [self.registry[k] for k in sorted(self.registry)]
        if metrics is None:
            return found
        return [replace(a, metrics={m: a.metrics[m] for m in metrics if m in a.metrics}) for a in found]

    def transitions(self, agent_id: str) -> list[Transition]:
        return sorted((t for t in self.history if t.agent_id == agent_id), key=lambda t: t.at)

    def save_health(self, rows: Iterable[HealthRow]) -> int:
        added = 0
        for row in rows:
            key = (row.scope, row.subject, row.at)
            if key not in self.health:
                self.health[key] = row
                added += 1
        return added

    def health_history(self, scope: str, subject: str, since: datetime) -> list[HealthRow]:
        found = [r for (sc, su, at), r in self.health.items()
                 if (sc, su) == (scope, subject) and at >= since and r.check_id is None]  # fmt: skip
        return sorted(found, key=lambda r: r.at)

    def health_checks(self, since: datetime) -> list[HealthRow]:
        found = [r for r in self.health.values() if r.scope == "viability" and r.at >= since and r.check_id]
        return sorted(found, key=lambda r: r.at, reverse=True)

    def health_check(self, check_id: UUID) -> list[HealthRow]:
        return sorted((r for r in self.health.values() if r.check_id == check_id), key=lambda r: (r.scope, r.subject))

    def save_analysis(self, result: AnalysisResult) -> int:
        for agent, metric, window_s, t in result.trends:
            stored = StoredTrend(result.at, _finite(t.level), _finite(t.trend_per_s), _finite(t.anomaly),
                                 change_time(result.at, t.change_at_s))  # fmt: skip
            self.trends.setdefault((result.at, agent, metric, window_s), stored)
        for agent, metric, f in result.forecasts:
            key = (result.at, agent, metric, int(f.horizon_s))
            if key not in self.forecasts:
                self.forecasts[key] = (f.value_at_horizon, None)
                self.bounds[key] = (_finite(f.lower), _finite(f.upper))
        for r in result.recommendations:
            self.advice[r.fingerprint] = r
        return len(result.trends) + len(result.forecasts) + len(result.recommendations)

    def recommendations(self, now: datetime) -> list[Recommendation]:
        live = [r for r in self.advice.values() if r.expires_at > now]
        return sorted(live, key=lambda r: -r.confidence)

    def due_forecasts(self, since: datetime, until: datetime) -> list[DueForecast]:
        found = [DueForecast(at, a, m, h, value) for (at, a, m, h), (value, actual) in self.forecasts.items()
                 if actual is None]  # fmt: skip
        return sorted((f for f in found if since <= f.due_at <= until), key=lambda f: (f.at, f.agent_id, f.metric))

    def score_forecasts(self, scored: Sequence[tuple[DueForecast, float]]) -> int:
        for f, actual in scored:
            self.forecasts[(f.at, f.agent_id, f.metric, f.horizon_s)] = (f.value, actual)
        return len(scored)

    def forecast_accuracy(self, since: datetime, until: datetime) -> tuple[float | None, int]:
        pairs = [(value, actual) for (at, _, _, h), (value, actual) in self.forecasts.items()
                 if actual is not None and since <= at + timedelta(seconds=h) <= until]  # fmt: skip
        return accuracy(pairs), len(pairs)

    def agent_scores(self, since: datetime) -> tuple[datetime | None, dict[str, AgentScore]]:
        scheduled = [at for (sc, _, at), r in self.health.items() if sc == "viability" and r.check_id is None]
        at = max((t for t in scheduled if t >= since), default=None)
        found = {
            subject: AgentScore(row.score, row.status, {f["name"]: f["score"] for f in row.inputs.get("factors", [])})
            for (scope, subject, when), row in self.health.items()
            if scope == "agent" and when == at and row.check_id is None
        }  # fmt: skip
        return at, found

    def grid(self, metrics: Sequence[str]) -> list[GridRow]:
        named = [m for m in metrics if m.replace("_", "").isalnum()]
        return [
            GridRow(a.agent_id, a.kind, a.host, a.status, a.status_since, a.last_seen, a.interval_s,
                    {m: a.metrics[m] for m in named if a.metrics.get(m) is not None})
            for a in self.agents()
        ]  # fmt: skip

    def latest_forecast(self, agent_id: str, metric: str) -> StoredForecast | None:
        made = [k for k in self.forecasts if k[1:3] == (agent_id, metric)]
        if not made:
            return None
        at = max(k[0] for k in made)
        points = [ForecastPoint(k[3], self.forecasts[k][0], *self.bounds.get(k, (None, None))) for k in made
                  if k[0] == at]  # fmt: skip
        return StoredForecast(at, tuple(sorted(points, key=lambda p: p.horizon_s)))

    def latest_trend(self, agent_id: str, metric: str, window_s: int) -> StoredTrend | None:
        at = max((k[0] for k in self.trends if k[1:] == (agent_id, metric, window_s)), default=None)
        return None if at is None else self.trends[(at, agent_id, metric, window_s)]

    def collection_durations(self, since: datetime | None) -> list[CollectionDuration]:
        found = [CollectionDuration(s.id, s.persisted_at, s.duration_ms) for s in self.summaries.values()
                 if since is None or s.persisted_at >= since]  # fmt: skip
        return sorted(found, key=lambda d: d.persisted_at)

    def maintain(self, rules: list[Policy], now: datetime, ahead: timedelta) -> MaintenanceReport:
        keep = {r.table: now - r.keep for r in rules}
        before = self._rows()
        if "metric_samples" in keep:
            self.samples = [s for s in self.samples if s.ts >= keep["metric_samples"]]
        if "metric_rollups" in keep:
            cutoff = keep["metric_rollups"]
            self._rollups = {k: r for k, r in self._rollups.items() if r.window_start + _window(r) > cutoff}
        if "agents" in keep:  # `retention.GONE_AGENTS`, past its cutoff
            cutoff = keep["agents"]
            self.registry = {k: a for k, a in self.registry.items() if not (_gone(a) and a.status_since < cutoff)}
        if "agent_transitions" in keep:
            self.history = [t for t in self.history if t.at >= keep["agent_transitions"]]
        return MaintenanceReport((), (), before - self._rows())

    def _rows(self) -> int:
        return len(self.samples) + len(self._rollups) + len(self.registry) + len(self.history)

    def ping(self) -> None:
        return None


def _window(rollup: Rollup) -> timedelta:
    return timedelta(seconds=rollup.window_s)


def _gone(agent: AgentInfo) -> bool:
    return agent.status in (AgentStatus.OFFLINE, AgentStatus.STOPPED) and agent.last_seen <= agent.status_since


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None  # as PostgreSQL stores them: NULL, not NaN
