"""Agent registry: who is alive, judged from when each agent last answered or pushed.

An agent is live when it was seen within 2 x its interval (Celery's rule for heartbeats, and the design's).
Judged at each collection's time `now`:
- online: seen at most half an interval ago (it answered or pushed for this cycle);
- stale: missed at least one report, but still live (age <= 2 x interval);
- offline: not seen for more than 2 x interval. A worker killed with SIGKILL sends no goodbye; it turns
  stale at the next cycle and offline by the third, so within 3 collection intervals, and the persist task
  that judges it so asks for a health assessment at once. (Two missed collections would be faster, but a
  collection slot that is late or skipped, or a self-report pushed a little late, would then read as an
  outage: the scenario suite's rolling restart did.)
- stopped: it said goodbye (a clean stop, `vsmmon.agent.goodbye`), or its reply says it is stopping: gone on
  purpose, not lost. It stays stopped until it is seen again after its goodbye (a stopping reply is no
  report, `vsmmon.collect.collector`), so a planned scale-in or a restart is not an outage.
Offline and stopped agents stay in the registry and history; live views hide them after `purge_after_s`, and
maintenance forgets them after `retention_agents_s` (`vsmmon.store.retention`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vsmmon.models import AgentKind, AgentStatus

OFFLINE_AFTER = 2.0
"""Intervals without a report after which an agent is offline (Celery's heartbeat rule)."""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """What the registry knows of one agent."""

    agent_id: str
    kind: AgentKind
    last_seen: datetime
    interval_s: float
    status: AgentStatus
    status_since: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AgentKind(self.kind))
        object.__setattr__(self, "status", AgentStatus(self.status))


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an agent's status, applied only if the agent is still in `from_status`."""

    agent_id: str
    at: datetime
    from_status: AgentStatus
    to_status: AgentStatus
    reason: str


def status_at(last_seen: datetime, interval_s: float, now: datetime) -> AgentStatus:
    """The status an agent last seen at `last_seen` has at `now`."""
    age_s = (now - last_seen).total_seconds()
    if age_s <= 0.5 * interval_s:
        return AgentStatus.ONLINE
    if age_s <= OFFLINE_AFTER * interval_s:
        return AgentStatus.STALE
    return AgentStatus.OFFLINE


def evaluate(records: Iterable[AgentRecord], now: datetime, stopped: Iterable[str] = ()) -> list[Transition]:
    """The transitions due at `now`; none for an agent whose status is still right.

    `stopped` are the workers that said goodbye in the cycle judged at `now`.
    """
    said_goodbye = set(stopped)
    transitions = []
    for record in records:
        if record.agent_id in said_goodbye:
            if record.status is not AgentStatus.STOPPED:
                reason = "stopped cleanly: it said goodbye"
                transitions.append(Transition(record.agent_id, now, record.status, AgentStatus.STOPPED, reason))
            continue
        if record.status is AgentStatus.STOPPED and record.last_seen <= record.status_since:
            continue  # gone on purpose, and not back since
        status = status_at(record.last_seen, record.interval_s, now)
        if status is not record.status:
            age_s = (now - record.last_seen).total_seconds()
            reason = f"last seen {age_s:.1f} s ago (interval {record.interval_s:g} s)"
            transitions.append(Transition(record.agent_id, now, record.status, status, reason))
    return transitions


def visible(record: AgentRecord, now: datetime, purge_after_s: float) -> bool:
    """Whether a live view shows the agent: offline and stopped ones leave after `purge_after_s`."""
    if record.status not in (AgentStatus.OFFLINE, AgentStatus.STOPPED):
        return True
    return now - record.status_since <= timedelta(seconds=purge_after_s)
