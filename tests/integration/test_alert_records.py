"""The alerting history S5 reads: escalation handling judges a critical alert only once it was handled or its
timeout ran out (real Redis ledger, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import AlertStatus, Severity, Signal
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import PostgresStore

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
TIMEOUT_S = 300.0


def pain(queue: str) -> Signal:
    return Signal("algedonic", f"queue {queue}", Severity.CRITICAL, {"condition": "no_consumer"},
                  f"queue {queue} has messages and no live consumer", system_wide=True)  # fmt: skip


def test_a_critical_alert_counts_against_s5_only_once_its_timeout_ran_out_unhandled(
    settings: Settings, store: PostgresStore
) -> None:
    book, records = AlertBook(redis.Redis.from_url(settings.require("redis_url"))), AlertRecords(store.engine)
    policy = alert_desk.policy_for(settings)
    fired = alert_desk.report(book, "screen", [pain("a"), pain("b")], T0, ttl_s=3600, policy=policy)
    records.save(fired.changed, fired.events)
    assert sorted(a.status.value for a in fired.changed) == ["firing", "firing"]
    acked = alert_desk.acknowledge(book, fired.changed[0].fingerprint, "ops", T0 + timedelta(seconds=10))
    records.save(acked.changed, acked.events)

    def handling(now: datetime) -> tuple[int, int]:
        return records.critical_handling(T0 - timedelta(hours=24), TIMEOUT_S, now)

    assert handling(T0 + timedelta(seconds=5)) == (0, 0)  # nothing handled, nothing overdue: nothing judged
    assert handling(T0 + timedelta(seconds=60)) == (1, 1)  # the acknowledged one; the other still has time
    assert handling(T0 + timedelta(seconds=TIMEOUT_S + 1)) == (2, 1)  # the other's timeout ran out unhandled


def test_open_alerts_are_counted_by_severity_and_status(settings: Settings, store: PostgresStore) -> None:
    book, records = AlertBook(redis.Redis.from_url(settings.require("redis_url"))), AlertRecords(store.engine)
    policy = alert_desk.policy_for(settings)
    assert records.open_counts() == {}
    slow = Signal("memory_growth", "w1", Severity.WARNING, {}, "w1's memory grows")  # pending for 30 s first
    fired = alert_desk.report(book, "screen", [pain("a"), pain("b"), pain("c"), slow], T0, ttl_s=3600, policy=policy)
    records.save(fired.changed, fired.events)
    a, b = (next(x for x in fired.changed if x.target == f"queue {q}") for q in ("a", "b"))
    for outcome in (
        alert_desk.acknowledge(book, a.fingerprint, "ops", T0 + timedelta(seconds=10)),
        alert_desk.resolve(book, b.fingerprint, "ops", T0 + timedelta(seconds=20), policy),
    ):
        records.save(outcome.changed, outcome.events)
    assert records.open_counts() == {
        (Severity.CRITICAL, AlertStatus.FIRING): 1,
        (Severity.CRITICAL, AlertStatus.ACKNOWLEDGED): 1,
        (Severity.WARNING, AlertStatus.PENDING): 1,
    }  # the resolved one is not open
