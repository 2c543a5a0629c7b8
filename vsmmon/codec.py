"""JSON form of domain values, for the Redis staging buffer and the API. JSON only: no pickle anywhere.

Also the one rule for text that comes from outside (`control_character`): the API's request models, the
readers of pushed reports, the collector and the persist task all apply it, so one hostile string can
never fail a write of anyone else's data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from vsmmon.errors import InvalidInput
from vsmmon.models import AgentKind, AgentReport, Collection, CollectionSummary, RollupProgress, utc

_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")  # tab, LF and CR allowed
REPLACEMENT = "\ufffd"


def control_character(text: str, *, prose: bool = False) -> str | None:
    """The first character of `text` that free text must not hold, as "U+0000 at position 3"; None if none.

    Refused: every C0 control (U+0000-U+001F: NUL, which PostgreSQL cannot store in text or jsonb, and the
    escapes that rewrite a terminal showing the text), DEL (U+007F), every C1 control (U+0080-U+009F: U+009B
    is a terminal's CSI too) and lone surrogates (U+D800-U+DFFF: not UTF-8, so no driver can send them).
    `prose` (comments) keeps TAB, LF and CR, for text of several lines. Format characters (U+200B, U+202E)
    are printable text here: the names that must be plain (agent ids, metric names) have patterns of their own.
    """
    if text.isprintable():  # the common case, at C speed: every character refused here is unprintable
        return None
    found = (_PROSE if prose else _LINE).search(text)
    return None if found is None else f"U+{ord(found.group()):04X} at position {found.start()}"


def refuse_controls(value: str, field: str, *, prose: bool = False) -> str:
    """`value` unchanged when `control_character` finds nothing in it.

    Raises:
        InvalidInput: naming `field` and the character.
    """
    if (found := control_character(value, prose=prose)) is not None:
        raise InvalidInput(field, f"control character {found} is not allowed")
    return value


def scrub(text: str) -> str:
    """`text` with each character `control_character` refuses replaced by U+FFFD."""
    return text if text.isprintable() else _LINE.sub(REPLACEMENT, text)


def _report_texts(r: AgentReport) -> Iterator[tuple[str, str]]:
    yield "agent_id", r.agent_id
    yield "host", r.host
    yield "version", r.version
    yield "config_hash", r.config_hash
    yield from (("metrics", name) for name in r.metrics)
    yield from (("latest", name) for name in r.latest)
    for key, value in r.errors.items():
        yield "errors", key
        yield f"errors.{scrub(key)[:40]}", value
    yield from (("queues", q) for q in r.queues)


def report_problem(report: AgentReport) -> str | None:
    """Which text field of `report` holds a character `control_character` refuses, and which; None if none."""
    r = report
    if control_character("".join((r.agent_id, r.host, r.version, r.config_hash, *r.metrics, *r.latest, *r.errors,
                                  *r.errors.values(), *r.queues))) is None:  # fmt: skip
        return None  # one look at the whole report: a cycle screens thousands
    for name, text in _report_texts(report):
        if (found := control_character(text)) is not None:
            return f"{name}: control character {found}"
    return None


def screen(collection: Collection) -> tuple[Collection, list[str]]:
    """`collection` without the reports, unreachable and stopped names holding a control character, and
    one line for each part left out (so one hostile report never fails the writes of the others)."""
    refused, reports = [], []
    for r in collection.reports:
        if (problem := report_problem(r)) is None:
            reports.append(r)
        else:
            refused.append(f"report of {scrub(r.agent_id)[:120]!r}: {problem}")

    def plain(part: str, found: tuple[str, ...]) -> tuple[str, ...]:
        refused.extend(f"{part} name {scrub(n)[:120]!r}" for n in found if control_character(n) is not None)
        return tuple(n for n in found if control_character(n) is None)

    unreachable, stopped = plain("unreachable", collection.unreachable), plain("stopped", collection.stopped)
    if not refused:
        return collection, []
    return replace(collection, reports=tuple(reports), unreachable=unreachable, stopped=stopped), refused


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
        "latest": dict(r.latest),
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
        latest={str(k): float(v) for k, v in r.get("latest", {}).items()},  # an older version's staging: none
    )


def report_to_json(report: AgentReport) -> str:
    return json.dumps(report_to_dict(report), separators=(",", ":"), allow_nan=False)


def report_from_json(text: str | bytes) -> AgentReport:
    """Read one report back.

    Raises:
        InvalidInput: the text is not a report in the form `report_to_json` writes, or a text field of it
            holds a control character (the problem names the field).
    """
    try:
        report = report_from_dict(json.loads(text))
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as e:
        raise InvalidInput("report", f"not an agent report: {e!r}") from e
    if (problem := report_problem(report)) is not None:
        raise InvalidInput("report", problem)
    return report


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
            "shard": collection.shard,
            "shards": collection.shards,
            "reports": [report_to_dict(r) for r in collection.reports],
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def collection_from_json(text: str | bytes) -> Collection:
    """Read a staged collection back, text as written: `screen` leaves out what a control character spoils.

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
            shard=int(raw.get("shard", 0)),
            shards=int(raw.get("shards", 1)),
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
        "shards": summary.shards,
        "shards_stored": summary.shards_stored,
    }
