"""What may be done to the alert manager, each as one locked change of the ledger: a source reports its
signals; a person acknowledges, resolves or silences. Every change returns an `Outcome`: the notifications
to deliver now, and the alert rows and events to record. Delivering and recording are the caller's (the
alerts worker delivers at once and records through a retried task, so a database outage delays history,
never an alert).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from vsmmon.alerts import manager
from vsmmon.alerts.book import AlertBook, Report
from vsmmon.alerts.model import Alert, AlertPolicy, Event, Notification, Severity, Signal, Silence, Suppressed
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
    """`source` sees `signals` holding at `now`: replace its report and step the manager on all fresh ones."""
    now = utc(now)
    with book.change() as ledger:
        ledger.sources[source] = Report(now, ttl_s, tuple(signals))
        holding = ledger.holding(now)
        involved = set(ledger.state.alerts) | {s.fingerprint for s in holding}
        before = replace(ledger.state, last_sent=book.cooldowns(involved))
        state, notifications, suppressed, events = manager.step(before, holding, now, policy)
        book.keep_cooldowns(involved, state.last_sent, policy.cooldown_s)
        ledger.state = replace(state, last_sent={}, closed=())
    return Outcome(tuple(notifications), tuple(suppressed), tuple(events), manager.changed_alerts(state, now))


def acknowledge(book: AlertBook, ref: str, by: str, now: datetime) -> Outcome:
    """Acknowledge the open alert `ref` (id or fingerprint).

    Raises:
        NotFound: no open alert has that id or fingerprint.
    """
    now = utc(now)
    with book.change() as ledger:
        state, events = manager.acknowledge(ledger.state, ref, _who(by), now)
        ledger.state = state
    changed = tuple(a for a in state.alerts.values() if str(ref) in (str(a.id), a.fingerprint))
    return Outcome(events=tuple(events), changed=changed if events else ())


def resolve(book: AlertBook, ref: str, by: str, now: datetime, policy: AlertPolicy) -> Outcome:
    """Resolve the open alert `ref` by hand, with its recovery notice.

    Raises:
        NotFound: no open alert has that id or fingerprint.
    """
    now = utc(now)
    with book.change() as ledger:
        state, notifications, suppressed, events = manager.resolve(ledger.state, ref, _who(by), now, policy)
        ledger.state = replace(state, closed=())
    return Outcome(tuple(notifications), tuple(suppressed), tuple(events), state.closed)


def add_silence(
    book: AlertBook, matchers: Mapping[str, str], duration_s: float, *, created_by: str, comment: str, now: datetime
) -> Silence:
    """Mute notifications of the alerts matching every matcher for `duration_s`.

    Raises:
        InvalidInput: no matcher, a matcher on an unknown severity, or a duration out of (0, 30 d].
    """
    if not matchers:
        raise InvalidInput("matchers", "at least one matcher is needed (an empty one would mute everything)")
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
    return name
