"""The beat scheduler vsmmon runs: exactly one of any number of `vsmmon beat` processes schedules.

A standby ticks without sending anything until the leader lock is free (its holder stopped or died:
the lock expires after `LOCK_TTL_S`), so a takeover happens within LOCK_TTL_S + one tick. On becoming
leader every entry's period restarts from now: a takeover never fires a burst of catch-up runs.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.beat import PersistentScheduler

from vsmmon.leader import LeaderLock
from workers.context import PipelineApp

log = logging.getLogger(__name__)
LOCK_KEY = "vsm:beat:leader"
LOCK_TTL_S = 15.0
STANDBY_TICK_S = 1.0


class LeaderScheduler(PersistentScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        assert isinstance(app, PipelineApp)
        url = app.vsm_settings.require("redis_url")
        self._lock = LeaderLock(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), LOCK_KEY,
                                LOCK_TTL_S)  # fmt: skip
        self._leading = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        leading = self._lock.hold()
        if leading != self._leading:
            log.warning("beat %s the schedule", "now leads" if leading else "stands by; another beat leads")
            if leading:
                now = self.app.now()
                for entry in self.schedule.values():
                    entry.last_run_at = now
                self._heap = None  # rebuilt from the reset entries
        self._leading = leading
        if not leading:
            return STANDBY_TICK_S
        delay: float = super().tick(*args, **kwargs)
        return min(delay, LOCK_TTL_S / 3)

    def close(self) -> None:
        self._lock.release()
        super().close()
