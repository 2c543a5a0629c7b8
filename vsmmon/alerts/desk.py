"""What may be done to the alert manager, each as one locked change of the ledger: a source reports its
signals; a person acknowledges, resolves or silences. Every change returns an `Outcome`: the notifications
to deliver now, and the alert rows and events to record. Delivering is the caller's; so is recording a
source's report (the alerts worker delivers at once and records through a retried task, so a database
outage delays history, never an alert). A person's ack or resolve given a `history` records its rows in
the same unit as the ledger change: both are written or neither (an ack that fails changes nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from vsmmon.alerts import manager
from vsmmon.alerts.book import AlertBook, Ledger, Report
from vsmmon.alerts.model import Alert, AlertPolicy, Event, Notification, Severity, Signal, Silence, Suppressed
from vsmmon.codec import refuse_controls
from vsmmon.config import Settings
from vsmmon.errors import InvalidInput
from vsmmon.models import utc

MAX_SILENCE_S = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Outcome:
    notifications: tuple[Notification, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    events: tuple[Event, ...] = ()
    changed: tuple[Alert, ...] = ()  # the rows of `alerts` to upsert


class Rows(Protocol):
    """Rows written in an open transaction, kept only by `commit` (`AlertRecords.pending`)."""

    def save(self, changed: Sequence[Alert], events: Sequence[Event]) -> None: ...

    def commit(self) -> None: ...


class History(Protocol):
    """Where alert rows are recorded (`vsmmon.store.alert_records.AlertRecords`)."""

    def pending(self) -> AbstractContextManager[Rows]: ...


class _NoRows:
    def save(self, changed: Sequence[Alert], events: Sequence[Event]) -> None:
        pass

    def commit(self) -> None:
        pass


@contextmanager
def _recorded(book: AlertBook, history: History | None) -> Iterator[tuple[Ledger, Rows]]:
    """One change of the ledger and the history as a unit: the history's transaction is open first and
    committed once the ledger is written, under the ledger's lock; a failure of either undoes both."""
    unit: AbstractContextManager[Rows] = nullcontext(_NoRows()) if history is None else history.pending()
    with unit as rows, book.change(then=rows.commit) as ledger:
        yield ledger, rows


def policy_for(settings: Settings) -> AlertPolicy:
    """The alert policy the settings describe; criticals fire at once (no pending period)."""
    pending = settings.alert_pending_s
    return AlertPolicy(
        pending_s={Severity.CRITICAL: 0.0, Severity.WARNING: pending, Severity.INFO: pending},
        resolve_after_s=settings.alert_resolve_after_s,
        cooldown_s=settings.alert_cooldown_s,
        max_per_hour=settings.alert_max_per_hour,
        escalate_after_s=settings.alert_escalate_after_s,
        webhook=bool(settings.webhook_urls),
    )


def report(
    book: AlertBook, source: str, signals: Sequence[Signal], now: datetime, *, ttl_s: float, policy: AlertPolicy
) -> Outcome:
    """`source` sees `signals` holding at `now`: replace its report and step the manager on all fresh ones
    (what the source stopped naming in this report is `held`: a firing alert lives through one missed report)."""
    now = utc(now)
    with book.change() as ledger:
        ledger.sources[source] = Report(now, ttl_s, tuple(signals)).after(ledger.sources.get(source))
        holding = ledger.holding(now)
        involved = set(ledger.state.alerts) | {s.fingerprint for s in holding}
        before = replace(ledger.state, last_sent=book.cooldowns(involved))
        state, notifications, suppressed, events = manager.step(before, holding, now, policy, held=ledger.missed())
        book.keep_cooldowns(involved, state.last_sent, policy.cooldown_s)
        ledger.state = replace(state, last_sent={}, closed=())
    return Outcome(tuple(notifications), tuple(suppressed), tuple(events), manager.changed_alerts(state, now))


def acknowledge(book: AlertBook, ref: str, by: str, now: datetime, *, history: History | None = None) -> Outcome:
    """Acknowledge the open alert `ref` (id or fingerprint); with `history`, its rows are recorded with it.

    Raises:
        NotFound: no open alert has that id or fingerprint.
        InvalidInput: `by` is empty, longer than 200 characters or holds a control character.
        TransientError, StoreRefused: the ledger or the history could not be written; neither changed.
    """
    now, who = utc(now), _who(by)
    with _recorded(book, history) as (ledger, rows):
        state, events = manager.acknowledge(ledger.state, ref, who, now)
        ledger.state = state
        changed = tuple(a for a in state.alerts.values() if str(ref) in (str(a.id), a.fingerprint))
        outcome = Outcome(events=tuple(events), changed=changed if events else ())
        rows.save(outcome.changed, outcome.events)
    return outcome


def resolve(
    book: AlertBook, ref: str, by: str, now: datetime, policy: AlertPolicy, *, history: History | None = None
) -> Outcome:
    """Resolve the open alert `ref` by hand, with its recovery notice; with `history`, its rows are recorded with it.

    Raises:
        NotFound: no open alert has that id or fingerprint.
        InvalidInput: `by` is empty, longer than 200 characters or holds a control character.
        TransientError, StoreRefused: the ledger or the history could not be written; neither changed.
    """
    now, who = utc(now), _who(by)
    with _recorded(book, history) as (ledger, rows):
        state, notifications, suppressed, events = manager.resolve(ledger.state, ref, who, now, policy)
        ledger.state = replace(state, closed=())
        outcome = Outcome(tuple(notifications), tuple(suppressed), tuple(events), state.closed)
        rows.save(outcome.changed, outcome.events)
    return outcome


def add_silence(
    book: AlertBook, matchers: Mapping[str, str], duration_s: float, *, created_by: str, comment: str, now: datetime
) -> Silence:
    """Mute notifications of the alerts matching every matcher for `duration_s`.

    Raises:
        InvalidInput: no matcher, a matcher on an unknown severity, a duration out of (0, 30 d], or a control
            character in a matcher, `created_by` or `comment` (line breaks and tabs are fine in a comment).
    """
    if not matchers:
        raise InvalidInput("matchers", "at least one matcher is needed (an empty one would mute everything)")
    for key, value in matchers.items():
        refuse_controls(value, f"matchers.{refuse_controls(key, 'matchers')}")
    refuse_controls(comment, "comment", prose=True)
    if "severity" in matchers and matchers["severity"] not in {s.value for s in Severity}:
        raise InvalidInput("matchers.severity", "expected info, warning or critical")
    if not 0 < duration_s <= MAX_SILENCE_S:
        raise InvalidInput("duration_s", f"expected more than 0 and at most {MAX_SILENCE_S:.0f} s")
    silence = Silence(uuid.uuid4(), dict(matchers), utc(now) + timedelta(seconds=duration_s), _who(created_by),
                      comment)  # fmt: skip
    with book.change() as ledger:
        ledger.state = manager.add_silence(manager.expire_silences(ledger.state, now), silence)
    return silence


def remove_silence(book: AlertBook, silence_id: UUID) -> bool:
    """End a silence at once; False when there was none with that id."""
    with book.change() as ledger:
        found = any(s.id == silence_id for s in ledger.state.silences)
        ledger.state = manager.remove_silence(ledger.state, silence_id)
    return found


def open_alerts(book: AlertBook) -> list[Alert]:
    """Pending, firing and acknowledged alerts, worst and oldest first."""
    found = book.read().state.alerts.values()
    return sorted(found, key=lambda a: (-a.severity.rank, a.started_at, a.fingerprint))


def silences(book: AlertBook, now: datetime) -> list[Silence]:
    return [s for s in book.read().state.silences if s.active(utc(now))]


def _who(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("by", "name who does it (1 to 200 characters)")
    return refuse_controls(name, "by")
