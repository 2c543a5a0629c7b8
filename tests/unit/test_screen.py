"""The algedonic screen of a collection, and that it agrees with the health check's fingerprints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from vsmmon.alerts.routing import signals_from_pain
from vsmmon.collect.screen import pain, screen
from vsmmon.models import AgentKind, AgentReport, Collection

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def collection(*reports: AgentReport, unreachable: tuple[str, ...] = ()) -> Collection:
    return Collection(uuid.uuid4(), NOW, 10.0, reports, unreachable)


WORKER = AgentReport("w1@h", AgentKind.CELERY_WORKER, "h", {"active": 1.0}, queues=("default",))


def queue(name: str, messages: float) -> AgentReport:
    return AgentReport(f"queue:{name}", AgentKind.QUEUE, "", {"messages": messages})


def test_a_backlog_nobody_consumes_is_pain_one_consumed_or_empty_is_not() -> None:
    found = pain(collection(WORKER, queue("default", 50), queue("orphan", 7), queue("idle", 0)))
    assert found == ("queue orphan has 7 messages and no live consumer",)


def test_no_judgement_on_consumers_while_a_worker_did_not_answer() -> None:
    assert pain(collection(WORKER, queue("orphan", 7), unreachable=("w2@h",))) == ()


def test_an_unreadable_broker_is_pain() -> None:
    broker = AgentReport("broker:127.0.0.1:6379", AgentKind.BROKER, "", errors={"server": "connection refused"})
    (signal,) = screen(collection(WORKER, broker))
    assert (signal.type, signal.target, signal.severity, signal.system_wide) == (
        "algedonic",
        "broker",
        "critical",
        True,
    )
    assert signal.labels == {"condition": "unreachable"}


def test_screen_and_health_check_share_the_fingerprint() -> None:
    (from_screen,) = screen(collection(WORKER, queue("orphan", 7)))
    (from_check,) = signals_from_pain(["queue orphan has 9 messages and no live consumer"])
    assert from_screen.fingerprint == from_check.fingerprint
    assert from_screen.target == "queue orphan"
