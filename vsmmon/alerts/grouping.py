"""Webhook groups, as Alertmanager forms them: one group per alert name, and three timers.

- `group_wait_s` (30 s): a new group waits before its first message, so alerts of one incident that fire
  together arrive together;
- `group_interval_s` (5 min): a group that changed (an alert joined, resolved or changed severity) is sent
  again at most this often after its last message, with every alert of the group;
- `repeat_interval_s` (4 h): a group that did not change is sent again this long after its last message,
  while one of its alerts still fires.

A message holds the group's current alerts: firing ones, and those resolved since the last message (sent
once as resolved, then dropped). A group whose alerts have all resolved and been sent is gone; the next
alert of its name starts a new one, with its own wait. Pure: the Redis-backed `GroupBook` keeps the groups
between calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vsmmon.alerts.model import AlertStatus, Notification
from vsmmon.models import utc


@dataclass(frozen=True, slots=True)
class Timers:
    """Alertmanager's route timers, with its defaults."""

    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 14400.0


@dataclass(frozen=True, slots=True)
class Group:
    """One alert name's group: the latest notification of each of its alerts (by fingerprint)."""

    name: str
    alerts: Mapping[str, Notification]
    since: datetime  # when the group formed (its first alert since it was last empty)
    sent_at: datetime | None = None  # its last message
    changed: bool = True  # something to tell since the last message

    def firing(self) -> bool:
        return any(n.alert.status is not AlertStatus.RESOLVED for n in self.alerts.values())

    def due(self, now: datetime, timers: Timers) -> bool:
        """Whether the group's next message is due at `now`."""
        now = utc(now)
        if self.sent_at is None:
            return now >= self.since + timedelta(seconds=timers.group_wait_s)
        if self.changed:
            return now >= self.sent_at + timedelta(seconds=timers.group_interval_s)
        return self.firing() and now >= self.sent_at + timedelta(seconds=timers.repeat_interval_s)

    def sent(self, now: datetime) -> Group | None:
        """The group once its message went out: resolved alerts told, dropped; None when none is left."""
        kept = {f: n for f, n in self.alerts.items() if n.alert.status is not AlertStatus.RESOLVED}
        return replace(self, alerts=kept, sent_at=utc(now), changed=False) if kept else None


def _news(before: Notification | None, after: Notification) -> bool:
    """A notification the group's receivers have not heard: a new alert, or one whose status or severity moved
    (a repeat of the same state is the repeat interval's business, not news)."""
    if before is None:
        return True
    was, now = before.alert, after.alert
    firing = (was.status is AlertStatus.RESOLVED) != (now.status is AlertStatus.RESOLVED)
    return firing or was.severity != now.severity or was.id != now.id


def add(groups: Mapping[str, Group], notifications: Iterable[Notification], now: datetime) -> dict[str, Group]:
    """`groups` with these notifications in the group of their alert's name (a group formed at `now` if new)."""
    out = dict(groups)
    for n in notifications:
        name = n.alert.type
        group = out.get(name)
        if group is None:
            if n.alert.status is AlertStatus.RESOLVED:
                continue  # a recovery of an alert the receivers never heard of (its group was sent and dropped)
            group = Group(name, {}, utc(now))
        fingerprint = n.alert.fingerprint
        news = _news(group.alerts.get(fingerprint), n)
        out[name] = replace(group, alerts={**group.alerts, fingerprint: n}, changed=group.changed or news)
    return out


def due(groups: Mapping[str, Group], now: datetime, timers: Timers) -> list[Group]:
    """The groups whose message is due, by name."""
    return [g for _, g in sorted(groups.items()) if g.alerts and g.due(now, timers)]


def settle(
    groups: Mapping[str, Group], notifications: Iterable[Notification], now: datetime, timers: Timers
) -> tuple[dict[str, Group], list[Group]]:
    """One step: the notifications join their groups, the groups due now come out (as they are to be sent),
    and the groups kept are marked sent (a group with nothing left to tell is gone)."""
    after = add(groups, notifications, now)
    sent = due(after, now, timers)
    for g in sent:
        if (kept := g.sent(now)) is None:
            after.pop(g.name)
        else:
            after[g.name] = kept
    return after, sent
