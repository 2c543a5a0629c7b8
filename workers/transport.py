"""The Redis transport of the pipeline's Celery app: kombu's, made to survive a broker restart."""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            # When the broker goes away Celery closes the connection twice (collect(), then close()); the
            # second close hands the in-flight messages back through a transport already torn down, where
            # kombu 5.7 raises AttributeError and the worker stops ("Unrecoverable error"). A connection error
            # is what that close ignores; the messages stay in the broker's unacked set and are put back
            # after the visibility timeout.
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
