"""The beat scheduler vsmmon runs: any number of `vsmmon beat` processes, each run sent exactly once.

Every beat schedules every entry on one wall-clock grid (an entry of period P runs at the multiples of P),
and before sending a run it claims that run's slot in Redis (`SET NX` on the entry's name and slot
number). The first beat to claim a slot sends the run; the others skip it. So with two beats and one of
them killed, the other sends the very next slot: no gap longer than one period, no run sent twice, no
hand-over delay; only a beat killed in the milliseconds between claiming a slot and sending its run loses
that one run (a gap of two periods). A beat restarted after a crash picks up at the next slot (or at once,
if the slot it came back in was not sent). If Redis cannot be reached nothing is sent: a run that cannot be
claimed could be a duplicate, and the broker is usually that same Redis anyway.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

import redis
from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import schedstate, schedule

from vsmmon import names
from vsmmon.workers.context import PipelineApp

log = logging.getLogger(__name__)


class AlignedSchedule(schedule):
    """Every `run_every`, on the wall-clock grid: due once per slot (multiple of the period), whatever
    the time the beat started, so that every beat runs an entry at the same instants."""

    def __init__(self, run_every: timedelta, *args: Any, **kwargs: Any) -> None:
        super().__init__(run_every, *args, **kwargs)
        self.period_s = run_every.total_seconds()

    def slot(self, at: datetime) -> int:
        return math.floor(at.timestamp() / self.period_s)

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        period = self.period_s
        until_next = (self.slot(now) + 1) * period - now.timestamp()
        return schedstate(is_due=self.slot(now) > self.slot(last_run_at), next=max(0.01, until_next))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return timedelta(seconds=self.is_due(last_run_at).next)


class SlotScheduler(PersistentScheduler):
    """Sends a due run only when this beat claimed its slot first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        assert isinstance(app, PipelineApp)
        url = app.vsm_settings.require("redis_url")
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def claim(self, entry: ScheduleEntry) -> bool:
        """True when this beat is the first to claim the entry's current slot."""
        plan = entry.schedule
        if not isinstance(plan, AlignedSchedule):
            return True
        period = plan.period_s
        key = names.BEAT_SLOT_KEY.format(name=entry.name, slot=plan.slot(plan.now()))
        try:
            return bool(self._redis.set(key, "1", nx=True, ex=max(60, math.ceil(3 * period))))
        except redis.RedisError as e:
            log.warning("beat could not claim %s (Redis: %s); not sent", key, e)
            return False

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if self.claim(entry):
            super().apply_entry(entry, producer=producer)
        else:
            log.debug("%s: this slot was sent by another beat", entry.name)

    def close(self) -> None:
        self._redis.close()
        super().close()
