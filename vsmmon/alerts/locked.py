"""One writer at a time on a piece of alert state in Redis: a Redis lock with a timeout, held for one
read-modify-write (the alert ledger's, the webhook groups')."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockNotOwnedError

from vsmmon.errors import TransientError

log = logging.getLogger(__name__)


@contextmanager
def held(client: redis.Redis, key: str, *, timeout_s: float, wait_s: float, what: str) -> Iterator[None]:
    """Hold the lock `key` for the block; released after it, whatever happened.

    Raises:
        TransientError: Redis is unreachable, or someone else held the lock for `wait_s`.
    """
    lock = client.lock(key, timeout=timeout_s, blocking_timeout=wait_s)
    try:
        if not lock.acquire():
            raise TransientError(f"{what} stayed locked for {wait_s:g} s")
    except redis.RedisError as e:
        raise TransientError(f"Redis unavailable: {e}") from e
    try:
        yield
    finally:
        try:
            lock.release()
        except LockNotOwnedError:
            log.warning("the lock of %s expired before its holder finished (over %g s)", what, timeout_s)
        except redis.RedisError:
            pass  # the lock expires by itself
