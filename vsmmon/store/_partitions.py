"""Carry out a retention plan on PostgreSQL: create partitions ahead, drop expired ones, trim small tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vsmmon.store.retention import Partition, Plan, Policy

_BOUND = re.compile(r"FOR VALUES FROM \('(?P<start>[^']+)'\) TO \('(?P<end>[^']+)'\)")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

_LIST = sa.text(
    """
    SELECT parent.relname AS parent, child.relname AS child, pg_get_expr(child.relpartbound, child.oid) AS bound
    FROM pg_inherits
    JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
    JOIN pg_class child ON child.oid = pg_inherits.inhrelid
    WHERE parent.relname = ANY(:tables)
    """
)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    created: tuple[str, ...]
    dropped: tuple[str, ...]
    deleted_rows: int


def _ident(name: str) -> str:
    if not _IDENT.match(name):  # names come from code, never from input; refuse anything odd anyway
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def existing_partitions(conn: Connection, tables: list[str]) -> list[Partition]:
    """The range partitions of `tables` with their bounds (default partitions are left out)."""
    conn.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
    found = []
    for row in conn.execute(_LIST, {"tables": tables}):
        match = _BOUND.search(row.bound or "")
        if match:
            start, end = (datetime.fromisoformat(match[k]) for k in ("start", "end"))
            found.append(Partition(row.parent, row.child, start, end))
    return found


def create_partition(conn: Connection, p: Partition, column: str) -> None:
    """Create one partition; rows the default partition caught for its range move into it."""
    table, name, default = _ident(p.table), _ident(p.name), _ident(p.table + "_default")
    col = _ident(column)
    bounds = {"start": p.start, "end": p.end}
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE vsm_moving ON COMMIT DROP AS WITH moved AS ("
            f"DELETE FROM {default} WHERE {col} >= :start AND {col} < :end RETURNING *) SELECT * FROM moved"
        ),
        bounds,
    )
    span = f"FROM ('{p.start.isoformat()}') TO ('{p.end.isoformat()}')"
    conn.execute(sa.text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {span}"))
    conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM vsm_moving"))
    conn.execute(sa.text("DROP TABLE vsm_moving"))


def delete_old(conn: Connection, policy: Policy, cutoff: datetime) -> int:
    """Delete rows past retention: from a small table, or what a default partition caught."""
    target = _ident(policy.table + "_default" if policy.unit else policy.table)
    condition = f" AND {policy.condition}" if policy.condition else ""
    result = conn.execute(
        sa.text(f"DELETE FROM {target} WHERE {_ident(policy.column)} < :cutoff{condition}"), {"cutoff": cutoff}
    )
    return int(result.rowcount or 0)


def carry_out(conn: Connection, plan: Plan, columns: dict[str, str]) -> MaintenanceReport:
    """Create, drop and delete as planned, in the caller's transaction."""
    for p in plan.create:
        create_partition(conn, p, columns[p.table])
    for p in plan.drop:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {_ident(p.name)}"))
    deleted = sum(delete_old(conn, policy, cutoff) for policy, cutoff in plan.delete_before)
    return MaintenanceReport(tuple(p.name for p in plan.create), tuple(p.name for p in plan.drop), deleted)
