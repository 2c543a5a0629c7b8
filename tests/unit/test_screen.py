"""The algedonic screen of a collection, and that it agrees with the health check's fingerprints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from vsmmon.alerts.routing import signals_from_pain
from vsmmon.collect.screen import pain, screen
from vsmmon.health.assessment import pain as assessed_pain
from vsmmon.health.systems import QueueFlow
from vsmmon.models import AgentKind, AgentReport, Collection, Pain, PainCondition

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def collection(*reports: AgentReport, unreachable: tuple[str, ...] = ()) -> Collection:
    return Collection(uuid.uuid4(), NOW, 10.0, reports, unreachable)


WORKER = AgentReport("w1@h", AgentKind.CELERY_WORKER, "h", {"active": 1.0}, queues=("default",))


def queue(name: str, messages: float) -> AgentReport:
    return AgentReport(f"queue:{name}", AgentKind.QUEUE, "", {"messages": messages})


def test_a_backlog_nobody_consumes_is_pain_one_consumed_or_empty_is_not() -> None:
    found = pain(collection(WORKER, queue("default", 50), queue("orphan", 7), queue("idle", 0)))
    assert found == (Pain(PainCondition.NO_CONSUMER, "queue orphan", 7.0),)
    assert found[0].message == "queue orphan has 7 messages and no live consumer"


def test_no_judgement_on_consumers_while_a_worker_did_not_answer() -> None:
    assert pain(collection(WORKER, queue("orphan", 7), unreachable=("w2@h",))) == ()


def test_an_unreadable_broker_is_pain() -> None:
    broker = AgentReport("broker:127.0.0.1:6379", AgentKind.BROKER, "", errors={"server": "connection refused"})
    assert pain(collection(WORKER, broker)) == (
        Pain(PainCondition.UNREACHABLE, "broker", detail="broker:127.0.0.1:6379: connection refused"),
    )
    (signal,) = screen(collection(WORKER, broker))
    assert signal.summary == "broker unreachable: broker:127.0.0.1:6379: connection refused"
    assert (signal.type, signal.target, signal.severity, signal.system_wide) == (
        "algedonic",
        "broker",
        "critical",
        True,
    )
    assert signal.labels == {"condition": "unreachable"}


def test_screen_and_health_check_share_the_fingerprint() -> None:
    (from_screen,) = screen(collection(WORKER, queue("orphan", 7)))
    checked = assessed_pain([QueueFlow("orphan", 9, 1.0, 0.0)], {}, [], 1.0, None)
    (from_check,) = signals_from_pain(checked)
    assert from_screen.fingerprint == from_check.fingerprint
    assert from_screen.target == "queue orphan"
    broker = AgentReport("broker:r", AgentKind.BROKER, "", errors={"server": "connection refused"})
    (screened_broker,) = screen(collection(WORKER, broker))
    (checked_broker,) = signals_from_pain(assessed_pain([], {}, ["broker unreachable: timeout"], 1.0, None))
    assert screened_broker.fingerprint == checked_broker.fingerprint
