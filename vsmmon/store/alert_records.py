"""History of the alert manager, S3 and S5 in PostgreSQL: alerts and their events, control actions, policy
decisions (tables of migration 0004; 30 d retention by partition or by row, see `vsmmon.retention`).

The live state of open alerts is the ledger in Redis (`vsmmon.alert_book`); these tables are the record,
written through a retried task, so every write here is an idempotent upsert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from vsmmon.alerts.model import Alert, AlertStatus, Event, Severity
from vsmmon.errors import NotFound, StoreRefused, StoreUnavailable
from vsmmon.store._tables import alert_events, alerts, control_actions, policy_decisions

T = TypeVar("T")

OPEN_STATUSES = tuple(s for s in AlertStatus if s is not AlertStatus.RESOLVED)


@dataclass(frozen=True, slots=True)
class ControlAction:
    """One S3 action as recorded: what, on which worker, why, the pool before and after, whether it helped."""

    id: UUID
    at: datetime
    target: str
    action: str  # "pool_grow", "pool_shrink", "autoscale" or "none" (with the reason it did nothing)
    params: Mapping[str, Any]
    reason: str
    alert_id: UUID | None
    dry_run: bool
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    verified_at: datetime | None = None
    effective: bool | None = None

    @property
    def applied(self) -> bool:
        """Sent to a worker (not "none", not a dry run): what the cooldown and the efficacy count."""
        return self.action != "none" and not self.dry_run

    def row(self) -> dict[str, Any]:
        """The row of `control_actions`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """One S5 decision as recorded: "notify", "protective_mode" or "hold", with what it did."""

    id: UUID
    at: datetime
    alert_id: UUID | None
    decision: str
    detail: Mapping[str, Any]

    def row(self) -> dict[str, Any]:
        """The row of `policy_decisions`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class AlertRecords:
    """Reads and idempotent writes of the alerting history."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, changed: Sequence[Alert], events: Sequence[Event]) -> None:
        """Upsert alert rows (by id) and insert their events (a repeat is ignored)."""
        self._run(lambda conn: _write(conn, changed, events))

    @contextmanager
    def pending(self) -> Iterator[PendingRows]:
        """A transaction for the rows of one ledger change: `save` writes them, `commit` keeps them; left
        without a commit (the ledger write failed) it is rolled back. See `vsmmon.alerts.desk`.

        Raises:
            StoreUnavailable: PostgreSQL could not be reached, or dropped the connection.
            StoreRefused: PostgreSQL refused the rows (a value it cannot hold, a constraint, a trigger).
        """
        with _database_errors():
            conn = self.engine.connect()
        try:
            yield PendingRows(conn)
        finally:
            with suppress(sa.exc.SQLAlchemyError):  # a connection that broke rolls back by itself
                conn.close()  # rolls back what was not committed

    def alerts(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts newest first; `status` an `AlertStatus`, or "active" (not resolved), or None (all)."""
        query = sa.select(alerts).order_by(alerts.c.updated_at.desc()).limit(limit)
        if status == "active":
            query = query.where(alerts.c.status != AlertStatus.RESOLVED.value)
        elif status is not None:
            query = query.where(alerts.c.status == status)
        return self._rows(query)

    def resolved_since(self, since: datetime) -> list[Alert]:
        """Alerts that fired and resolved at or after `since` (Alertmanager may still hold them firing)."""
        a, e = alerts.c, alert_events.c
        fired = sa.exists().where(e.alert_id == a.id, e.event == "firing")
        query = sa.select(alerts).where(a.status == AlertStatus.RESOLVED.value, a.resolved_at >= since, fired)
        rows = self._run(lambda conn: conn.execute(query).all())
        return [
            Alert(id=r.id, fingerprint=r.fingerprint, type=r.type, target=r.target, severity=Severity(r.severity),
                  labels=dict(r.labels), status=AlertStatus.RESOLVED, started_at=r.started_at,
                  updated_at=r.updated_at, summary=r.summary, escalation_level=r.escalation_level,
                  resolved_at=r.resolved_at, acknowledged_by=r.acknowledged_by, fired_at=r.started_at)
            for r in rows
        ]  # fmt: skip

    def open_counts(self) -> dict[tuple[Severity, AlertStatus], int]:
        """Recorded alerts not resolved, counted by (severity, status)."""
        query = sa.text(
            "SELECT severity, status, count(*) AS n FROM alerts WHERE status = ANY(:statuses) GROUP BY severity, status"
        )
        rows = self._run(lambda conn: conn.execute(query, {"statuses": [s.value for s in OPEN_STATUSES]}).all())
        return {(Severity(r.severity), AlertStatus(r.status)): int(r.n) for r in rows}

    def alert(self, ref: str) -> dict[str, Any]:
        """The latest alert with this id or fingerprint, with its events.

        Raises:
            NotFound: none recorded.
        """
        try:
            cond = alerts.c.id == UUID(ref)
        except ValueError:
            cond = alerts.c.fingerprint == ref
        found = self._rows(sa.select(alerts).where(cond).order_by(alerts.c.updated_at.desc()).limit(1))
        if not found:
            raise NotFound(f"no alert recorded with id or fingerprint {ref[:80]}")
        row = found[0]
        events = sa.select(alert_events).where(alert_events.c.alert_id == row["id"]).order_by(alert_events.c.at)
        row["events"] = self._rows(events)
        return row

    def save_action(self, action: ControlAction) -> None:
        row = {
            **action.row(),
            "params": dict(action.params),
            "before": dict(action.before),
            "after": dict(action.after),
        }
        stmt = insert(control_actions).values(**row)
        self._run(lambda conn: conn.execute(stmt.on_conflict_do_nothing(index_elements=[control_actions.c.id])))

    def verify_action(self, action_id: UUID, at: datetime, effective: bool, after: dict[str, Any]) -> None:
        """Record the efficacy check of an action (once: a repeat leaves the first verdict)."""
        c = control_actions.c
        stmt = (
            sa.update(control_actions)
            .where(c.id == action_id, c.verified_at.is_(None))
            .values(
                verified_at=at,
                effective=effective,
                after=sa.func.coalesce(c.after, sa.text("'{}'::jsonb")).op("||")(sa.cast(after, JSONB)),
            )
        )
        self._run(lambda conn: conn.execute(stmt))

    def action(self, action_id: UUID) -> ControlAction:
        found = self._rows(sa.select(control_actions).where(control_actions.c.id == action_id))
        if not found:
            raise NotFound(f"no control action {action_id}")
        return ControlAction(**found[0])

    def actions(
        self, limit: int = 200, since: datetime | None = None, target: str | None = None
    ) -> list[ControlAction]:
        """Recorded actions, newest first."""
        query = sa.select(control_actions).order_by(control_actions.c.at.desc()).limit(limit)
        if since is not None:
            query = query.where(control_actions.c.at >= since)
        if target is not None:
            query = query.where(control_actions.c.target == target)
        return [ControlAction(**row) for row in self._rows(query)]

    def efficacy(self, since: datetime) -> tuple[int, int]:
        """(verified actions, effective ones) applied (not dry-run) since `since`: S3's control efficacy."""
        c = control_actions.c
        query = sa.select(sa.func.count(), sa.func.count().filter(c.effective.is_(True))).where(
            c.at >= since, c.verified_at.is_not(None), c.dry_run.is_(False), c.action != "none"
        )
        total, effective = self._run(lambda conn: conn.execute(query).one())
        return int(total), int(effective)

    def save_decision(self, decision: PolicyDecision) -> None:
        stmt = insert(policy_decisions).values(**{**decision.row(), "detail": dict(decision.detail)})
        self._run(lambda conn: conn.execute(stmt.on_conflict_do_nothing(index_elements=[policy_decisions.c.id])))

    def decisions(self, limit: int = 200) -> list[PolicyDecision]:
        """Recorded decisions, newest first."""
        query = sa.select(policy_decisions).order_by(policy_decisions.c.at.desc()).limit(limit)
        return [PolicyDecision(**row) for row in self._rows(query)]

    def critical_handling(self, since: datetime, timeout_s: float, now: datetime) -> tuple[int, int]:
        """(critical alerts fired since `since` and judged by `now`, those acknowledged or resolved within
        `timeout_s`): S5's input. One still inside its timeout and not handled yet is not judged: it has not failed.
        """
        a, e = alerts.c, alert_events.c
        deadline = a.started_at + sa.func.make_interval(0, 0, 0, 0, 0, 0, timeout_s)
        by = sa.func.least(deadline, now)  # handled in time, as far as `now` knows
        acked = sa.exists().where(e.alert_id == a.id, e.event == "acknowledged", e.at <= by)
        handled = sa.or_(sa.and_(a.resolved_at.is_not(None), a.resolved_at <= by), acked)
        fired = sa.exists().where(e.alert_id == a.id, e.event == "firing", e.at <= now)
        query = sa.select(sa.func.count(), sa.func.count().filter(handled)).where(
            a.severity == "critical", a.started_at >= since, fired, sa.or_(handled, deadline <= now)
        )
        total, ok = self._run(lambda conn: conn.execute(query).one())
        return int(total), int(ok)

    def _rows(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self._run(lambda conn: conn.execute(query).all())]

    def _run(self, work: Callable[[Connection], T]) -> T:
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(f"PostgreSQL unavailable: {e.orig or e}") from e


class PendingRows:
    """Alert rows and events written in an open transaction of `AlertRecords.pending`, kept by `commit`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def save(self, changed: Sequence[Alert], events: Sequence[Event]) -> None:
        with _database_errors():
            _write(self._conn, changed, events)

    def commit(self) -> None:
        with _database_errors():
            self._conn.commit()


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
        raise StoreUnavailable(f"PostgreSQL unavailable: {e.orig or e}") from e
    except sa.exc.DBAPIError as e:
        first = str(e.orig or e).splitlines()[0]
        raise StoreRefused(f"PostgreSQL refused the alert history: {first}") from e


def _write(conn: Connection, changed: Sequence[Alert], events: Sequence[Event]) -> None:
    for alert in changed:
        row = alert.row()
        if alert.status.value != "resolved":  # an earlier instance whose resolve was never recorded
            conn.execute(
                sa.update(alerts)
                .where(
                    alerts.c.fingerprint == alert.fingerprint, alerts.c.status != "resolved", alerts.c.id != alert.id
                )
                .values(status="resolved", resolved_at=alert.started_at, updated_at=alert.updated_at)
            )
        stmt = insert(alerts).values(**row)
        conn.execute(stmt.on_conflict_do_update(index_elements=[alerts.c.id], set_=row))
    if events:
        rows = [_jsonable(e.row()) for e in events]
        conn.execute(insert(alert_events).values(rows).on_conflict_do_nothing())


def _jsonable(row: dict[str, object]) -> dict[str, object]:
    detail = row.get("detail")
    if isinstance(detail, dict):
        row = {**row, "detail": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in detail.items()}}
    return row
