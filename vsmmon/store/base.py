"""The `Store` protocol: what the pipeline needs from durable storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from vsmmon.analyse.analysis import AnalysisResult, DueForecast
from vsmmon.analyse.recommend import Recommendation
from vsmmon.collect.registry import AgentRecord, Transition
from vsmmon.models import (
    AgentInfo,
    AgentKind,
    AgentStatus,
    Collection,
    CollectionSummary,
    HealthRow,
    Rollup,
    RollupProgress,
    WindowsClosed,
)
from vsmmon.store._partitions import MaintenanceReport
from vsmmon.store.retention import Policy


@dataclass(frozen=True, slots=True)
class AgentScore:
    """One agent's score in an assessment, with its factors' scores (not the inputs they came from)."""

    score: float | None
    state: str
    factors: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class GridRow:
    """An agent's identity and status with only the metrics asked for (the dashboard's grid)."""

    agent_id: str
    kind: AgentKind
    host: str
    status: AgentStatus
    status_since: datetime
    last_seen: datetime
    interval_s: float
    metrics: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AgentKind(self.kind))  # a stored row's text becomes the enum
        object.__setattr__(self, "status", AgentStatus(self.status))


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    horizon_s: int
    value: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class StoredForecast:
    """The forecasts of one series made at `at`, by horizon."""

    at: datetime
    points: tuple[ForecastPoint, ...]


@dataclass(frozen=True, slots=True)
class StoredTrend:
    """The Holt level and slope of one series at `at` (None where the fit gave no finite value), the largest
    anomaly score of its samples since the analysis before, and when its level changed within the window."""

    at: datetime
    level: float | None
    trend_per_s: float | None
    anomaly: float | None = None
    change_at: datetime | None = None


def change_time(at: datetime, change_at_s: float | None) -> datetime | None:
    """A trend's change point as a time: its series' seconds are relative to the analysis time `at`."""
    return None if change_at_s is None else at + timedelta(seconds=change_at_s)


@dataclass(frozen=True, slots=True)
class CollectionDuration:
    collection_id: UUID
    persisted_at: datetime
    duration_ms: float


class Store(Protocol):
    """Durable storage of collections, samples, rollups and the agent registry.

    Every write is idempotent on its natural key: storing a collection twice stores it once, and
    a collection's samples count in the rollups once.
    """

    def save_collection(self, collection: Collection, now: datetime) -> bool:
        """Store a collection and its samples in one transaction; False when it was already stored."""
        ...

    def update_registry(self, collection: Collection) -> None:
        """Register the collection's agents with their latest report; an older collection changes nothing."""
        ...

    def aggregate_collection(self, collection_id: UUID, now: datetime) -> bool:
        """Count a stored collection's samples in the rollups, once; False when it was aggregated before.

        Raises:
            NotFound: no collection has this id.
        """
        ...

    def close_due(self, started_at: datetime) -> datetime | None:
        """The cutoff `close_windows` should run to once a collection started at `started_at` is aggregated.

        None when nothing is due: its window is the one still open (or the store merges every collection at once).
        """
        ...

    def close_windows(self, cutoff: datetime, now: datetime) -> WindowsClosed:
        """Store the 5 min windows before `cutoff` (and the hours and days that closes); idempotent."""
        ...

    def rollup_progress(self) -> RollupProgress:
        """How far windows are stored, and how many aggregated collections wait for a close."""
        ...

    def latest_collection(self) -> CollectionSummary | None:
        """The most recent stored collection, if any."""
        ...

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        """One stored collection.

        Raises:
            NotFound: no collection has this id.
        """
        ...

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        """Stored rollups of one series, oldest window first."""
        ...

    def agent_records(self) -> list[AgentRecord]:
        """Every agent's liveness facts, for the registry to judge."""
        ...

    def apply_transitions(self, transitions: list[Transition]) -> int:
        """Record transitions whose agent is still in their `from_status`; returns how many applied."""
        ...

    def agents(self, metrics: Sequence[str] | None = None) -> list[AgentInfo]:
        """Every registered agent with its latest metrics (only `metrics` of them, when given), by id."""
        ...

    def transitions(self, agent_id: str) -> list[Transition]:
        """One agent's status history, oldest first."""
        ...

    def save_health(self, rows: Iterable[HealthRow]) -> int:
        """Store assessment rows (agent, system, viability); a row already stored is left alone."""
        ...

    def health_history(self, scope: str, subject: str, since: datetime) -> list[HealthRow]:
        """Stored rows of one subject since a time, oldest first: the scheduled assessments (ad-hoc checks apart)."""
        ...

    def health_checks(self, since: datetime) -> list[HealthRow]:
        """The viability rows of the ad-hoc checks made since a time, newest first."""
        ...

    def health_check(self, check_id: UUID) -> list[HealthRow]:
        """Every row of one ad-hoc check (agents, systems, viability); none for an unknown id."""
        ...

    def save_analysis(self, result: AnalysisResult) -> int:
        """Store an analysis: trends, forecasts, recommendations (upserted on their fingerprint)."""
        ...

    def recommendations(self, now: datetime) -> list[Recommendation]:
        """Recommendations not yet expired, most confident first."""
        ...

    def due_forecasts(self, since: datetime, until: datetime) -> list[DueForecast]:
        """Stored forecasts not yet scored whose due time is in [since, until]."""
        ...

    def score_forecasts(self, scored: Sequence[tuple[DueForecast, float]]) -> int:
        """Record the value observed for each forecast; returns how many were recorded."""
        ...

    def forecast_accuracy(self, since: datetime, until: datetime) -> tuple[float | None, int]:
        """sMAPE of the scored forecasts due in [since, until] (`vsmmon.forecast.smape`), and how many there are."""
        ...

    def agent_scores(self, since: datetime) -> tuple[datetime | None, dict[str, AgentScore]]:
        """The time of the latest viability assessment since `since` and the agents' scores in it, by agent."""
        ...

    def grid(self, metrics: Sequence[str]) -> list[GridRow]:
        """Every agent, by id, with only the named metrics it reported (a name not an identifier is ignored)."""
        ...

    def latest_forecast(self, agent_id: str, metric: str) -> StoredForecast | None:
        """The latest stored forecast of one series, by horizon."""
        ...

    def latest_trend(self, agent_id: str, metric: str, window_s: int) -> StoredTrend | None:
        """The latest stored trend of one series over `window_s`."""
        ...

    def collection_durations(self, since: datetime | None) -> list[CollectionDuration]:
        """The collections persisted at or after `since` (all with None), oldest first."""
        ...

    def maintain(self, rules: list[Policy], now: datetime, ahead: timedelta) -> MaintenanceReport:
        """Apply retention: partitions created ahead, expired ones dropped, small tables (gone agents too) trimmed."""
        ...

    def ping(self) -> None:
        """Check the store answers.

        Raises:
            StoreUnavailable: it does not.
        """
        ...
