"""JSON forms of the alert manager's values: its carried state (kept in Redis between steps), the signals
the stages send it, and the notifications it sends to S3, S5, the dashboard and webhook receivers.

Every decoder checks what it reads and raises `InvalidInput` naming the field, so a malformed message is
refused with a reason instead of corrupting the state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from vsmmon import names
from vsmmon.alerts.model import Alert, AlertState, AlertStatus, Kind, Notification, Severity, Signal, Silence
from vsmmon.errors import InvalidInput
from vsmmon.models import utc

_KINDS = ("firing", "recovery", "escalation", "reminder")
_REASONS = ("cooldown", "hourly_cap", "silenced", "not_notified")
_ROUTES = ("dashboard", "s3", "s5", "webhook")
_SEVERITIES = frozenset(s.value for s in Severity)
MAX_TEXT = 2_000  # summaries and label values longer than this are refused, not truncated silently


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(name, f"expected an ISO 8601 time, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, f"not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidInput(name, "a time needs its UTC offset")
    return utc(parsed)


def _opt_time(value: Any, name: str) -> datetime | None:
    return None if value is None else _parse_time(value, name)


def _text(value: Any, name: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(name, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(name, f"longer than {MAX_TEXT} characters")
    if not empty and not value.strip():
        raise InvalidInput(name, "must not be empty")
    return value


def _labels(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInput(name, f"expected an object of strings, got {type(value).__name__}")
    return {_text(k, f"{name} key"): _text(v, f"{name}.{k}") for k, v in value.items()}


def _field(data: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in data:
        raise InvalidInput(f"{prefix}{key}", "missing")
    return data[key]


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(name, f"expected an object, got {type(value).__name__}")
    return value


def signal_to_dict(s: Signal) -> dict[str, Any]:
    return {
        "type": s.type, "target": s.target, "severity": str(s.severity), "labels": dict(s.labels),
        "summary": s.summary, "resource": s.resource, "system_wide": s.system_wide,
    }  # fmt: skip


def signal_from_dict(raw: Any, name: str = "signal") -> Signal:
    data = _mapping(raw, name)
    severity = _text(_field(data, "severity", f"{name}."), f"{name}.severity")
    if severity not in _SEVERITIES:
        raise InvalidInput(f"{name}.severity", f"expected info, warning or critical, got {severity[:40]!r}")
    flags = {}
    for flag in ("resource", "system_wide"):
        value = data.get(flag, False)
        if not isinstance(value, bool):
            raise InvalidInput(f"{name}.{flag}", f"expected true or false, got {type(value).__name__}")
        flags[flag] = value
    try:
        return Signal(
            type=_text(_field(data, "type", f"{name}."), f"{name}.type", empty=False),
            target=_text(_field(data, "target", f"{name}."), f"{name}.target"),
            severity=Severity(severity),
            labels=_labels(data.get("labels", {}), f"{name}.labels"),
            summary=_text(data.get("summary", ""), f"{name}.summary"),
            **flags,
        )
    except ValueError as e:
        raise InvalidInput(f"{name}.labels", str(e)) from None


def signals_from_list(raw: Any) -> list[Signal]:
    if not isinstance(raw, list):
        raise InvalidInput("signals", f"expected a list, got {type(raw).__name__}")
    return [signal_from_dict(item, f"signals[{i}]") for i, item in enumerate(raw)]


def alert_to_dict(a: Alert) -> dict[str, Any]:
    """Every field, times as ISO 8601: the carried state and the messages both use it."""
    return {
        "id": str(a.id), "fingerprint": a.fingerprint, "type": a.type, "target": a.target,
        "severity": str(a.severity), "labels": dict(a.labels), "status": str(a.status),
        "started_at": _time(a.started_at), "updated_at": _time(a.updated_at), "summary": a.summary,
        "escalation_level": a.escalation_level, "resolved_at": _time(a.resolved_at),
        "acknowledged_by": a.acknowledged_by, "fired_at": _time(a.fired_at),
        "last_notified_at": _time(a.last_notified_at), "clear_since": _time(a.clear_since),
        "escalate_at": _time(a.escalate_at), "owed": a.owed, "held_by": a.held_by,
        "resource": a.resource, "system_wide": a.system_wide,
    }  # fmt: skip


def alert_from_dict(raw: Any, name: str = "alert") -> Alert:
    data = _mapping(raw, name)
    p = f"{name}."

    def get(key: str) -> Any:
        return _field(data, key, p)

    status, severity = str(get("status")), str(get("severity"))
    if status not in {s.value for s in AlertStatus}:
        raise InvalidInput(p + "status", f"unknown status {status[:40]!r}")
    if severity not in _SEVERITIES:
        raise InvalidInput(p + "severity", f"unknown severity {severity[:40]!r}")
    owed, held = data.get("owed"), data.get("held_by")
    if owed is not None and owed not in _KINDS:
        raise InvalidInput(p + "owed", f"unknown notification kind {str(owed)[:40]!r}")
    if held is not None and held not in _REASONS:
        raise InvalidInput(p + "held_by", f"unknown reason {str(held)[:40]!r}")
    level = data.get("escalation_level", 0)
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise InvalidInput(p + "escalation_level", "expected a non-negative integer")
    try:
        alert_id = UUID(str(get("id")))
    except ValueError:
        raise InvalidInput(p + "id", "not a UUID") from None
    by = data.get("acknowledged_by")
    return Alert(
        id=alert_id,
        fingerprint=_text(get("fingerprint"), p + "fingerprint", empty=False),
        type=_text(get("type"), p + "type", empty=False),
        target=_text(get("target"), p + "target"),
        severity=Severity(severity),
        labels=_labels(data.get("labels", {}), p + "labels"),
        status=AlertStatus(status),
        started_at=_parse_time(get("started_at"), p + "started_at"),
        updated_at=_parse_time(get("updated_at"), p + "updated_at"),
        summary=_text(data.get("summary", ""), p + "summary"),
        escalation_level=level,
        resolved_at=_opt_time(data.get("resolved_at"), p + "resolved_at"),
        acknowledged_by=None if by is None else _text(by, p + "acknowledged_by"),
        fired_at=_opt_time(data.get("fired_at"), p + "fired_at"),
        last_notified_at=_opt_time(data.get("last_notified_at"), p + "last_notified_at"),
        clear_since=_opt_time(data.get("clear_since"), p + "clear_since"),
        escalate_at=_opt_time(data.get("escalate_at"), p + "escalate_at"),
        owed=cast(Kind | None, owed),
        held_by=held,
        resource=bool(data.get("resource", False)),
        system_wide=bool(data.get("system_wide", False)),
    )


def plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row for JSON: times as ISO 8601, UUIDs as text."""
    return {k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v)
            for k, v in row.items()}  # fmt: skip


def public_alert(a: Alert) -> dict[str, Any]:
    """What the API, the dashboard and the CLI show: the `alerts` row, times as ISO 8601."""
    return plain_row(a.row())


def alert_message(a: Alert, event: str | None = None, **extra: Any) -> str:
    """The dashboard's message about an alert: `event` is its status unless a notification names its kind."""
    return names.dashboard_message("alert", public_alert(a), event=event or str(a.status), **extra)


def silence_to_dict(s: Silence) -> dict[str, Any]:
    return {"id": str(s.id), "matchers": dict(s.matchers), "expires_at": _time(s.expires_at),
            "created_by": s.created_by, "comment": s.comment}  # fmt: skip


def silence_from_dict(raw: Any, name: str = "silence") -> Silence:
    data = _mapping(raw, name)
    try:
        silence_id = UUID(str(_field(data, "id", f"{name}.")))
    except ValueError:
        raise InvalidInput(f"{name}.id", "not a UUID") from None
    matchers = _labels(_field(data, "matchers", f"{name}."), f"{name}.matchers")
    if not matchers:
        raise InvalidInput(f"{name}.matchers", "at least one matcher is needed (an empty one would mute everything)")
    return Silence(
        id=silence_id,
        matchers=matchers,
        expires_at=_parse_time(_field(data, "expires_at", f"{name}."), f"{name}.expires_at"),
        created_by=_text(_field(data, "created_by", f"{name}."), f"{name}.created_by", empty=False),
        comment=_text(data.get("comment", ""), f"{name}.comment"),
    )


def state_to_dict(state: AlertState) -> dict[str, Any]:
    """The carried state; delivery times (cap window) as integer microseconds since the epoch: cheap to
    read and write, and exact, so reading and writing back an unchanged state changes nothing."""
    return {
        "alerts": [alert_to_dict(a) for a in state.alerts.values()],
        "silences": [silence_to_dict(s) for s in state.silences],
        "sent": [_micros(t) for t in state.sent],
        "sent_by_type": {kind: [_micros(t) for t in times] for kind, times in state.sent_by_type.items()},
        "last_sent": {fp: [_micros(at), str(sev)] for fp, (at, sev) in state.last_sent.items()},
    }


def state_from_dict(raw: Any) -> AlertState:
    data = _mapping(raw, "state")
    alerts = [alert_from_dict(a, f"state.alerts[{i}]") for i, a in enumerate(data.get("alerts", []))]
    severities = {s.value: s for s in Severity}
    try:  # one check for the whole mapping: a storm leaves a thousand of these
        last_sent = {fp: (_from_micros(at), severities[sev])
                     for fp, (at, sev) in _mapping(data.get("last_sent", {}), "state.last_sent").items()}  # fmt: skip
        sent = tuple(_from_micros(t) for t in data.get("sent", []))
        by_type = _mapping(data.get("sent_by_type", {}), "state.sent_by_type")
        sent_by_type = {str(kind): tuple(_from_micros(t) for t in times) for kind, times in by_type.items()}
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise InvalidInput(
            "state.last_sent", f"expected {{fingerprint: [epoch microseconds, severity]}}: {e}"
        ) from None
    return AlertState(
        alerts={a.fingerprint: a for a in alerts},
        silences=tuple(silence_from_dict(s, f"state.silences[{i}]") for i, s in enumerate(data.get("silences", []))),
        sent=sent,
        sent_by_type=sent_by_type,
        last_sent=last_sent,
    )


def notification_to_dict(n: Notification) -> dict[str, Any]:
    return {"alert": alert_to_dict(n.alert), "kind": n.kind, "routes": list(n.routes), "at": _time(n.at),
            "over_cap": n.over_cap}  # fmt: skip


def notification_from_dict(raw: Any) -> Notification:
    data = _mapping(raw, "notification")
    kind = _field(data, "kind", "notification.")
    if kind not in _KINDS:
        raise InvalidInput("notification.kind", f"unknown kind {str(kind)[:40]!r}")
    routes = _field(data, "routes", "notification.")
    if not isinstance(routes, list) or any(r not in _ROUTES for r in routes):
        raise InvalidInput("notification.routes", f"expected a list of {', '.join(_ROUTES)}")
    return Notification(
        alert=alert_from_dict(_field(data, "alert", "notification."), "notification.alert"),
        kind=kind,
        routes=tuple(routes),
        at=_parse_time(_field(data, "at", "notification."), "notification.at"),
        over_cap=bool(data.get("over_cap", False)),
    )


def finite(value: Any, name: str) -> float:
    """A finite number from a message, or `InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(name, f"expected a finite number, got {value!r:.40}")
    return float(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    return (utc(at) - _EPOCH) // _MICRO


def _from_micros(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected integer microseconds, got {type(value).__name__}")
    return _EPOCH + value * _MICRO
