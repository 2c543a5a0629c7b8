"""Retention: which partitions to create ahead and which to drop, and what to delete from small tables.

Pure: `plan` takes the policies, the partitions that exist and the time, and says what to do;
`storage/partitions.py` does it. Time-partitioned tables lose whole partitions (no row-by-row DELETE
on large tables); small ones (alerts, actions, decisions, transitions) lose old rows. Agents offline or
stopped for longer than their retention leave the registry; their history in other tables (transitions,
health, samples) follows those tables' own retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from vsmmon.config import Settings

Unit = Literal["hour", "day"]
UNIT_LENGTH: dict[Unit, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Policy:
    """Keep rows of `table` whose `column` is younger than `keep`; partitioned by `unit` when set."""

    table: str
    column: str
    keep: timedelta
    unit: Unit | None = None
    condition: str = ""  # extra SQL condition for row deletion (e.g. only resolved alerts)


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Plan:
    create: tuple[Partition, ...]
    drop: tuple[Partition, ...]
    delete_before: tuple[tuple[Policy, datetime], ...]  # small tables, and each default partition


GONE_AGENTS = "status IN ('offline', 'stopped') AND last_seen <= status_since"
"""Agents the registry may forget: offline or stopped, and not seen since (one back but not yet judged stays)."""


def policies(settings: Settings) -> list[Policy]:
    """The seed's retention: samples 1 h, aggregates 24 h, health 7 d, alerts 30 d, gone agents 7 d (configurable)."""
    samples = timedelta(seconds=settings.retention_samples_s)
    rollups = timedelta(seconds=settings.retention_rollups_s)
    health = timedelta(seconds=settings.retention_health_s)
    alerts = timedelta(seconds=settings.retention_alerts_s)
    agents = timedelta(seconds=settings.retention_agents_s)
    return [
        Policy("agents", "status_since", agents, condition=GONE_AGENTS),
        Policy("metric_samples", "ts", samples, "hour"),
        Policy("collections", "started_at", health),
        Policy("metric_rollups", "window_start", rollups, "day"),
        Policy("trends", "at", rollups, "day"),
        Policy("forecasts", "at", rollups, "day"),
        Policy("health_assessments", "at", health, "day"),
        Policy("agent_transitions", "at", health),
        Policy("alert_events", "at", alerts, "day"),
        Policy("alerts", "resolved_at", alerts, condition="status = 'resolved'"),
        Policy("control_actions", "at", alerts),
        Policy("policy_decisions", "at", alerts),
        Policy("recommendations", "expires_at", alerts),
    ]


def floor_to(ts: datetime, unit: Unit) -> datetime:
    ts = ts.astimezone(UTC)
    if unit == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def partition_name(table: str, start: datetime, unit: Unit) -> str:
    return f"{table}_p{start:%Y%m%d%H}" if unit == "hour" else f"{table}_p{start:%Y%m%d}"


def plan(
    rules: Iterable[Policy],
    existing: Iterable[Partition],
    now: datetime,
    ahead: timedelta,
    holds: Mapping[str, datetime] | None = None,
) -> Plan:
    """Partitions to create from the current one through `now + ahead`, partitions wholly past
    retention to drop, and the cut-off for row deletion in small tables and default partitions.

    `holds` keeps a table's rows from a time on whatever their age: the samples of collections claimed but
    not yet rolled up, whose 5 min window is still to be computed from them.
    """
    held = holds or {}
    known = list(existing)
    have = {(p.table, p.start) for p in known}
    create: list[Partition] = []
    drop: list[Partition] = []
    delete: list[tuple[Policy, datetime]] = []
    for rule in rules:
        cutoff = min(now - rule.keep, held.get(rule.table, now))
        delete.append((rule, cutoff))
        if rule.unit is None:
            continue
        step = UNIT_LENGTH[rule.unit]
        start = floor_to(now, rule.unit)
        while start <= now + ahead:
            if (rule.table, start) not in have:
                create.append(Partition(rule.table, partition_name(rule.table, start, rule.unit), start, start + step))
            start += step
        drop.extend(p for p in known if p.table == rule.table and p.end <= cutoff)
    return Plan(tuple(create), tuple(sorted(drop, key=lambda p: (p.table, p.start))), tuple(delete))
