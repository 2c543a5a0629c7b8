"""The test plays beat: pipeline fixtures with short intervals and a helper that starts cycles."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.conftest import CYCLE_INTERVAL_S, CYCLE_TIMEOUT_S, poll
from vsmmon import names
from vsmmon.models import CollectionSummary
from vsmmon.store.postgres import PostgresStore
from vsmmon.workers.context import PipelineApp

INTERVAL_S, TIMEOUT_S = CYCLE_INTERVAL_S, CYCLE_TIMEOUT_S


class Beat:
    """Starts a collection every interval and waits for it to be stored and aggregated."""

    def __init__(self, app: PipelineApp, store: PostgresStore, before_each: Any = None) -> None:
        self.app, self.store, self.before_each = app, store, before_each
        self.next_at = time.monotonic()
        self.done: list[CollectionSummary] = []

    def discover_next(self) -> None:
        """The next cycle sends the discovery (`vsmmon.collect.discover`), as the first of every 30 s does: the
        clock moved on. Who it finds is asked from the cycle after."""
        client = self.app.context().realtime.client
        for key in client.keys(names.DISCOVERY_KEY.format(slot="*")):
            client.delete(key)

    def cycle(self) -> CollectionSummary:
        while time.monotonic() < self.next_at:  # pacing, as beat does: cycles are INTERVAL_S apart
            time.sleep(0.05)
        self.next_at = time.monotonic() + INTERVAL_S
        if self.before_each:
            self.before_each()
        previous = self.done[-1].id if self.done else None
        self.app.send_task(names.COLLECT_RUN)

        def stored() -> CollectionSummary | None:
            latest = self.store.latest_collection()
            ok = latest and latest.id != previous and latest.aggregated_at is not None
            return latest if ok else None

        summary = poll(stored, deadline_s=20, what="the cycle's collection to be stored")
        self.done.append(summary)
        return summary
