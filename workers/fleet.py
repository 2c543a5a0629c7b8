"""Asking the fleet: `vsm_metrics` broadcasts, sharded by destination for large fleets; collecting goodbyes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from vsmmon.agent import goodbye
from vsmmon.config import Settings

log = logging.getLogger(__name__)


def control_app(broker_url: str) -> Celery:
    """A Celery app used only to talk to another broker's workers (JSON only, like every vsmmon app)."""
    app = Celery("vsmmon-fleet-control", broker=broker_url, set_as_current=False)
    app.conf.update(accept_content=["json"], task_serializer="json", broker_connection_retry_on_startup=True)
    return app


def _merge(replies: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    return merged


class FleetPoller:
    """Broadcasts an inspect command and returns as soon as every expected worker answered."""

    def __init__(self, app: Celery, shard_size: int) -> None:
        self.app = app
        self.shard_size = shard_size
        self._pool: ThreadPoolExecutor | None = None
        errors: tuple[type[BaseException], ...] = (OperationalError, *app.connection_for_write().connection_errors)
        self._connection_errors = errors

    @classmethod
    def for_settings(cls, pipeline_app: Celery, settings: Settings) -> FleetPoller:
        fleet_url = settings.fleet_broker_url
        app = control_app(fleet_url) if fleet_url and fleet_url != settings.broker_url else pipeline_app
        return cls(app, settings.collect_shard_size)

    def ask(self, command: str, expected: Sequence[str], *, timeout_s: float, everyone: bool) -> dict[str, Any]:
        """Replies keyed by worker hostname.

        With `everyone` (discovery) every worker is asked and the whole timeout is waited; otherwise
        the expected workers are asked in shards of `shard_size`, each shard ending on its last reply.
        """
        if everyone or not expected:
            return _merge(self._broadcast(command, reply=True, timeout=timeout_s))
        names = sorted(expected)
        shards = [names[i : i + self.shard_size] for i in range(0, len(names), self.shard_size)]
        if len(shards) == 1:
            return self._ask_shard(command, shards[0], timeout_s)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="vsm-shard")
        merged: dict[str, Any] = {}
        for part in self._pool.map(lambda shard: self._ask_shard(command, shard, timeout_s), shards):
            merged.update(part)
        return merged

    def goodbyes(self) -> list[str]:
        """Workers that stopped cleanly since the last call (`vsmmon.agent.goodbye`); [] when the broker fails."""
        try:
            with self.app.connection_for_read() as conn:
                return sorted({g.hostname for g in goodbye.drain(conn)})
        except self._connection_errors as e:
            log.warning("could not read the fleet's goodbyes this cycle: %r", e)
            return []

    def _ask_shard(self, command: str, shard: list[str], timeout_s: float) -> dict[str, Any]:
        return _merge(self._broadcast(command, reply=True, timeout=timeout_s, destination=shard, limit=len(shard)))

    def _broadcast(self, command: str, **options: Any) -> Sequence[dict[str, Any]] | None:
        try:
            return self.app.control.broadcast(command, **options)
        except self._connection_errors:
            # a connection the broker's restart left broken fails once, then reconnects: one cycle less lost
            return self.app.control.broadcast(command, **options)
