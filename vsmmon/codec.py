"""JSON form of domain values, for the Redis staging buffer and the API. JSON only: no pickle anywhere."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from vsmmon.errors import InvalidInput
from vsmmon.models import AgentKind, AgentReport, Collection, CollectionSummary, RollupProgress, utc


def report_to_dict(r: AgentReport) -> dict[str, Any]:
    return {
        "agent_id": r.agent_id,
        "kind": r.kind.value,
        "host": r.host,
        "version": r.version,
        "metrics": dict(r.metrics),
        "errors": dict(r.errors),
        "queues": list(r.queues),
        "config_hash": r.config_hash,
        "interval_s": r.interval_s,
    }


def report_from_dict(r: Any) -> AgentReport:
    """Raises KeyError, TypeError, ValueError or OverflowError on a malformed dict; callers wrap them."""
    return AgentReport(
        agent_id=str(r["agent_id"]),
        kind=AgentKind(r["kind"]),
        host=str(r["host"]),
        version=str(r["version"]),
        metrics={str(k): float(v) for k, v in r["metrics"].items()},
        errors={str(k): str(v) for k, v in r["errors"].items()},
        queues=tuple(str(q) for q in r.get("queues", ())),
        config_hash=str(r.get("config_hash", "")),
        interval_s=None if r.get("interval_s") is None else float(r["interval_s"]),
    )


def report_to_json(report: AgentReport) -> str:
    return json.dumps(report_to_dict(report), separators=(",", ":"), allow_nan=False)


def report_from_json(text: str | bytes) -> AgentReport:
    """Read one report back.

    Raises:
        InvalidInput: the text is not a report in the form `report_to_json` writes.
    """
    try:
        return report_from_dict(json.loads(text))
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as e:
        raise InvalidInput("report", f"not an agent report: {e!r}") from e


def collection_to_json(collection: Collection) -> str:
    """Serialise a collection for staging."""
    return json.dumps(
        {
            "id": str(collection.id),
            "started_at": collection.started_at.isoformat(),
            "duration_ms": collection.duration_ms,
            "unreachable": list(collection.unreachable),
            "interval_s": collection.interval_s,
            "stopped": list(collection.stopped),
            "reports": [report_to_dict(r) for r in collection.reports],
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def collection_from_json(text: str | bytes) -> Collection:
    """Read a staged collection back.

    Raises:
        InvalidInput: the text is not a collection in the form `collection_to_json` writes.
    """
    try:
        raw = json.loads(text)
        return Collection(
            id=UUID(raw["id"]),
            started_at=utc(datetime.fromisoformat(raw["started_at"])),
            duration_ms=float(raw["duration_ms"]),
            unreachable=tuple(str(u) for u in raw["unreachable"]),
            reports=tuple(report_from_dict(r) for r in raw["reports"]),
            interval_s=float(raw.get("interval_s", 5.0)),
            stopped=tuple(str(s) for s in raw.get("stopped", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as e:
        raise InvalidInput("collection", f"not a staged collection: {e!r}") from e


def progress_to_dict(progress: RollupProgress) -> dict[str, Any]:
    """`vsmmon status --json`: how far the 5 min windows are stored, what waits for a close."""
    return {
        "closed_to": progress.closed_to.isoformat() if progress.closed_to else None,
        "pending": progress.pending,
        "oldest_pending": progress.oldest_pending.isoformat() if progress.oldest_pending else None,
    }


def summary_to_dict(summary: CollectionSummary) -> dict[str, Any]:
    """The API and `vsmmon status --json` form of a collection summary."""
    return {
        "id": str(summary.id),
        "started_at": summary.started_at.isoformat(),
        "duration_ms": round(summary.duration_ms, 3),
        "agent_count": summary.agent_count,
        "sample_count": summary.sample_count,
        "unreachable": list(summary.unreachable),
        "persisted_at": summary.persisted_at.isoformat(),
        "aggregated_at": summary.aggregated_at.isoformat() if summary.aggregated_at else None,
    }
