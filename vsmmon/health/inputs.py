"""Gather the health stage's inputs from the registry and the real-time window.

Rates and sustained figures come from the window (the last 5 min, 10 min for oscillation); nothing
here judges: `assessment.evaluate` does.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vsmmon.collect.registry import AgentRecord, visible
from vsmmon.config import Settings
from vsmmon.health.agents import AgentInputs
from vsmmon.health.systems import ControlInputs, QueueFlow
from vsmmon.models import PUSHED_KINDS, AgentInfo, AgentKind, AgentStatus
from vsmmon.store.realtime import RealtimeWindow, SeriesReader, batches

WINDOW_S = 300.0
OSCILLATION_S = 600.0
OPERATIONAL = frozenset({AgentKind.CELERY_WORKER, *PUSHED_KINDS})
AGENT_SERIES = ("active", "task_runtime_p95_s", "tasks_succeeded_total", "tasks_failed_total", "concurrency")
"""The series read per operational agent (fetched for a batch of agents at a time: `RealtimeWindow.prefetch`)."""
COMPLETIONS = ("tasks_succeeded_total", "tasks_failed_total")
BATCH_AGENTS = 100
"""Agents whose rings are fetched at once: 100 x 9 rings of 5.8 KB is ~5 MB (twice that while the reply is read).
At 500 a batch the analysis process peaked ~55 MB above its start at 10,000 agents; the whole fleet at once held
10,000 agents' rings (~350 MB) (`make soak` at 10,000 agents; `docs/scaling.md`)."""


@dataclass(frozen=True, slots=True)
class Gathered:
    agents: list[AgentInputs]
    queues: list[QueueFlow]
    control: ControlInputs
    broker_errors: list[str]


def counter_delta(values: Sequence[float]) -> float | None:
    """Increase of a counter over its values; a reset (restart) counts from zero."""
    if len(values) < 2:
        return None
    total = 0.0
    for a, b in itertools.pairwise(values):
        total += b - a if b >= a else b
    return total


def rate_per_s(cycles: Mapping[int, float], interval_s: float) -> float | None:
    """Increase per second of a counter read as {cycle: value} (`SeriesReader.read_cycles`)."""
    delta = counter_delta(list(cycles.values()))
    if delta is None:
        return None
    span = (next(reversed(cycles)) - next(iter(cycles))) * interval_s
    return delta / span if span > 0 else None


def gather(
    agents: Sequence[AgentInfo],
    window: RealtimeWindow,
    settings: Settings,
    now: datetime,
    exhaustion_s: Mapping[str, float | None] | None = None,
) -> Gathered:
    """Everything `evaluate` needs, from the registry and the last minutes of the real-time window."""
    shown = [a for a in agents if visible(_record(a), now, settings.purge_after_s)]
    # a worker that said goodbye left on purpose: neither in S1's mean nor in the capacity expected of the fleet
    operational = [a for a in shown if a.kind in OPERATIONAL and a.status is not AgentStatus.STOPPED]
    queue_agents = [q for q in shown if q.kind is AgentKind.QUEUE]
    inputs: list[AgentInputs] = []
    pool_series: dict[str, list[float]] = {}
    rates: dict[str, float | None] = {}
    for batch in batches(operational, BATCH_AGENTS):  # the rings of one batch in memory at a time
        reader = window.prefetch([(a.agent_id, m) for a in batch for m in AGENT_SERIES])
        found = [_agent_inputs(a, reader, settings, now) for a in batch]
        inputs += found
        for a, i in zip(batch, found, strict=True):
            if a.kind is AgentKind.CELERY_WORKER and i.live:
                pool_series[a.agent_id] = reader.read_values(a.agent_id, "concurrency", now, OSCILLATION_S)
                rates[a.agent_id] = _completion_rate(reader, a.agent_id, now, window.interval_s)
    live = {i.agent_id: i for i in inputs if i.live}
    workers = [a for a in operational if a.kind is AgentKind.CELERY_WORKER and a.agent_id in live]
    backlogs = window.prefetch([(q.agent_id, "messages") for q in queue_agents])
    queues = [_queue_flow(q, workers, rates, backlogs, now) for q in queue_agents]
    control = ControlInputs(
        active_total=sum(a.metrics.get("active", 0.0) for a in workers),
        concurrency_total=sum(a.metrics.get("concurrency", 0.0) for a in workers),
        pool_series=pool_series,
        identities=[(",".join(sorted(a.queues)), f"{a.version}|{a.config_hash}") for a in workers],
        exhaustion_s=dict(exhaustion_s or {}),
    )
    broker_errors = [f"{a.agent_id}: {e}" for a in shown if a.kind is AgentKind.BROKER for e in a.errors.values()]
    return Gathered(inputs, queues, control, broker_errors)


def queue_flows(
    agents: Sequence[AgentInfo], window: RealtimeWindow, settings: Settings, now: datetime
) -> list[QueueFlow]:
    """The queues of `gather`, alone (the analysis stage needs only these): one batch of reads."""
    shown = [a for a in agents if visible(_record(a), now, settings.purge_after_s)]
    workers = [a for a in shown if a.kind is AgentKind.CELERY_WORKER and a.live]
    queue_agents = [q for q in shown if q.kind is AgentKind.QUEUE]
    rates: dict[str, float | None] = {}
    for batch in batches(workers, BATCH_AGENTS):
        reader = window.prefetch([(w.agent_id, m) for w in batch for m in COMPLETIONS])
        rates.update((w.agent_id, _completion_rate(reader, w.agent_id, now, window.interval_s)) for w in batch)
    backlogs = window.prefetch([(q.agent_id, "messages") for q in queue_agents])
    return [_queue_flow(q, workers, rates, backlogs, now) for q in queue_agents]


def _completion_rate(window: SeriesReader, agent_id: str, now: datetime, interval_s: float) -> float | None:
    """Tasks a worker finished per second over the last 5 min (succeeded or failed); None if not known."""
    done = [rate_per_s(window.read_cycles(agent_id, m, now, WINDOW_S), interval_s) for m in COMPLETIONS]
    return None if any(d is None for d in done) else sum(d for d in done if d is not None)


def _record(a: AgentInfo) -> AgentRecord:
    return AgentRecord(a.agent_id, a.kind, a.last_seen, a.interval_s, AgentStatus(a.status), a.status_since)


def _agent_inputs(a: AgentInfo, window: SeriesReader, settings: Settings, now: datetime) -> AgentInputs:
    hard = a.metrics.get("memory_limit_bytes") or settings.memory_hard_bytes
    soft = 0.8 * hard if "memory_limit_bytes" in a.metrics else settings.memory_soft_bytes
    active = window.read_values(a.agent_id, "active", now, WINDOW_S)
    concurrency = a.metrics.get("concurrency")
    saturation = statistics.fmean(active) / concurrency if active and concurrency else None
    p95 = window.read_values(a.agent_id, "task_runtime_p95_s", now)
    return AgentInputs(
        agent_id=a.agent_id,
        kind=a.kind,
        live=a.live,
        metrics=a.metrics,
        memory_soft_bytes=soft,
        memory_hard_bytes=hard,
        succeeded_in_window=counter_delta(window.read_values(a.agent_id, "tasks_succeeded_total", now, WINDOW_S)),
        failed_in_window=counter_delta(window.read_values(a.agent_id, "tasks_failed_total", now, WINDOW_S)),
        saturation_sustained=saturation,
        runtime_p95_baseline_s=statistics.median(p95) if len(p95) >= 3 else None,
        lost_for_s=max(0.0, (now - a.status_since).total_seconds()) if a.status is AgentStatus.OFFLINE else None,
    )


def _queue_flow(
    q: AgentInfo, workers: Sequence[AgentInfo], rates: Mapping[str, float | None], window: SeriesReader, now: datetime
) -> QueueFlow:
    """One queue's flow; `rates` are its consumers' completions per second (`_completion_rate`)."""
    name = q.agent_id.removeprefix("queue:")
    consumers = [w for w in workers if name in w.queues]
    out = 0.0
    known = bool(consumers)
    for w in consumers:  # a worker's completions are shared among the queues it consumes
        done = rates.get(w.agent_id)
        if done is None:
            known = False
            continue
        out += done / max(1, len(w.queues))
    backlog = window.read_values(q.agent_id, "messages", now, OSCILLATION_S)
    growth = (backlog[-1] - backlog[0]) / OSCILLATION_S if len(backlog) >= 2 else 0.0
    saturations = []
    for w in consumers:
        concurrency = w.metrics.get("concurrency")
        if concurrency:
            saturations.append(w.metrics.get("active", 0.0) / concurrency)
    return QueueFlow(
        name=name,
        backlog=q.metrics.get("messages", 0.0),
        in_per_s=max(0.0, out + growth) if known else None,
        out_per_s=out if known else None,
        backlog_series=backlog,
        consumer_saturations=saturations if consumers else [],
    )
