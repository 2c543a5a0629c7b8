"""One row per queue: what the broker says of it, how fast it fills and drains, when it empties; its last hour.

Pure given the registry's agents and a reader of the real-time window. A queue is a `queue:NAME` agent of the
collector (the pipeline's own queues, and every queue a worker of the fleet says it consumes); its length,
consumers and oldest message's age are the broker's at the last collection. Arrivals and drain are the health
stage's (`QueueFlow`, over the last 5 minutes): drain is what its live consumers finished a second (a worker's
share of each queue it consumes), arrivals that plus the backlog's growth. The drain time is the backlog over
their difference, at these rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vsmmon import names
from vsmmon.health.systems import QueueFlow
from vsmmon.models import AgentInfo, AgentKind
from vsmmon.store.realtime import SeriesReader

HOUR_S = 3600
CHARTED = ("messages", "oldest_age_s", "consumers")
PREFIX = "queue:"
STEADY_PER_S = 1 / 60
"""Arrivals and drain within a message a minute of each other: the queue holds steady."""

Drain = Literal["empty", "draining", "holding", "growing", "stalled", "unknown", "unreadable"]
"""Empty; emptying at these rates; as long as it was (arrivals equal drain: never empties at these rates);
filling; messages and nobody consuming; no rates yet (fewer than two collections of a consumer); the broker could
not be read."""
Points = list[tuple[float, float]]  # (unix seconds, value), oldest first


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    pipeline: bool  # one of vsmmon's own queues
    messages: float | None
    consumers: float | None
    oldest_age_s: float | None  # Redis only, and only for messages a vsmmon plugin stamped
    workers: tuple[str, ...]  # the live workers that say they consume it
    arrival_per_s: float | None
    drain_per_s: float | None
    drain_time_s: float | None  # 0 when empty; None when it does not empty at these rates, or they are unknown
    state: Drain
    error: str | None  # why the broker could not be read

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pipeline": self.pipeline,
            "messages": self.messages,
            "consumers": self.consumers,
            "oldest_age_s": self.oldest_age_s,
            "workers": list(self.workers),
            "arrival_per_s": self.arrival_per_s,
            "drain_per_s": self.drain_per_s,
            "drain_time_s": self.drain_time_s,
            "state": self.state,
            "error": self.error,
        }


def queue_agents(agents: Iterable[AgentInfo]) -> list[AgentInfo]:
    """The live queues of the registry, by name."""
    return sorted((a for a in agents if a.kind is AgentKind.QUEUE and a.live), key=lambda a: a.agent_id)


def drain(
    messages: float | None, consumers: float | None, arrival: float | None, drained: float | None
) -> tuple[Drain, float | None]:
    """A queue's drain state and time, from its length, consumers and rates."""
    if messages is None:
        return "unreadable", None
    if messages <= 0:
        return "empty", 0.0
    if not consumers:
        return "stalled", None
    if arrival is None or drained is None:
        return "unknown", None
    net = drained - arrival
    if net >= STEADY_PER_S:
        return "draining", messages / net
    return ("holding" if net > -STEADY_PER_S else "growing"), None


def queue_rows(agents: Sequence[AgentInfo], flows: Iterable[QueueFlow]) -> list[QueueRow]:
    """Every live queue, longest first, with its flow (`health.inputs.queue_flows` of the same agents)."""
    by_name = {f.name: f for f in flows}
    workers = [a for a in agents if a.kind is AgentKind.CELERY_WORKER and a.live]
    rows = []
    for q in queue_agents(agents):
        name = q.agent_id.removeprefix(PREFIX)
        flow = by_name.get(name)
        messages = q.metrics.get("messages")
        consumers = q.metrics.get("consumers")
        arrival = None if flow is None else flow.in_per_s
        drained = None if flow is None else flow.out_per_s
        state, drain_time = drain(messages, consumers, arrival, drained)
        rows.append(
            QueueRow(
                name=name,
                pipeline=name in names.QUEUES,
                messages=messages,
                consumers=consumers,
                oldest_age_s=q.metrics.get("oldest_age_s"),
                workers=tuple(sorted(w.agent_id for w in workers if name in w.queues)),
                arrival_per_s=arrival,
                drain_per_s=drained,
                drain_time_s=drain_time,
                state=state,
                error="; ".join(q.errors.values()) or None,
            )
        )
    return sorted(rows, key=lambda r: (-(r.messages or 0.0), r.name))


def queue_charts(name: str, reader: SeriesReader, now: datetime, interval_s: float) -> dict[str, Points]:
    """One queue's last hour at each collection: its length, its oldest message's age, its consumers."""
    return {
        metric: [(c * interval_s, v) for c, v in reader.read_cycles(PREFIX + name, metric, now, HOUR_S).items()]
        for metric in CHARTED
    }
