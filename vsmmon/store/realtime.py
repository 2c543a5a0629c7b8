"""The real-time window: the last hour of every series in Redis, in fixed-size rings.

Each series is a Redis string of `slots` float64 values (720 slots of 8 bytes for 1 h at 5 s: 5.8 KB),
written in place with SETRANGE at slot `cycle % slots`; each agent has a ring of uint64 cycle numbers
saying which cycle last wrote each slot, so a reader keeps only current slots. At 1,000 agents x 20
metrics that is about 125 MB, whatever the traffic: the footprint is bounded by construction. Doubles, not
floats: a counter is exact to 2^53 (in float32 a counter at 1e9 that rose by 60 read as 64, past 2^24 every
rate was off). Keys of an agent that stops reporting expire after the window.
"""

from __future__ import annotations

import functools
import math
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import redis

from vsmmon import names
from vsmmon.models import METRIC_MAX, Collection

_F64 = struct.Struct("<d")
_U64 = struct.Struct("<Q")
SLOT_BYTES = 8


class Point(NamedTuple):
    """One value of a series at its cycle's start (a tuple: reads build millions of them a minute)."""

    ts: datetime
    value: float


class SeriesReader(Protocol):
    """Reads one series' recent points: the window itself, or a batch of series fetched at once."""

    def read(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[Point]: ...

    def read_cycles(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> dict[int, float]:
        """The same points as {cycle: value}, oldest first, without an object per point (cycle x interval = time)."""
        ...

    def read_values(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[float]:
        """The same points' values alone, oldest first: what a median or a sum needs, no object per point."""
        ...


WRITE_CHUNK = 5000
"""Keys per ring-writing script call (a few ms of Redis time each)."""
# Every key has its expiry from its first write: SETRANGE on a new key returns offset + 8, and only such a write
# (the rest of a ring's first hour, then its last slot once an hour) pays for a TTL look-up; steady-state writes
# stay one command per key. `renew` sets every key's expiry anew (every 60 slots). No `EXPIRE ... NX`: Redis 6.2.
_WRITE_SLOTS = """
local offset, values, ttl, renew = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
for i, key in ipairs(KEYS) do
  local n = redis.call('SETRANGE', key, offset, string.sub(values, 8 * i - 7, 8 * i))
  if renew or (n == offset + 8 and redis.call('TTL', key) < 0) then redis.call('EXPIRE', key, ttl) end
end
return #KEYS
"""
MGET_CHUNK = 500
"""Keys per MGET of a prefetch (~1.5 MB of rings): one round trip for all chunks, no huge single reply."""


class RealtimeWindow:
    """Write collections into the rings; read one series' recent points back, or many in one round trip."""

    def __init__(self, client: redis.Redis, interval_s: float, window_s: float = 3600) -> None:
        self.client = client
        self.interval_s = interval_s
        self.slots = max(1, math.ceil(window_s / interval_s))
        self.ttl_s = int(window_s + 10 * interval_s)
        self._write_slots = client.register_script(_WRITE_SLOTS)
        self._spans: dict[tuple[int, int, int], list[tuple[int, int, datetime]]] = {}

    def cycle_of(self, ts: datetime) -> int:
        return int(ts.timestamp() // self.interval_s)

    def write(self, collection: Collection) -> int:
        """Write every sample of the collection at its cycle's slot; returns how many were written."""
        cycle = self.cycle_of(collection.started_at)
        slot = cycle % self.slots
        renew = 1 if slot % 60 == 0 else 0  # renew expiries now and then, not on every write
        keys: list[str] = []
        values: list[bytes] = []
        stamp = _U64.pack(cycle)
        written = 0
        for report in collection.reports:
            if not report.metrics:
                continue
            base = f"{names.REALTIME_PREFIX}{report.agent_id}\x00"
            keys.append(base + "_cycles")
            values.append(stamp)
            # a value past METRIC_MAX (screened at ingest; never trusted here) is not written, and so reads as that
            # slot's older value, as any metric a report lacks does: it never fails the whole write
            held = {m: v for m, v in report.metrics.items() if abs(v) <= METRIC_MAX}
            keys.extend(base + m for m in held)
            values.extend(_F64.pack(v) for v in held.values())
            written += len(held)
        # one script call per chunk instead of one SETRANGE command per sample: at 1,000 agents x 20 metrics the
        # commands' packing and parsing alone cost ~1 s a cycle
        pipe = self.client.pipeline(transaction=False)
        for i in range(0, len(keys), WRITE_CHUNK):
            blob = b"".join(values[i : i + WRITE_CHUNK])
            self._write_slots(keys=keys[i : i + WRITE_CHUNK], args=[slot * SLOT_BYTES, blob, self.ttl_s, renew],
                              client=pipe)  # fmt: skip
        pipe.execute()
        return written

    def read(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[Point]:
        """The series' points within `span_s` (default: the whole window) before `now`, oldest first."""
        base = f"{names.REALTIME_PREFIX}{agent_id}\x00"
        cycles_raw, values_raw = self.client.mget([base + "_cycles", base + metric])
        return self.decode(cycles_raw, values_raw, now, span_s)

    def read_cycles(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> dict[int, float]:
        cycles_raw, values_raw = self.client.mget([_key(agent_id, "_cycles"), _key(agent_id, metric)])
        return self.decode_cycles(cycles_raw, values_raw, now, span_s)

    def read_values(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[float]:
        cycles_raw, values_raw = self.client.mget([_key(agent_id, "_cycles"), _key(agent_id, metric)])
        return self.decode_values(cycles_raw, values_raw, now, span_s)

    def prefetch(self, series: Iterable[tuple[str, str]]) -> Prefetched:
        """Fetch whole rings of many (agent, metric) series in one pipelined round trip, to read them from memory."""
        keys = list(dict.fromkeys(k for agent, metric in series for k in (_key(agent, "_cycles"), _key(agent, metric))))
        pipe = self.client.pipeline(transaction=False)
        for i in range(0, len(keys), MGET_CHUNK):
            pipe.mget(keys[i : i + MGET_CHUNK])
        values = [v for chunk in pipe.execute() for v in chunk] if keys else []
        return Prefetched(self, dict(zip(keys, values, strict=True)))

    def decode(self, cycles_raw: object, values_raw: object, now: datetime, span_s: float | None) -> list[Point]:
        """The current points of a ring, given its agent's cycle ring."""
        found = self._current(cycles_raw, values_raw, now, span_s)
        return [] if found is None else [Point(ts, found[1][i]) for c, i, ts in found[0] if found[2][i] == c]

    def decode_cycles(
        self, cycles_raw: object, values_raw: object, now: datetime, span_s: float | None
    ) -> dict[int, float]:
        """`decode` as {cycle: value}."""
        found = self._current(cycles_raw, values_raw, now, span_s)
        return {} if found is None else {c: found[1][i] for c, i, _ in found[0] if found[2][i] == c}

    def decode_values(self, cycles_raw: object, values_raw: object, now: datetime, span_s: float | None) -> list[float]:
        """`decode`'s values alone."""
        found = self._current(cycles_raw, values_raw, now, span_s)
        return [] if found is None else [found[1][i] for c, i, _ in found[0] if found[2][i] == c]

    def _current(
        self, cycles_raw: object, values_raw: object, now: datetime, span_s: float | None
    ) -> tuple[list[tuple[int, int, datetime]], Sequence[float], Sequence[int]] | None:
        """(the span's cycles, the ring's values, the ring's cycles), the span cut to the rings' length."""
        if not isinstance(cycles_raw, bytes) or not isinstance(values_raw, bytes):
            return None
        newest = self.cycle_of(now)
        oldest = newest - (self.slots - 1 if span_s is None else min(self.slots - 1, int(span_s // self.interval_s)))
        n = min(len(cycles_raw), len(values_raw)) // SLOT_BYTES
        # views on the rings, not tuples of every slot: a read visits the span's slots only, and a batch of
        # 500 agents' rings unpacked whole held ~25 MB of float and int objects at once
        cycles, values = _slots(cycles_raw, n, "Q"), _slots(values_raw, n, "d")
        # visit only the slots the span maps to (61 of 720 for 5 min), in time order
        return self._span(oldest, newest, n), values, cycles

    def _span(self, oldest: int, newest: int, n: int) -> list[tuple[int, int, datetime]]:
        """(cycle, slot, start) of each cycle in [oldest, newest] whose slot a ring of `n` slots has (a ring grows
        as it is written, to the window's length within its first hour): the same for every series read at one
        time, so it is made once, not filtered per read (at 1,000 agents that was a third of a health read)."""
        span = self._spans.get((oldest, newest, n))
        if span is None:
            if len(self._spans) >= 64:  # a few spans per `now` and ring length; a new `now` starts afresh
                self._spans.clear()
            cycles = range(max(oldest, 0), newest + 1)
            span = [(c, c % self.slots, _cycle_start(c, self.interval_s)) for c in cycles if c % self.slots < n]
            self._spans[(oldest, newest, n)] = span
        return span

    def memory_bytes(self, sample: int = 200) -> int:
        """An estimate of the window's Redis memory, from a sample of its keys."""
        keys = []
        for key in self.client.scan_iter(match=f"{names.REALTIME_PREFIX}*", count=1000):
            keys.append(key)
            if len(keys) >= sample:
                break
        if not keys:
            return 0
        total_keys = sum(1 for _ in self.client.scan_iter(match=f"{names.REALTIME_PREFIX}*", count=5000))
        used = sum(int(self.client.memory_usage(k) or 0) for k in keys)
        return used * total_keys // len(keys)


class Prefetched:
    """Series fetched by `RealtimeWindow.prefetch`, read like the window; a series not fetched is read from it."""

    def __init__(self, window: RealtimeWindow, raw: dict[str, bytes | None]) -> None:
        self.window = window
        self.raw = raw

    def read(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[Point]:
        cycles_key, values_key = _key(agent_id, "_cycles"), _key(agent_id, metric)
        if cycles_key not in self.raw or values_key not in self.raw:
            return self.window.read(agent_id, metric, now, span_s)
        return self.window.decode(self.raw[cycles_key], self.raw[values_key], now, span_s)

    def read_cycles(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> dict[int, float]:
        cycles_key, values_key = _key(agent_id, "_cycles"), _key(agent_id, metric)
        if cycles_key not in self.raw or values_key not in self.raw:
            return self.window.read_cycles(agent_id, metric, now, span_s)
        return self.window.decode_cycles(self.raw[cycles_key], self.raw[values_key], now, span_s)

    def read_values(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[float]:
        cycles_key, values_key = _key(agent_id, "_cycles"), _key(agent_id, metric)
        if cycles_key not in self.raw or values_key not in self.raw:
            return self.window.read_values(agent_id, metric, now, span_s)
        return self.window.decode_values(self.raw[cycles_key], self.raw[values_key], now, span_s)


def _slots(raw: bytes, n: int, code: Literal["Q", "d"]) -> Sequence[Any]:
    """The ring's first `n` slots (little-endian, as written): a view where the machine's order is the same."""
    if sys.byteorder != "little":
        return struct.unpack_from(f"<{n}{code}", raw)
    view = memoryview(raw)[: n * SLOT_BYTES]
    return view.cast("Q") if code == "Q" else view.cast("d")


@functools.lru_cache(maxsize=8192)
def _cycle_start(cycle: int, interval_s: float) -> datetime:
    return datetime.fromtimestamp(cycle * interval_s, tz=UTC)


T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of `size` (the last shorter): a prefetch per slice keeps a fleet's rings
    out of memory at once."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _key(agent_id: str, name: str) -> str:
    return f"{names.REALTIME_PREFIX}{agent_id}\x00{name}"
