"""The alert manager's values: signals in, alerts, silences, notifications, events and the policy.

Frozen dataclasses and enums, no I/O; `vsmmon.alerts.manager` holds the rules that move them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

Kind = Literal["firing", "recovery", "escalation", "reminder"]
Reason = Literal["cooldown", "hourly_cap", "silenced", "not_notified"]
EventName = Literal["firing", "notified", "suppressed", "acknowledged", "escalated", "resolved"]
Route = Literal["dashboard", "s3", "s5", "webhook"]
CAP_WINDOW_S = 3600.0
RESERVED_LABELS = frozenset({"alertname", "type", "target", "severity", "fingerprint"})
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # Prometheus label names, so webhook receivers accept them


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertStatus(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def fingerprint(type: str, target: str, labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit hash of type, target and labels (label order does not matter)."""
    key = json.dumps([type, target, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signal:
    """A condition a stage reports as holding now; `resource` routes to S3, critical `system_wide` to S5."""

    type: str
    target: str
    severity: Severity
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    resource: bool = False
    system_wide: bool = False

    def __post_init__(self) -> None:
        bad = sorted(k for k in self.labels if k in RESERVED_LABELS or not _LABEL_NAME.fullmatch(k))
        if bad:
            raise ValueError(f"signal {self.type}/{self.target}: label names reserved or not Prometheus-valid: {bad}")
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "labels", dict(sorted(self.labels.items())))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.type, self.target, self.labels)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert instance. The fields up to `acknowledged_by` are the columns of `alerts` (`row()`);
    the rest is the manager's working state, carried in `AlertState` between steps."""

    id: UUID
    fingerprint: str
    type: str
    target: str
    severity: Severity
    labels: Mapping[str, str]
    status: AlertStatus
    started_at: datetime  # first seen (pending began)
    updated_at: datetime  # last change of any field
    summary: str = ""
    escalation_level: int = 0
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    fired_at: datetime | None = None  # became firing: Alertmanager's startsAt
    last_notified_at: datetime | None = None  # last delivered firing / escalation / reminder of this instance
    clear_since: datetime | None = None  # signal absent since (hysteresis)
    escalate_at: datetime | None = None  # next escalation if still firing unacknowledged
    owed: Kind | None = None  # a notification decided but not delivered yet
    held_by: Reason | None = None  # why `owed` is held, as last recorded
    resource: bool = False
    system_wide: bool = False

    def row(self) -> dict[str, object]:
        """The alert as a row of the `alerts` table."""
        return {
            "id": self.id, "fingerprint": self.fingerprint, "type": self.type, "severity": str(self.severity),
            "target": self.target, "labels": dict(self.labels), "status": str(self.status),
            "escalation_level": self.escalation_level, "summary": self.summary, "started_at": self.started_at,
            "updated_at": self.updated_at, "resolved_at": self.resolved_at, "acknowledged_by": self.acknowledged_by,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes notifications of alerts matching every matcher until `expires_at`. Matchers compare exactly:
    keys "type" (or "alertname"), "target", "severity", "fingerprint", else a label name."""

    id: UUID
    matchers: Mapping[str, str]
    expires_at: datetime
    created_by: str
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher (an empty one would mute everything)")

    def active(self, now: datetime) -> bool:
        return now < self.expires_at

    def matches(self, alert: Alert) -> bool:
        fields = {"type": alert.type, "alertname": alert.type, "target": alert.target,
                  "severity": str(alert.severity), "fingerprint": alert.fingerprint}  # fmt: skip
        return all((fields[k] if k in fields else alert.labels.get(k)) == v for k, v in self.matchers.items())


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification to deliver now to each route; `over_cap`: a critical sent past the hourly cap."""

    alert: Alert
    kind: Kind
    routes: tuple[Route, ...]
    at: datetime
    over_cap: bool = False


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A notification held back (or, for a recovery, not sent), and why."""

    alert_id: UUID
    fingerprint: str
    kind: Kind
    reason: Reason
    at: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One row of `alert_events`."""

    alert_id: UUID
    at: datetime
    event: EventName
    detail: Mapping[str, object] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        return {"at": self.at, "alert_id": self.alert_id, "event": self.event, "detail": dict(self.detail)}


DEFAULT_PENDING_S: Mapping[Severity, float] = {Severity.CRITICAL: 0.0, Severity.WARNING: 30.0, Severity.INFO: 30.0}


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The manager's knobs; the module docstring states the rules they feed."""

    pending_s: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_PENDING_S))
    resolve_after_s: float = 60.0
    cooldown_s: float = 300.0
    max_per_hour: int = 20
    type_share: float = 0.5  # of the hourly cap, at most this share for one alert type (its own budget)
    escalate_after_s: float = 900.0
    max_escalation_level: int = 3
    reminder_after_s: float | None = 4 * 3600.0
    webhook: bool = False

    def __post_init__(self) -> None:
        if self.escalate_after_s <= 0 or self.max_per_hour < 1 or min(self.resolve_after_s, self.cooldown_s) < 0:
            raise ValueError(f"invalid alert policy {self!r}")
        if not 0 < self.type_share <= 1:
            raise ValueError(f"type_share must be in (0, 1], got {self.type_share}")
        if self.reminder_after_s is not None and self.reminder_after_s <= 0:
            raise ValueError(f"reminder_after_s must be positive or None, got {self.reminder_after_s}")

    @property
    def per_type(self) -> int:
        """Notifications one alert type may have in the hourly window (its budget within the cap)."""
        return max(1, int(self.max_per_hour * self.type_share))


DEFAULT_POLICY = AlertPolicy()


@dataclass(frozen=True, slots=True)
class AlertState:
    """What one step hands to the next. `closed`: the alerts the transition that made this state resolved
    (to persist; replaced by every transition, so persisting it twice is a harmless upsert)."""

    alerts: Mapping[str, Alert] = field(default_factory=dict)  # open alerts by fingerprint
    silences: tuple[Silence, ...] = ()
    sent: tuple[datetime, ...] = ()  # the newest deliveries counted by the hourly cap (at most its size)
    sent_by_type: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)  # the same, per alert type
    last_sent: Mapping[str, tuple[datetime, Severity]] = field(default_factory=dict)  # per fingerprint, cooldown
    closed: tuple[Alert, ...] = ()
