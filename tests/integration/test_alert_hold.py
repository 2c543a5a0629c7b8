"""A firing alert is cleared only once its source reports it absent twice in a row (real Redis ledger): advice
that comes and goes with a flapping load is one alert, not one per analysis. A pending one gets no such hold:
a one-report blip never outlives its pending period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis

from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import AlertStatus, Severity, Signal
from vsmmon.config import Settings

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GROW = Signal("resource_adjustment", "w1@h", Severity.INFO, {"command": "pool_grow"}, "grow the pool", resource=True)


def test_a_firing_condition_one_report_misses_stays_one_alert_and_two_misses_resolve_it(
    settings: Settings, clean_services: None
) -> None:
    book = AlertBook(redis.Redis.from_url(settings.require("redis_url")))
    policy = replace(alert_desk.policy_for(settings), pending_s={}, resolve_after_s=0.0)

    def analysis(minute: int, *signals: Signal) -> None:
        alert_desk.report(book, "analysis", list(signals), T0 + timedelta(minutes=minute), ttl_s=180, policy=policy)

    analysis(0, GROW)
    (first,) = alert_desk.open_alerts(book)
    assert first.status is AlertStatus.FIRING
    analysis(1)  # the load paused: this analysis does not advise it
    analysis(2, GROW)  # and the next one does again
    (still,) = alert_desk.open_alerts(book)
    assert still.id == first.id  # the same instance: no resolve, no second firing
    analysis(3)
    analysis(4)  # absent twice in a row: gone
    assert alert_desk.open_alerts(book) == []


def test_a_blip_one_report_long_closes_while_pending_though_other_sources_keep_stepping(
    settings: Settings, clean_services: None
) -> None:
    book = AlertBook(redis.Redis.from_url(settings.require("redis_url")))
    policy = alert_desk.policy_for(settings)  # warnings pend 30 s
    blip = Signal("bottleneck", "queue vsm.health", Severity.WARNING, {"factor": "backlog"}, "1 waiting")
    alert_desk.report(book, "health", [blip], T0, ttl_s=90, policy=policy)
    alert_desk.report(book, "health", [], T0 + timedelta(seconds=30), ttl_s=90, policy=policy)
    for s in (35, 40, 60):  # the screen of each collection steps the manager too
        outcome = alert_desk.report(book, "screen", [], T0 + timedelta(seconds=s), ttl_s=15, policy=policy)
        assert outcome.notifications == ()
    assert alert_desk.open_alerts(book) == []
