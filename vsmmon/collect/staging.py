"""The staging buffer: collected data waits in Redis, keyed by collection id, until it is stored.

Tasks pass only the id along the chain (Flower shows them readably); a persist task that runs
while PostgreSQL is down leaves the data here and retries. The same Redis keeps the fleet's
presence (which workers answered when), so the collector knows how many replies to expect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import redis

from vsmmon import names
from vsmmon.codec import collection_from_json, collection_to_json, report_from_json, report_to_json
from vsmmon.collect.shards import SLOTS, slot_of
from vsmmon.errors import BufferUnavailable, InvalidInput, NotFound
from vsmmon.models import AgentReport, Collection

log = logging.getLogger(__name__)
MAX_PUSHED = 50_000
"""Pushed reports waiting for the next cycle, at most; the oldest of a slot are dropped past its share (and
counted)."""
SLOT_MAX = MAX_PUSHED // SLOTS
ALL_SLOTS = tuple(range(SLOTS))
T = TypeVar("T")
# the workers-seen hash forgets workers not seen within its horizon, in the same round trip as each write
_TRIM_SEEN = """
local cutoff, gone = tonumber(ARGV[1]), 0
local seen = redis.call('HGETALL', KEYS[1])
for i = 1, #seen, 2 do
  if (tonumber(seen[i + 1]) or 0) < cutoff then
    redis.call('HDEL', KEYS[1], seen[i])
    gone = gone + 1
  end
end
return gone
"""


class Staging(Protocol):
    """Short-lived shared state of the pipeline."""

    def put(self, collection: Collection) -> None:
        """Keep a collection until `delete`, at most the buffer horizon."""
        ...

    def get(self, collection_id: UUID) -> Collection:
        """A staged collection.

        Raises:
            NotFound: it is not staged (never was, stored and dropped, or expired).
        """
        ...

    def delete(self, collection_id: UUID) -> None:
        """Drop a collection once it is stored and aggregated."""
        ...

    def mark_seen(self, workers: Iterable[str], now: datetime) -> None:
        """Record that these workers answered at `now`; forget those not seen within the horizon."""
        ...

    def workers_seen_since(self, since: datetime) -> set[str]:
        """Workers that answered at or after `since`."""
        ...

    def claim_discovery(self, every_s: float, now: datetime) -> bool:
        """True for the first caller in each `every_s` slot of wall-clock time: that cycle asks every worker.

        Slots, not an expiring claim: a claim of exactly `every_s` is often still there at the cycle `every_s`
        later (it was set a few ms into its cycle), which stretched discovery to every_s + one interval.
        """
        ...

    def claim_close(self, cutoff: datetime, ttl_s: float) -> bool:
        """True for the first caller for `cutoff` within `ttl_s`: that aggregation sends the window close. Every
        collection aggregated before the close has run finds the same cutoff due; at 10,000 agents a close takes
        tens of seconds, and each shard of each cycle meanwhile queued another (18 waiting in `vsm.analysis`)."""
        ...

    def push(self, reports: Iterable[AgentReport]) -> None:
        """Queue pushed agents' reports for the next collection cycle."""
        ...

    def count_lost(self) -> int:
        """Count one collection that expired before it could be stored; returns the running total."""
        ...

    def count_refused(self, parts: int) -> int:
        """Count parts of a collection left out of the database (`vsmmon.codec.screen`); the running total."""
        ...

    def drain_pushed(self, slots: Iterable[int] = ALL_SLOTS) -> list[AgentReport]:
        """Take every queued pushed report of these buffer slots (`vsmmon.collect.shards`), oldest first in
        each; each is taken by exactly one caller."""
        ...

    def waiting_pushed(self) -> int:
        """Pushed reports queued for the next cycle, in every slot."""
        ...


class RedisStaging:
    """`Staging` on Redis; every call is one round trip, and every key it writes expires.

    Staged collections and pushed reports live `horizon_s`; the workers-seen hash keeps a worker `seen_horizon_s`
    (default `horizon_s`; it must cover the collector's look-back of two intervals); the counters have
    `names.STATE_TTL_S`, renewed at each increment (a Prometheus counter may restart from 0).
    """

    def __init__(self, client: redis.Redis, *, horizon_s: int = 900, seen_horizon_s: int | None = None) -> None:
        self.client = client
        self.horizon_s = horizon_s
        self.seen_horizon_s = horizon_s if seen_horizon_s is None else seen_horizon_s
        self._trim_seen = client.register_script(_TRIM_SEEN)

    @classmethod
    def from_url(cls, url: str, *, horizon_s: int = 900, seen_horizon_s: int | None = None) -> RedisStaging:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, horizon_s=horizon_s, seen_horizon_s=seen_horizon_s)

    def put(self, collection: Collection) -> None:
        key = names.STAGED_KEY.format(id=collection.id)
        self._call(lambda: self.client.set(key, collection_to_json(collection), ex=self.horizon_s))

    def get(self, collection_id: UUID) -> Collection:
        raw = self._call(lambda: self.client.get(names.STAGED_KEY.format(id=collection_id)))
        if raw is None:
            raise NotFound(f"collection {collection_id} is not staged (expired or already stored)")
        return collection_from_json(raw)

    def delete(self, collection_id: UUID) -> None:
        self._call(lambda: self.client.delete(names.STAGED_KEY.format(id=collection_id)))

    def mark_seen(self, workers: Iterable[str], now: datetime) -> None:
        mapping: dict[str | bytes, float] = {name: now.timestamp() for name in workers}
        if not mapping:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(names.WORKERS_KEY, mapping=mapping)  # type: ignore[arg-type]
        self._trim_seen(keys=[names.WORKERS_KEY], args=[now.timestamp() - self.seen_horizon_s], client=pipe)
        pipe.expire(names.WORKERS_KEY, self.seen_horizon_s)
        self._call(pipe.execute)

    def workers_seen_since(self, since: datetime) -> set[str]:
        seen = self._call(lambda: self.client.hgetall(names.WORKERS_KEY))
        cutoff = since.timestamp()
        return {_text(name) for name, ts in seen.items() if float(ts) >= cutoff}

    def claim_discovery(self, every_s: float, now: datetime) -> bool:
        key = names.DISCOVERY_KEY.format(slot=discovery_slot(every_s, now))
        px = max(1, int(2 * every_s * 1000))  # outlives its slot: a late cycle of it cannot claim it again
        return bool(self._call(lambda: self.client.set(key, b"1", nx=True, px=px)))

    def claim_close(self, cutoff: datetime, ttl_s: float) -> bool:
        key = names.CLOSE_SENT_KEY.format(cutoff=int(cutoff.timestamp()))
        return bool(self._call(lambda: self.client.set(key, b"1", nx=True, px=max(1, int(ttl_s * 1000)))))

    def push(self, reports: Iterable[AgentReport]) -> None:
        by_slot: dict[int, list[str]] = {}
        for r in reports:
            by_slot.setdefault(slot_of(r.agent_id), []).append(report_to_json(r))
        if not by_slot:
            return
        pipe = self.client.pipeline(transaction=True)
        for slot, payload in by_slot.items():
            key = pushed_key(slot)
            pipe.rpush(key, *payload)
            pipe.ltrim(key, -SLOT_MAX, -1)
            pipe.expire(key, self.horizon_s)  # with no cycle draining it, reports go stale anyway
        replies = self._call(pipe.execute)
        if (dropped := sum(max(0, int(n) - SLOT_MAX) for n in replies[::3])) > 0:
            self._count(names.PUSHED_DROPPED_KEY, dropped)
            log.warning("pushed-report buffer full (%d a slot): the %d oldest reports were dropped", SLOT_MAX, dropped)

    def count_lost(self) -> int:
        return self._count(names.LOST_COLLECTIONS_KEY, 1)

    def count_refused(self, parts: int) -> int:
        return self._count(names.REFUSED_REPORTS_KEY, parts)

    def _count(self, key: str, n: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.incrby(key, n)
        pipe.expire(key, names.STATE_TTL_S)
        total, _ = self._call(pipe.execute)
        return int(total)

    def drain_pushed(self, slots: Iterable[int] = ALL_SLOTS) -> list[AgentReport]:
        slots = tuple(slots)
        keys = [pushed_key(s) for s in slots]
        if 0 in slots:
            keys.append(names.PUSHED_KEY)  # the one list of versions before slots (and of foreign writers)
        pipe = self.client.pipeline(transaction=True)
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.delete(*keys)
        *lists, _ = self._call(pipe.execute)
        reports, rejected = [], []
        for item in (item for raw in lists for item in raw):
            try:
                reports.append(report_from_json(item))
            except InvalidInput as e:  # written by a foreign client: one bad entry never stops the cycle
                rejected.append(e)
        if rejected:
            self._count(names.PUSHED_REJECTED_KEY, len(rejected))
            log.warning("%d staged pushed reports could not be read and were dropped (first: %s)",
                        len(rejected), rejected[0])  # fmt: skip
        return reports

    def waiting_pushed(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in [*(pushed_key(s) for s in ALL_SLOTS), names.PUSHED_KEY]:
            pipe.llen(key)
        return sum(int(n) for n in self._call(pipe.execute))

    def _call(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except redis.RedisError as e:
            raise BufferUnavailable(f"Redis unavailable: {e}") from e


def pushed_key(slot: int) -> str:
    """The Redis list of one buffer slot's pushed reports."""
    return f"{names.PUSHED_KEY}:{slot}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def discovery_slot(every_s: float, now: datetime) -> int:
    """The number of the `every_s` slot of wall-clock time that holds `now`."""
    return int(now.timestamp() // every_s)


@dataclass
class MemoryStaging:
    """`Staging` in a dict, for unit tests."""

    staged: dict[UUID, str] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    discovery_slots: set[int] = field(default_factory=set)
    closes_claimed: set[datetime] = field(default_factory=set)
    pushed: list[AgentReport] = field(default_factory=list)
    lost: int = 0
    refused: int = 0
    seen_horizon_s: float = 900

    def count_lost(self) -> int:
        self.lost += 1
        return self.lost

    def count_refused(self, parts: int) -> int:
        self.refused += parts
        return self.refused

    def push(self, reports: Iterable[AgentReport]) -> None:
        self.pushed.extend(reports)
        del self.pushed[:-MAX_PUSHED]

    def drain_pushed(self, slots: Iterable[int] = ALL_SLOTS) -> list[AgentReport]:
        wanted = set(slots)
        taken: list[AgentReport] = []
        kept: list[AgentReport] = []
        for r in self.pushed:
            (taken if slot_of(r.agent_id) in wanted else kept).append(r)
        self.pushed = kept
        return taken

    def waiting_pushed(self) -> int:
        return len(self.pushed)

    def put(self, collection: Collection) -> None:
        self.staged[collection.id] = collection_to_json(collection)

    def get(self, collection_id: UUID) -> Collection:
        try:
            return collection_from_json(self.staged[collection_id])
        except KeyError:
            raise NotFound(f"collection {collection_id} is not staged") from None

    def delete(self, collection_id: UUID) -> None:
        self.staged.pop(collection_id, None)

    def mark_seen(self, workers: Iterable[str], now: datetime) -> None:
        names_seen = list(workers)
        if not names_seen:
            return
        self.seen.update(dict.fromkeys(names_seen, now))
        cutoff = now.timestamp() - self.seen_horizon_s
        self.seen = {name: at for name, at in self.seen.items() if at.timestamp() >= cutoff}

    def workers_seen_since(self, since: datetime) -> set[str]:
        return {name for name, at in self.seen.items() if at >= since}

    def claim_discovery(self, every_s: float, now: datetime) -> bool:
        slot = discovery_slot(every_s, now)
        claimed = slot not in self.discovery_slots
        self.discovery_slots.add(slot)
        return claimed

    def claim_close(self, cutoff: datetime, ttl_s: float) -> bool:
        claimed = cutoff not in self.closes_claimed  # no clock here: a claim lasts as long as the buffer
        self.closes_claimed.add(cutoff)
        return claimed
