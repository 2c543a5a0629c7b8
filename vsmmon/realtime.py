"""The real-time window: the last hour of every series in Redis, in fixed-size rings.

Each series is a Redis string of `slots` float32 values (720 slots of 4 bytes for 1 h at 5 s: 2.9 KB),
written in place with SETRANGE at slot `cycle % slots`; each agent has a ring of uint32 cycle numbers
saying which cycle last wrote each slot, so a reader keeps only current slots. At 1,000 agents x 20
metrics that is about 60 MB, whatever the traffic: the footprint is bounded by construction. Keys of
an agent that stops reporting expire after the window.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from vsmmon.models import Collection

PREFIX = "vsm:rt:"
_F32 = struct.Struct("<f")
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Point:
    ts: datetime
    value: float


class RealtimeWindow:
    """Write collections into the rings; read one series' recent points back."""

    def __init__(self, client: redis.Redis, interval_s: float, window_s: float = 3600) -> None:
        self.client = client
        self.interval_s = interval_s
        self.slots = max(1, math.ceil(window_s / interval_s))
        self.ttl_s = int(window_s + 10 * interval_s)

    def cycle_of(self, ts: datetime) -> int:
        return int(ts.timestamp() // self.interval_s)

    def write(self, collection: Collection) -> int:
        """Write every sample of the collection at its cycle's slot; returns how many were written."""
        cycle = self.cycle_of(collection.started_at)
        slot = cycle % self.slots
        refresh = slot % 60 == 0  # renew expiries now and then, not on every write
        pipe = self.client.pipeline(transaction=False)
        written = 0
        for report in collection.reports:
            if not report.metrics:
                continue
            base = f"{PREFIX}{report.agent_id}\x00"
            pipe.setrange(base + "_cycles", slot * 4, _U32.pack(cycle & 0xFFFFFFFF))
            for metric, value in report.metrics.items():
                pipe.setrange(base + metric, slot * 4, _F32.pack(value))
                written += 1
            if refresh:  # a new agent's keys get their expiry within 60 cycles: harmless meanwhile
                for key in (base + "_cycles", *(base + m for m in report.metrics)):
                    pipe.expire(key, self.ttl_s)
        pipe.execute()
        return written

    def read(self, agent_id: str, metric: str, now: datetime, span_s: float | None = None) -> list[Point]:
        """The series' points within `span_s` (default: the whole window) before `now`, oldest first."""
        base = f"{PREFIX}{agent_id}\x00"
        cycles_raw, values_raw = self.client.mget([base + "_cycles", base + metric])
        if not isinstance(cycles_raw, bytes) or not isinstance(values_raw, bytes):
            return []
        newest = self.cycle_of(now)
        oldest = newest - (self.slots - 1 if span_s is None else min(self.slots - 1, int(span_s // self.interval_s)))
        points = []
        for slot in range(min(len(cycles_raw), len(values_raw)) // 4):
            cycle = _U32.unpack_from(cycles_raw, slot * 4)[0]
            if oldest <= cycle <= newest and cycle % self.slots == slot:
                value = _F32.unpack_from(values_raw, slot * 4)[0]
                points.append(Point(datetime.fromtimestamp(cycle * self.interval_s, tz=UTC), value))
        return sorted(points, key=lambda p: p.ts)

    def memory_bytes(self, sample: int = 200) -> int:
        """An estimate of the window's Redis memory, from a sample of its keys."""
        keys = []
        for key in self.client.scan_iter(match=f"{PREFIX}*", count=1000):
            keys.append(key)
            if len(keys) >= sample:
                break
        if not keys:
            return 0
        total_keys = sum(1 for _ in self.client.scan_iter(match=f"{PREFIX}*", count=5000))
        used = sum(int(self.client.memory_usage(k) or 0) for k in keys)
        return used * total_keys // len(keys)
