"""Admission of pushed agents: a bounded number of new agent ids per minute, so one client holding the
token cannot flood the registry (5,000 forged sensor ids in one batch) and, through it, the judgement.

An id is new when it did not push within the last one or two days (two day-generations of known ids,
each expiring after two days: nothing grows without bound). Agents already known are never limited.
A request bringing more new ids than the minute has left is refused whole (the API answers 429 with
`Retry-After`), so what is admitted is always a whole request: a client registering a large fleet sends it
in batches of at most the limit. The count and the known ids live in Redis, checked and updated in one
script, so concurrent requests cannot both use the last of the minute's budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from vsmmon import names

DAY_S = 86400
MINUTE_S = 60

_ADMIT = """
local limit, ttl_known = tonumber(ARGV[1]), tonumber(ARGV[2])
local fresh = 0
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 and redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
    fresh = fresh + 1
  end
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if fresh > 0 and used + fresh > limit then return {0, used, fresh} end
if fresh > 0 then
  redis.call('INCRBY', KEYS[3], fresh)
  redis.call('EXPIRE', KEYS[3], 2 * 60)
end
for i = 3, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ttl_known)
return {1, used, fresh}
"""


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    new_ids: int  # ids of the request not seen in the last day or two
    used: int  # new ids admitted earlier this minute
    limit: int

    @property
    def retry_after_s(self) -> int:
        return MINUTE_S


class Admitter:
    """Admits pushed reports by their agent ids against a per-minute budget of new ids."""

    def __init__(self, client: redis.Redis, new_per_minute: int) -> None:
        self.client = client
        self.limit = new_per_minute
        self._admit = client.register_script(_ADMIT)

    def admit(self, agent_ids: Sequence[str], now: datetime) -> Admission:
        day, minute = int(now.timestamp() // DAY_S), int(now.timestamp() // MINUTE_S)
        keys = [
            names.PUSHED_KNOWN_KEY.format(day=day),
            names.PUSHED_KNOWN_KEY.format(day=day - 1),
            names.PUSHED_NEW_KEY.format(minute=minute),
        ]
        ok, used, fresh = self._admit(keys=keys, args=[self.limit, 2 * DAY_S, *dict.fromkeys(agent_ids)])
        return Admission(bool(ok), int(fresh), int(used), self.limit)
