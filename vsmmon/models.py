"""Domain values: frozen dataclasses and string enums, free of any I/O."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from vsmmon.sketch import EMPTY, Sketch

ROLLUP_WINDOWS_S: tuple[int, ...] = (300, 3600, 86400)
"""The trend windows of the seed design: 5 min, 1 h, 24 h."""


class AgentKind(StrEnum):
    """What reports: a Celery worker of the fleet, the host it runs on, or a pushed agent type."""

    CELERY_WORKER = "celery_worker"
    HOST = "host"
    LLM_WORKER = "llm_worker"
    WORKER = "worker"
    SENSOR = "sensor"
    API = "api"
    QUEUE = "queue"
    BROKER = "broker"
    PIPELINE = "pipeline"  # vsmmon's own processes that are not Celery workers: HTTP service, beat


class AgentStatus(StrEnum):
    """Liveness, as the registry judges it (`vsmmon.collect.registry`)."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    STOPPED = "stopped"  # it said goodbye: stopped on purpose (scale-in, restart), not lost


LIVE_STATUSES = frozenset({AgentStatus.ONLINE, AgentStatus.STALE})
METRIC_MAX = 3.4028234663852886e38
"""The largest magnitude a metric may have (float32's range): past it a value is no reading, and is refused."""

PUSHED_KINDS = frozenset({AgentKind.LLM_WORKER, AgentKind.WORKER, AgentKind.SENSOR, AgentKind.API})
"""The agent types of the seed design that push their metrics instead of being asked."""


def utc(value: datetime) -> datetime:
    """Return `value` as a tz-aware UTC datetime; a naive one is refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (vsmmon uses tz-aware UTC everywhere)")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one metric of one agent."""

    ts: datetime
    agent_id: str
    metric: str
    value: float


@dataclass(frozen=True, slots=True)
class AgentReport:
    """What one agent said in one collection: its metrics, or why it could not say anything."""

    agent_id: str
    kind: AgentKind
    host: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    version: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)
    queues: tuple[str, ...] = ()
    config_hash: str = ""
    interval_s: float | None = None  # a pushed agent's own period; None: the collection interval
    latest: Mapping[str, float] = field(default_factory=dict)
    """Figures the registry keeps as the agent's latest and no series stores (`names.latest_only`: per-task
    runtime histograms, read on `/metrics`); the registry's `AgentInfo.metrics` holds both."""

    def __post_init__(self) -> None:
        bad = [name for name, value in (*self.metrics.items(), *self.latest.items()) if not math.isfinite(value)]
        if bad:
            raise ValueError(f"agent {self.agent_id!r}: non-finite values for {', '.join(sorted(bad))}")


@dataclass(frozen=True, slots=True)
class Collection:
    """One collection cycle: who answered with what, who did not, how long it took."""

    id: UUID
    started_at: datetime
    duration_ms: float
    reports: tuple[AgentReport, ...]
    unreachable: tuple[str, ...] = ()
    interval_s: float = 5.0  # the collection period: the reporting interval of the workers asked
    stopped: tuple[str, ...] = ()  # workers that said goodbye this cycle (a clean stop: `vsmmon.agent.goodbye`)
    shard: int = 0  # which part of its cycle this is (`vsmmon.collect.shards`): one collection per shard
    shards: int = 1

    @property
    def agent_count(self) -> int:
        return len(self.reports)

    @property
    def sample_count(self) -> int:
        return sum(len(r.metrics) for r in self.reports)

    def samples(self) -> Iterator[Sample]:
        """Every metric of every report as a `Sample` stamped with the cycle's start."""
        for report in self.reports:
            for metric, value in report.metrics.items():
                yield Sample(self.started_at, report.agent_id, metric, value)


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """A persisted collection as `vsmmon status` and the API show it."""

    id: UUID
    started_at: datetime
    duration_ms: float
    agent_count: int
    sample_count: int
    unreachable: tuple[str, ...]
    persisted_at: datetime
    aggregated_at: datetime | None
    shard: int = 0  # its part of the cycle (`vsmmon.collect.shards`); a cycle's summary is shard 0's
    shards: int = 1
    shards_stored: int = 1  # a cycle's summary (`Store.latest_collection`): its shards' collections stored so far


@dataclass(frozen=True, slots=True)
class WindowsClosed:
    """What closing the 5 min windows before a cutoff did (`Store.close_windows`)."""

    cutoff: datetime
    collections: int  # claimed collections rolled up by this close
    windows: int  # 5 min windows computed from their samples
    late: int  # of those, windows closed before (late collections merged into them)
    hours: int  # 1 h windows computed (closed now, or holding a late collection)
    days: int


@dataclass(frozen=True, slots=True)
class RollupProgress:
    """How far the 5 min windows are stored, and what still waits for a close (`vsmmon status`, /metrics)."""

    closed_to: datetime | None  # every 5 min window before this is stored (and folded into hours and days)
    pending: int  # collections counted in the rollups, not yet in a stored window
    oldest_pending: datetime | None


@dataclass(frozen=True, slots=True)
class Rollup:
    """Summary of one metric of one agent over one window (count, min, max, sum, last, a quantile sketch)."""

    agent_id: str
    metric: str
    window_s: int
    window_start: datetime
    count: int
    min: float
    max: float
    sum: float
    last: float
    last_ts: datetime
    sketch: Sketch = EMPTY  # p50/p95/p99 within `vsmmon.sketch.ALPHA`; empty for rollups stored before it

    @property
    def mean(self) -> float:
        return self.sum / self.count

    def quantile(self, q: float) -> float | None:
        """The window's q-quantile from its sketch (None when it has none)."""
        return self.sketch.quantile(q)

    def merge(self, other: Rollup) -> Rollup:
        """Combine two rollups of the same key; the order of merging does not matter."""
        if (self.agent_id, self.metric, self.window_s, self.window_start) != (
            other.agent_id,
            other.metric,
            other.window_s,
            other.window_start,
        ):
            raise ValueError("cannot merge rollups of different keys")
        newer = other if other.last_ts >= self.last_ts else self
        return Rollup(
            self.agent_id,
            self.metric,
            self.window_s,
            self.window_start,
            self.count + other.count,
            min(self.min, other.min),
            max(self.max, other.max),
            self.sum + other.sum,
            newer.last,
            newer.last_ts,
            self.sketch.merge(other.sketch),
        )


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as the registry knows it, with its latest metrics (API, dashboard, CLI)."""

    agent_id: str
    kind: AgentKind
    host: str
    version: str
    status: AgentStatus
    status_since: datetime
    first_seen: datetime
    last_seen: datetime
    interval_s: float
    config_hash: str
    queues: tuple[str, ...]
    metrics: Mapping[str, float]
    errors: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AgentKind(self.kind))  # a stored row's text becomes the enum
        object.__setattr__(self, "status", AgentStatus(self.status))

    @property
    def live(self) -> bool:
        """Online or stale: seen within 2 x its interval (`vsmmon.collect.registry`)."""
        return self.status in LIVE_STATUSES


class PainCondition(StrEnum):
    """What algedonic pain is about: the hard conditions that bypass S3 and go straight to S5."""

    NO_CONSUMER = "no_consumer"  # target "queue NAME", value the backlog
    UNREACHABLE = "unreachable"  # target "broker", detail the error
    ERROR_RATE = "error_rate"  # target "fleet", value the error rate
    FAST_DROP = "fast_drop"  # target "viability", value viability now, detail "from 0.90"
    CONTROL_FAILED = "control_failed"  # target the worker S3 acted on, value the wait (s), detail the action


@dataclass(frozen=True, slots=True)
class Pain:
    """One algedonic condition. `condition` and `target` are its identity (the alert's fingerprint);
    `value` and `detail` only change what people read."""

    condition: PainCondition
    target: str
    value: float | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", PainCondition(self.condition))

    @property
    def message(self) -> str:
        """The sentence the dashboard, the CLI and the alert's summary show."""
        match self.condition:
            case PainCondition.NO_CONSUMER:
                count = "" if self.value is None else f"{self.value:.0f} "
                return f"{self.target} has {count}messages and no live consumer"
            case PainCondition.UNREACHABLE:
                return f"broker unreachable: {self.detail}" if self.detail else "broker unreachable"
            case PainCondition.ERROR_RATE:
                rate = "" if self.value is None else f" {self.value:.0%}"
                return f"fleet error rate{rate} over 50 %"  # the threshold of `vsmmon.health.assessment.pain`
            case PainCondition.FAST_DROP:
                fell = f"viability fell {self.detail}".rstrip()
                now = "" if self.value is None else f" to {self.value:.2f}"
                return f"{fell}{now} since the last check"
            case PainCondition.CONTROL_FAILED:
                within = "" if self.value is None else f" within {self.value:.0f} s"
                action = f" ({self.detail})" if self.detail else ""
                return f"S3 action on {self.target} did not restore health{within}{action}"


@dataclass(frozen=True, slots=True)
class Bottleneck:
    """An agent whose memory or saturation factor is below 1 (factor "memory", "queue"), or a queue
    whose backlog is not draining (target "queue NAME", factor "backlog", value the backlog)."""

    target: str
    factor: str
    value: float

    @property
    def message(self) -> str:
        """The sentence the dashboard, the CLI and the alert's summary show."""
        if self.factor == "backlog":
            return f"{self.target}: backlog {self.value:.0f} not draining"
        return f"{self.target}: {self.factor} {self.value:.2f}"


HealthScope = Literal["agent", "system", "viability"]


@dataclass(frozen=True, slots=True)
class HealthRow:
    """One stored score of an assessment: an agent's h, a system's (S1-S5) or the viability, with the
    inputs it came from (a viability row's inputs are the whole assessment's summary)."""

    at: datetime
    scope: HealthScope
    subject: str
    score: float | None
    status: str
    inputs: Mapping[str, Any]
    check_id: UUID | None = None

    def row(self) -> dict[str, object]:
        """The row of `health_assessments`."""
        return {"at": self.at, "scope": self.scope, "subject": self.subject, "score": self.score,
                "status": self.status, "inputs": dict(self.inputs), "check_id": self.check_id}  # fmt: skip
