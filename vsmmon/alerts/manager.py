"""The alert manager: level-triggered signals in, alert lifecycle and notifications out. Pure: `now` is a
parameter, nothing here does I/O; its values are in `vsmmon.alerts.model`, the formats at the edges in
`vsmmon.alerts.routing`.

Rules (the numbers are `AlertPolicy` defaults):
- Identity: fingerprint = hash(type, target, labels): one open alert per condition. An alert instance keeps
  one severity for its whole life, so receivers that key on labels (Alertmanager: `severity` is a label)
  never see one identity change severity. When the condition gets worse, the open instance resolves (its
  recovery goes wherever its firing went) and a new instance of the new severity opens in the same step;
  when it gets better, the worse instance clears like an absent signal (hysteresis below) and, once
  resolved, the lesser one opens (pending as any new alert). A pending instance, not yet told to anyone,
  simply takes the signal's severity.
- Signals are level-triggered: a stage reports a condition at every check while it holds (not only on
  the edge, as `HealthAssessment.alerts` does). Two signals with one fingerprint merge (worst severity).
- Pending (Prometheus `for`): critical 0 s (fires in the check that sees it: the seed's < 500 ms target),
  warning and info 30 s (seen in two consecutive 30 s checks). A signal that vanishes while pending
  closes the alert without a notification, as Prometheus resets `for`.
- Held: a signal its source named in the report before and not in its latest one (`held`, see
  `vsmmon.alerts.book`) keeps a firing or acknowledged alert as it is, neither clearing nor cleared: one
  missed report of a source is not yet a cleared condition. A pending alert is not held: it closes.
- Hysteresis: an absent signal starts a clear period; the alert resolves once clear for 60 s (three clear
  checks). A signal back within the period cancels it: no resolve / re-fire pair, no new notification.
- Escalation: a firing, unacknowledged alert rises one level every 900 s (up to 3); level >= 1 adds the
  "s5" route (S3 -> S5). Acknowledged alerts neither escalate nor remind. A severity rise of an
  acknowledged alert returns it to firing: the acknowledgement covered the lesser condition.
- Silences mute notifications only; the lifecycle runs on (a silenced alert still escalates).
- Cooldown (per fingerprint, across alert instances): no alert notification within 300 s of the last one
  delivered for that fingerprint, unless its severity is higher than the one then delivered: a worse
  condition is not a repeat.
- Hourly cap (sliding 3600 s): an info or warning notification is delivered only while fewer than 20
  notifications were delivered in the window, and fewer than 10 (half the cap: `type_share`) of its own
  alert type, so one flooding source cannot use up the budget the others need. The critical rule: a
  critical is never dropped or held by the cap. It is delivered even past it, flagged `over_cap`, and
  counts in the window, so criticals use the budget warnings share, never the other way round.
- Nothing is lost: a held notification stays owed and is delivered as soon as its obstacle lifts (silence
  gone, cooldown over, window freed), unless the alert is acknowledged or resolved first. It is recorded
  as `Suppressed` (and a "suppressed" event) each time the reason holding it changes, so a notification
  held for ten checks counts once, not ten times.
- Reminders: a still-firing, unacknowledged alert is re-notified 4 h after its last notification
  (Alertmanager's repeat_interval); `reminder_after_s=None` turns them off.
- Recovery: on resolve, a recovery goes to the alert's routes when its firing was delivered, past
  silences, cooldown and cap (not counted in the cap), so no receiver is left with a dangling firing.
  When the firing never went out, the recovery is recorded as suppressed ("silenced" if a silence
  matches, else "not_notified").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from vsmmon.alerts.model import (
    CAP_WINDOW_S,
    DEFAULT_POLICY,
    Alert,
    AlertPolicy,
    AlertState,
    AlertStatus,
    Event,
    Kind,
    Notification,
    Reason,
    Route,
    Severity,
    Signal,
    Silence,
    Suppressed,
)
from vsmmon.errors import NotFound
from vsmmon.models import utc

_ALERT_IDS = UUID("6f1c3a52-8d0e-4b7a-9c41-2f5e7d9a0b13")  # uuid5 namespace: ids are reproducible on retry


def routes_for(alert: Alert, webhook: bool = False) -> tuple[Route, ...]:
    """Always the dashboard; resource alerts to S3; system-wide criticals and escalated alerts to S5."""
    routes: list[Route] = ["dashboard"]
    if alert.resource:
        routes.append("s3")
    if (alert.system_wide and alert.severity is Severity.CRITICAL) or alert.escalation_level >= 1:
        routes.append("s5")
    if webhook:
        routes.append("webhook")
    return tuple(routes)


def step(
    state: AlertState,
    signals: Sequence[Signal],
    now: datetime,
    policy: AlertPolicy = DEFAULT_POLICY,
    *,
    held: Sequence[Signal] = (),
) -> tuple[AlertState, list[Notification], list[Suppressed], list[Event]]:
    """Advance every alert to `now` given the signals holding now (and those `held` through one missed report);
    decide and record notifications."""
    now = utc(now)
    held_fps = {s.fingerprint for s in held}
    merged: dict[str, Signal] = {}
    for s in signals:
        kept = merged.get(s.fingerprint)
        if kept is None:
            merged[s.fingerprint] = s
            continue
        worst = s if s.severity.rank > kept.severity.rank else kept
        merged[s.fingerprint] = replace(
            worst, resource=s.resource or kept.resource, system_wide=s.system_wide or kept.system_wide
        )
    events: list[Event] = []
    advanced = []
    for fp in sorted(set(state.alerts) | set(merged)):
        old, signal = state.alerts.get(fp), merged.get(fp)
        if old is not None and signal is not None and signal.severity is not old.severity:
            if old.status is AlertStatus.PENDING:  # told to nobody yet: it takes the signal's severity
                old = replace(old, severity=signal.severity)
            else:  # one severity per instance: the old one ends (a worse one at once, a better one once clear)
                ended = _advance(old, None, now, policy, events) if signal.severity.rank < old.severity.rank else None
                if ended is not None and ended.status is not AlertStatus.RESOLVED:
                    advanced.append(ended)
                    continue
                if ended is None:
                    events.append(Event(old.id, now, "resolved", {"by": f"became {signal.severity}"}))
                    ended = _close(old, now)
                advanced.append(ended)
                old = None
        missed_once = signal is None and fp in held_fps
        advanced.append(
            _advance(old if old is not None else _open(merged[fp], now), signal, now, policy, events, held=missed_once)
        )
    delivery = _Delivery(state, now, policy)
    for alert in sorted(advanced, key=_delivery_order):
        delivery.decide(alert)
    final = [_touched(state.alerts.get(a.fingerprint), a, now) for a in delivery.alerts]
    new = AlertState(
        alerts={a.fingerprint: a for a in final if a.status is not AlertStatus.RESOLVED},
        silences=delivery.silences,
        sent=tuple(delivery.sent[-policy.max_per_hour :]),  # the cap only ever asks: are `max` of them recent?
        sent_by_type={t: tuple(s[-policy.per_type :]) for t, s in delivery.sent_by_type.items() if s},
        last_sent=delivery.last_sent,
        closed=tuple(a for a in final if a.status is AlertStatus.RESOLVED),
    )
    return new, delivery.notifications, delivery.suppressed, events + delivery.events


def acknowledge(state: AlertState, alert: str | UUID, by: str, now: datetime) -> tuple[AlertState, list[Event]]:
    """Acknowledge an open alert (by fingerprint or id): no escalation, reminders or owed notification after.

    Raises:
        NotFound: no open alert has that fingerprint or id.
    """
    now, found = utc(now), _find(state, alert)
    if found.status is AlertStatus.ACKNOWLEDGED:
        return replace(state, closed=()), []
    acked = replace(found, status=AlertStatus.ACKNOWLEDGED, acknowledged_by=by, updated_at=now,
                    escalate_at=None, owed=None, held_by=None)  # fmt: skip
    alerts = {**state.alerts, found.fingerprint: acked}
    return replace(state, alerts=alerts, closed=()), [Event(found.id, now, "acknowledged", {"by": by})]


def resolve(
    state: AlertState, alert: str | UUID, by: str, now: datetime, policy: AlertPolicy = DEFAULT_POLICY
) -> tuple[AlertState, list[Notification], list[Suppressed], list[Event]]:
    """Resolve an open alert by hand, with its recovery; a condition still holding opens a new alert next step.

    Raises:
        NotFound: no open alert has that fingerprint or id.
    """
    now, found = utc(now), _find(state, alert)
    closed = _close(found, now)
    events = [Event(found.id, now, "resolved", {"by": by})]
    delivery = _Delivery(state, now, policy)
    delivery.decide(closed)
    alerts = {fp: a for fp, a in state.alerts.items() if fp != found.fingerprint}
    new = replace(state, alerts=alerts, silences=delivery.silences, closed=(closed,))
    return new, delivery.notifications, delivery.suppressed, events + delivery.events


def add_silence(state: AlertState, silence: Silence) -> AlertState:
    """The state with `silence` added (replacing one with the same id)."""
    return replace(state, silences=(*(s for s in state.silences if s.id != silence.id), silence), closed=())


def remove_silence(state: AlertState, silence_id: UUID) -> AlertState:
    """The state without the silence `silence_id` (a no-op when there is none)."""
    return replace(state, silences=tuple(s for s in state.silences if s.id != silence_id), closed=())


def expire_silences(state: AlertState, now: datetime) -> AlertState:
    """The state without the silences expired at `now` (`step` ignores and drops them too)."""
    now = utc(now)
    return replace(state, silences=tuple(s for s in state.silences if s.active(now)), closed=())


def changed_alerts(state: AlertState, now: datetime) -> tuple[Alert, ...]:
    """The alerts the transition at `now` changed: the rows to upsert into `alerts`."""
    return (*state.closed, *(a for a in state.alerts.values() if a.updated_at == utc(now)))


def _find(state: AlertState, ref: str | UUID) -> Alert:
    for a in state.alerts.values():
        if str(ref) in (str(a.id), a.fingerprint):
            return a
    raise NotFound(f"no open alert with fingerprint or id {ref}")


def _open(signal: Signal, now: datetime) -> Alert:
    fp = signal.fingerprint
    return Alert(
        id=uuid5(_ALERT_IDS, f"{fp}|{now.isoformat()}"), fingerprint=fp, type=signal.type, target=signal.target,
        severity=signal.severity, labels=signal.labels, status=AlertStatus.PENDING, started_at=now, updated_at=now,
        summary=signal.summary, resource=signal.resource, system_wide=signal.system_wide,
    )  # fmt: skip


def _close(alert: Alert, now: datetime) -> Alert:
    return replace(alert, status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now, owed=None,
                   held_by=None, escalate_at=None)  # fmt: skip


def _advance(
    alert: Alert, signal: Signal | None, now: datetime, policy: AlertPolicy, events: list[Event], *, held: bool = False
) -> Alert:
    """The lifecycle of one alert up to `now`: pending, firing, severity, clearing, escalation, reminders."""
    if signal is None:
        if alert.status is AlertStatus.PENDING:
            events.append(Event(alert.id, now, "resolved", {"by": "cleared while pending"}))
            return _close(alert, now)
        if not held:  # held: its source missed it once, so it is neither clearing nor cleared yet
            clear_since = alert.clear_since or now
            if (now - clear_since).total_seconds() >= policy.resolve_after_s:
                events.append(Event(alert.id, now, "resolved", {"by": "condition cleared", "clear_since": clear_since}))
                return _close(alert, now)
            alert = replace(alert, clear_since=clear_since)
    else:  # `step` made the signal's severity the alert's
        alert = replace(alert, clear_since=None, summary=signal.summary, resource=signal.resource,
                        system_wide=signal.system_wide)  # fmt: skip
        pending_for_s = (now - alert.started_at).total_seconds()
        if alert.status is AlertStatus.PENDING and pending_for_s >= policy.pending_s.get(alert.severity, 0.0):
            alert = replace(alert, status=AlertStatus.FIRING, fired_at=now, acknowledged_by=None,
                            escalate_at=now + _s(policy.escalate_after_s), owed="firing", held_by=None)  # fmt: skip
            detail: dict[str, object] = {"severity": str(alert.severity), "summary": alert.summary,
                                         "resource": alert.resource, "system_wide": alert.system_wide}  # fmt: skip
            events.append(Event(alert.id, now, "firing", detail))
            return alert
    if alert.status is not AlertStatus.FIRING:
        return alert
    due = alert.escalate_at is not None and now >= alert.escalate_at
    if due and alert.escalation_level < policy.max_escalation_level:
        level = alert.escalation_level + 1
        escalate_at = now + _s(policy.escalate_after_s) if level < policy.max_escalation_level else None
        events.append(Event(alert.id, now, "escalated", {"level": level}))
        return replace(alert, escalation_level=level, escalate_at=escalate_at, owed="escalation", held_by=None)
    remind_s, last = policy.reminder_after_s, alert.last_notified_at
    if alert.owed is None and remind_s is not None and last is not None and (now - last).total_seconds() >= remind_s:
        return replace(alert, owed="reminder", held_by=None)
    return alert


def _delivery_order(alert: Alert) -> tuple[int, int, datetime, str]:
    """Recoveries first (they use no budget), then criticals before warnings before info, oldest first."""
    return (0 if alert.status is AlertStatus.RESOLVED else 1, -alert.severity.rank, alert.started_at, alert.fingerprint)


class _Delivery:
    """The notification decisions of one transition, with the cap window and cooldown memory they update."""

    def __init__(self, state: AlertState, now: datetime, policy: AlertPolicy) -> None:
        self.now, self.policy = now, policy
        self.silences = tuple(s for s in state.silences if s.active(now))
        self.sent = [t for t in state.sent if (now - t).total_seconds() < CAP_WINDOW_S]
        self.sent_by_type = {kind: [t for t in times if (now - t).total_seconds() < CAP_WINDOW_S]
                             for kind, times in state.sent_by_type.items()}  # fmt: skip
        cooling = policy.cooldown_s
        self.last_sent = {fp: v for fp, v in state.last_sent.items() if (now - v[0]).total_seconds() < cooling}
        self.alerts: list[Alert] = []
        self.notifications: list[Notification] = []
        self.suppressed: list[Suppressed] = []
        self.events: list[Event] = []

    def decide(self, alert: Alert) -> None:
        if alert.status is AlertStatus.RESOLVED:
            self._recover(alert)
        elif alert.owed is not None:
            alert = self._notify(alert, alert.owed)
        self.alerts.append(alert)

    def _recover(self, alert: Alert) -> None:
        if alert.fired_at is None:
            return  # closed while pending: nothing was ever due
        if alert.last_notified_at is not None:
            self._deliver(alert, "recovery", over_cap=False)
        else:
            silenced = any(s.matches(alert) for s in self.silences)
            self._hold(alert, "recovery", "silenced" if silenced else "not_notified")

    def _notify(self, alert: Alert, kind: Kind) -> Alert:
        previous = self.last_sent.get(alert.fingerprint)
        reason: Reason | None = None
        if any(s.matches(alert) for s in self.silences):
            reason = "silenced"
        elif previous is not None and alert.severity.rank <= previous[1].rank:
            reason = "cooldown"  # `last_sent` keeps only deliveries inside the cooldown
        elif alert.severity is not Severity.CRITICAL and self._capped(alert.type):
            reason = "hourly_cap"
        if reason is not None:
            if alert.held_by != reason:
                self._hold(alert, kind, reason)
            return replace(alert, held_by=reason)
        over_cap = len(self.sent) >= self.policy.max_per_hour
        self.sent.append(self.now)
        self.sent_by_type.setdefault(alert.type, []).append(self.now)
        self.last_sent[alert.fingerprint] = (self.now, alert.severity)
        alert = replace(alert, owed=None, held_by=None, last_notified_at=self.now)
        self._deliver(alert, kind, over_cap)
        return alert

    def _capped(self, alert_type: str) -> bool:
        """The hourly cap is used up, or this alert type's share of it: one flooding source (a storm of
        bottlenecks) cannot hold back the warnings of another."""
        own = len(self.sent_by_type.get(alert_type, ()))
        return len(self.sent) >= self.policy.max_per_hour or own >= self.policy.per_type

    def _deliver(self, alert: Alert, kind: Kind, over_cap: bool) -> None:
        routes = routes_for(alert, self.policy.webhook)
        self.notifications.append(Notification(alert, kind, routes, self.now, over_cap))
        detail = {"kind": kind, "routes": list(routes), "severity": str(alert.severity), "over_cap": over_cap}
        self.events.append(Event(alert.id, self.now, "notified", detail))

    def _hold(self, alert: Alert, kind: Kind, reason: Reason) -> None:
        self.suppressed.append(Suppressed(alert.id, alert.fingerprint, kind, reason, self.now))
        self.events.append(Event(alert.id, self.now, "suppressed", {"kind": kind, "reason": reason}))


def _touched(old: Alert | None, new: Alert, now: datetime) -> Alert:
    """`new` with `updated_at = now` when any other field differs from `old`."""
    if old is not None and replace(new, updated_at=old.updated_at) == old:
        return old
    return replace(new, updated_at=now)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
