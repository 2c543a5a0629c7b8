"""A leader lock in Redis: one holder at a time, lost when the holder stops renewing it.

`hold()` renews the lock if we hold it, else takes it if it is free; the expiry bounds how long a
dead leader keeps it. Compare-and-renew and compare-and-delete run as Lua scripts, so a holder whose
lock expired can never renew or release someone else's.
"""

from __future__ import annotations

import contextlib
import uuid

import redis

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class LeaderLock:
    def __init__(self, client: redis.Redis, key: str, ttl_s: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """True when we lead after this call; a Redis error counts as not leading (never two leaders)."""
        try:
            if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                return True
            return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except redis.RedisError:
            return False

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            self._release(keys=[self.key], args=[self.token])
