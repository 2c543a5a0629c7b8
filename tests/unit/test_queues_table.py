"""The queues table: each queue's drain state and time from its length, consumers and flow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from vsmmon.health.systems import QueueFlow
from vsmmon.models import AgentInfo, AgentKind, AgentStatus
from vsmmon.tasks.queues import drain, queue_rows

T = datetime(2026, 12, 6, tzinfo=UTC)


def agent(
    agent_id: str, kind: AgentKind, metrics: Mapping[str, float], queues: tuple[str, ...] = (),
    status: AgentStatus = AgentStatus.ONLINE, errors: Mapping[str, str] | None = None,
) -> AgentInfo:  # fmt: skip
    return AgentInfo(agent_id, kind, "h", "v", status, T, T, T, 5.0, "", queues, metrics, errors or {})


def test_a_queue_drains_in_its_backlog_over_drain_less_arrivals() -> None:
    assert drain(120.0, 2.0, 3.0, 5.0) == ("draining", 60.0)
    assert drain(120.0, 2.0, 5.0, 5.0) == ("holding", None)  # never empties at these rates
    assert drain(120.0, 2.0, 5.001, 5.0) == ("holding", None)  # within a message a minute
    assert drain(120.0, 2.0, 4.999, 5.0) == ("holding", None)
    assert drain(120.0, 2.0, 6.0, 5.0) == ("growing", None)
    assert drain(0.0, 0.0, None, None) == ("empty", 0.0)
    assert drain(4.0, 0.0, None, None) == ("stalled", None)
    assert drain(4.0, 1.0, None, None) == ("unknown", None)
    assert drain(None, None, None, None) == ("unreadable", None)


def test_rows_are_the_live_queues_longest_first_with_their_consumers_and_flows() -> None:
    agents = [
        agent("celery@a", AgentKind.CELERY_WORKER, {}, ("orders", "emails")),
        agent("celery@b", AgentKind.CELERY_WORKER, {}, ("orders",)),
        agent("celery@gone", AgentKind.CELERY_WORKER, {}, ("orders",), AgentStatus.OFFLINE),
        agent("queue:emails", AgentKind.QUEUE, {"messages": 0.0, "consumers": 1.0}),
        agent("queue:orders", AgentKind.QUEUE, {"messages": 90.0, "consumers": 2.0, "oldest_age_s": 12.5}),
        agent("queue:vsm.collect", AgentKind.QUEUE, {"messages": 1.0, "consumers": 1.0}),
        agent("queue:old", AgentKind.QUEUE, {"messages": 5.0}, status=AgentStatus.OFFLINE),
        agent("queue:broken", AgentKind.QUEUE, {}, errors={"broker": "broker unreachable: timeout"}),
    ]
    flows = [QueueFlow("orders", 90.0, 1.0, 4.0), QueueFlow("emails", 0.0, 0.5, 0.5)]
    rows = {r.name: r for r in queue_rows(agents, flows)}
    assert [r.name for r in queue_rows(agents, flows)] == ["orders", "vsm.collect", "broken", "emails"]
    orders = rows["orders"]
    assert orders.workers == ("celery@a", "celery@b")
    assert (orders.state, orders.drain_time_s) == ("draining", pytest.approx(30.0))
    assert (orders.arrival_per_s, orders.drain_per_s, orders.oldest_age_s) == (1.0, 4.0, 12.5)
    assert (rows["emails"].state, rows["emails"].drain_time_s) == ("empty", 0.0)
    assert rows["vsm.collect"].pipeline
    assert not orders.pipeline
    assert rows["vsm.collect"].state == "unknown"  # no flow yet
    assert rows["broken"].state == "unreadable"
    assert rows["broken"].error == "broker unreachable: timeout"
    assert rows["orders"].to_dict()["workers"] == ["celery@a", "celery@b"]
