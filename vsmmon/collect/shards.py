"""Shards of a collection cycle: the work of one cycle split into tasks that any collector worker can take.

Pushed agents are hashed by id (CRC-32, the same in every process and version) into `SLOTS` buffer slots.
A cycle of `n` shards (a power of two, at most `SLOTS`) gives shard `k` the slots `s` with `s % n == k`, so
every slot belongs to exactly one shard whatever `n` is, and an agent's shard changes only when `n` does.

The asked fleet (the Celery workers answering `vsm_metrics`, their hosts, the brokers and queues) is shard 0's,
whole: the screen judges a queue with no consumer from every worker's queues in one collection, and one
broadcast per 200 workers already spreads those replies over threads. Shard 0 also takes its slots' pushes.

`n` follows the cycle's work, never the number of workers: `shard_agents` reports per shard. A second
collector worker (`--scale collector=2`) takes shards as they queue, with no setting of its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace

from vsmmon.models import AgentKind, CollectionSummary

SLOTS = 16
"""Buffer slots of pushed reports; the most shards a cycle can have."""
ASKED_KINDS = frozenset({AgentKind.CELERY_WORKER, AgentKind.HOST, AgentKind.BROKER, AgentKind.QUEUE})
"""Agents that come from asking the fleet, not from pushes: shard 0's."""


def slot_of(agent_id: str) -> int:
    """The buffer slot of a pushed agent's reports."""
    return zlib.crc32(agent_id.encode("utf-8", "surrogatepass")) % SLOTS


def shard_count(work: int, shard_agents: int) -> int:
    """Shards for a cycle of `work` reports: the smallest power of two giving each at most `shard_agents`
    (at most `SLOTS`)."""
    n = 1
    while n < SLOTS and work > n * shard_agents:
        n *= 2
    return n


def slots_of(shard: int, shards: int) -> tuple[int, ...]:
    """The buffer slots shard `shard` of `shards` drains."""
    if shards < 1 or SLOTS % shards or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: shards must divide {SLOTS} and 0 <= shard < shards")
    return tuple(s for s in range(SLOTS) if s % shards == shard)


def owner(kind: AgentKind, agent_id: str, shards: int) -> int:
    """The shard of a cycle of `shards` that holds (and judges) this agent."""
    return 0 if kind in ASKED_KINDS else slot_of(agent_id) % shards


def cycle_summary(parts: Sequence[CollectionSummary]) -> CollectionSummary:
    """One cycle's stored collections (one per shard, all started at the cycle's start) as one summary: counts
    summed, aggregated only once every shard is, named by shard 0's collection (the first stored until then)."""
    if not parts:
        raise ValueError("a cycle has at least one stored collection")
    first = min(parts, key=lambda p: (p.shard, p.persisted_at))
    shards = max(p.shards for p in parts)
    done = len({p.shard for p in parts}) >= shards and all(p.aggregated_at is not None for p in parts)
    return replace(
        first,
        duration_ms=max(p.duration_ms for p in parts),
        agent_count=sum(p.agent_count for p in parts),
        sample_count=sum(p.sample_count for p in parts),
        unreachable=tuple(u for p in sorted(parts, key=lambda p: p.shard) for u in p.unreachable),
        persisted_at=max(p.persisted_at for p in parts),
        aggregated_at=max(p.aggregated_at for p in parts if p.aggregated_at) if done else None,
        shards=shards,
        shards_stored=len({p.shard for p in parts}),
    )
