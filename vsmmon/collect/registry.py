"""Agent registry: who is alive, judged from when each agent last answered or pushed.

An agent is live when it was seen within 2 x its interval (Celery's rule for heartbeats, and the design's).
Judged at each collection's time `now`, where an agent's last sighting is the start of the last collection that
held its report, so ages come in whole intervals give or take how late each cycle started; the bounds sit
half an interval past each whole one, so that jitter never decides a status:
- online: in this collection or the last (age <= 1.5 x interval). A pushed agent reports on its own clock:
  a push landing a moment after one collection drained its reports is in the next, so one collection in a
  while holds none of it and the next holds two; that is not a missed report (at 10,000 pushed agents a
  rule of "in this collection" turned thousands stale and back at every cycle);
- stale: missed the last two collections, still live (age <= 2.5 x interval);
- offline: not seen for more than that. A worker killed with SIGKILL sends no goodbye; it is stale at the
  second cycle after its last answer and offline at the third, so within 3 collection intervals, and the
  persist task that judges it so asks for a health assessment at once. (Two missed collections would be
  faster, but a collection slot that is late or skipped, or a self-report pushed a little late, would then
  read as an outage: the scenario suite's rolling restart did.)
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

ONLINE_WITHIN = 1.5
"""Intervals since its last report within which an agent is online: this collection or the last."""
OFFLINE_AFTER = 2.5
"""Intervals without a report after which an agent is offline: more than 2 (Celery's heartbeat rule), judged
at collections that start a little early or late."""


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
    if age_s <= ONLINE_WITHIN * interval_s:
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
