"""The webhook groups between calls, in Redis, changed under a lock of their own.

`settle` is one read-modify-write: the new notifications join their groups, and the groups whose message
is due come out, marked sent. The alerts workers call it with each outcome's notifications, and the beat's
flush with none, so a group waiting out its timer is sent within a flush period of its due time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis

from vsmmon import names
from vsmmon.alerts import grouping
from vsmmon.alerts.codec import notification_from_dict, notification_to_dict
from vsmmon.alerts.grouping import Group, Timers
from vsmmon.alerts.locked import held
from vsmmon.alerts.model import Notification
from vsmmon.errors import InvalidInput, TransientError

log = logging.getLogger(__name__)


def groups_to_json(groups: dict[str, Group]) -> str:
    return json.dumps({
        name: {"alerts": [notification_to_dict(n) for n in g.alerts.values()], "since": g.since.isoformat(),
               "sent_at": None if g.sent_at is None else g.sent_at.isoformat(), "changed": g.changed}
        for name, g in groups.items()
    })  # fmt: skip


def groups_from_json(raw: str | bytes) -> dict[str, Group]:
    data: dict[str, Any] = json.loads(raw)
    out = {}
    for name, g in data.items():
        alerts = [notification_from_dict(n) for n in g["alerts"]]
        sent_at = None if g["sent_at"] is None else datetime.fromisoformat(g["sent_at"])
        out[name] = Group(name, {n.alert.fingerprint: n for n in alerts}, datetime.fromisoformat(g["since"]), sent_at,
                          bool(g["changed"]))  # fmt: skip
    return out


class GroupBook:
    """The groups in Redis."""

    def __init__(self, client: redis.Redis, *, lock_timeout_s: float = 10.0, wait_s: float = 10.0) -> None:
        self.client = client
        self.lock_timeout_s = lock_timeout_s
        self.wait_s = wait_s

    def read(self) -> dict[str, Group]:
        raw = self.client.get(names.WEBHOOK_GROUPS_KEY)
        return groups_from_json(raw) if raw else {}

    def settle(self, notifications: Sequence[Notification], now: datetime, timers: Timers) -> list[Group]:
        """Add `notifications` to their groups; return the groups due now (as they are sent), marked sent.

        Raises:
            TransientError: Redis is unreachable, or the groups stayed locked for `wait_s`.
        """
        with held(self.client, names.WEBHOOK_GROUPS_LOCK_KEY, timeout_s=self.lock_timeout_s, wait_s=self.wait_s,
                  what="the webhook groups"):  # fmt: skip
            try:
                raw = self.client.get(names.WEBHOOK_GROUPS_KEY)
                groups, due = grouping.settle(_parsed(raw), notifications, now, timers)
                if not groups:
                    if raw:
                        self.client.delete(names.WEBHOOK_GROUPS_KEY)
                elif notifications or due:  # a flush with nothing due changed nothing: no write
                    self.client.set(names.WEBHOOK_GROUPS_KEY, groups_to_json(groups), ex=names.STATE_TTL_S)
                return due
            except redis.RedisError as e:
                raise TransientError(f"Redis unavailable: {e}") from e


def _parsed(raw: bytes | str | None) -> dict[str, Group]:
    """The stored groups; none when the value is not groups (written by hand, by another version): every later
    flush would fail on it, and a lost group only means its alerts are grouped anew, with a new wait."""
    if not raw:
        return {}
    try:
        return groups_from_json(raw)
    except (InvalidInput, ValueError, KeyError, TypeError, AttributeError) as e:
        log.error("the webhook groups in Redis (%s) are not groups, started anew: %r", names.WEBHOOK_GROUPS_KEY, e)
        return {}
