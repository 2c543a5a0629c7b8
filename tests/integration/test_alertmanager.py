"""Alerts delivered to a real Alertmanager (Debian's `prometheus-alertmanager`, installed by `make test`):
an alert vsmmon raises is listed by Alertmanager's API v2 with its labels, kept firing by the resend, and
resolved there when it resolves in vsmmon, or by the next resend when that post was lost or never made; a
refused POST is counted, not taken for a delivery."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery.contrib.testing.worker import start_worker

from tests.integration.conftest import poll
from tests.integration.daemons import serving
from vsmmon import names
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.model import Severity, Signal
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords
from vsmmon.store.postgres import create_engine
from vsmmon.workers.alerts import report_signals
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

ALERTMANAGER = os.environ.get("ALERTMANAGER", "/usr/bin/prometheus-alertmanager")  # `make alertmanager` installs it
CONFIG = """\
route:
  receiver: nobody
  group_wait: 1s
receivers:
  - name: nobody
"""
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, alone (no cluster); its base URL."""
    assert shutil.which(ALERTMANAGER), f"{ALERTMANAGER} missing: `make alertmanager` (run by `make test`) installs it"
    (tmp_path / "am.yml").write_text(CONFIG)

    def argv(port: int) -> list[str]:
        return [ALERTMANAGER, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]  # fmt: skip

    with serving(argv, tmp_path / "am.log", "Alertmanager") as base:
        yield base


def alerts_app(settings: Settings) -> tuple[PipelineApp, Any]:
    """The alerts queue's worker, and the analysis queue's (where the history is recorded)."""
    app = create_app(settings)
    return app, start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                             queues=[names.ALERTS_QUEUE, names.ANALYSIS_QUEUE], shutdown_timeout=20)  # fmt: skip


def listed(base: str, alertname: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager lists as active or suppressed (resolved ones are not listed)."""
    found: list[dict[str, Any]] = httpx.get(f"{base}/api/v2/alerts", timeout=5).json()
    return [a for a in found if a["labels"].get("alertname") == alertname]


PAIN = Signal("algedonic", "queue orphan", Severity.CRITICAL, {"condition": "no_consumer"},
              "queue orphan has 3 messages and no live consumer", system_wide=True)  # fmt: skip


def test_an_alert_reaches_alertmanager_is_kept_firing_and_resolves_there(
    alertmanager: str, fast_settings: Settings, clean_services: None
) -> None:
    settings = fast_settings.model_copy(
        update={"alertmanager_urls": alertmanager, "alertmanager_resend_s": 30.0, "alert_resolve_after_s": 0.0}
    )
    app, worker = alerts_app(settings)
    with worker:
        report_signals(app, "screen", [PAIN], ttl_s=60)  # a critical: fires at once
        (alert,) = poll(lambda: listed(alertmanager, "algedonic"), deadline_s=20, what="the alert in Alertmanager")
        assert alert["labels"] == {"alertname": "algedonic", "severity": "critical", "target": "queue orphan",
                                   "condition": "no_consumer"}  # fmt: skip
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"] == "queue orphan has 3 messages and no live consumer"
        assert alert["generatorURL"].startswith(f"{settings.external_url}/api/v1/alerts/")
        ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
        assert 100 < (ends - datetime.now(UTC)).total_seconds() <= 120  # 4 resends of 30 s ahead

        app.send_task(names.ALERTS_RESEND).get(timeout=20)  # the resend pushes endsAt on
        poll(lambda: [a for a in listed(alertmanager, "algedonic") if a["endsAt"] > alert["endsAt"]],
             deadline_s=20, what="the resend to move endsAt on")  # fmt: skip

        for _ in range(2):  # gone from two reports in a row (one missed report holds it): resolved at once
            report_signals(app, "screen", [], ttl_s=60)
        poll(lambda: not listed(alertmanager, "algedonic"), deadline_s=20, what="Alertmanager to resolve it")
    counts = redis.Redis.from_url(settings.require("redis_url")).hgetall(names.ALERT_DELIVERIES_KEY)
    sent = {k.decode(): int(v) for k, v in counts.items()}
    assert sent[f"alertmanager|{alertmanager}|sent"] >= 3  # fired, resent, resolved (labelled by origin only)
    assert not [k for k in sent if k.endswith(("|refused", "|failed"))], sent


def test_a_refused_post_is_counted_refused_and_not_retried(
    alertmanager: str, fast_settings: Settings, clean_services: None
) -> None:
    wrong = f"{alertmanager}/not-here"  # Alertmanager answers 404 under this prefix
    settings = fast_settings.model_copy(update={"alertmanager_urls": wrong})
    app, worker = alerts_app(settings)
    client = redis.Redis.from_url(settings.require("redis_url"))
    with worker:
        report_signals(app, "screen", [PAIN], ttl_s=60)
        key = f"alertmanager|{alertmanager}|refused".encode()  # the origin: a path may be a webhook's secret
        poll(lambda: client.hget(names.ALERT_DELIVERIES_KEY, key), deadline_s=20, what="the refusal to be counted")
    counts = client.hgetall(names.ALERT_DELIVERIES_KEY)
    assert counts == {key: b"1"}  # once: a 4xx is not retried, and nothing counts it as sent
    assert listed(alertmanager, "algedonic") == []


def test_a_resolve_alertmanager_never_heard_of_is_repaired_by_the_next_resend(
    alertmanager: str, fast_settings: Settings, clean_services: None
) -> None:
    """A resolve by hand from the CLI (no notification, nothing posted), or a lost resolve: the resend posts
    every alert resolved within the window Alertmanager could still hold it firing."""
    settings = fast_settings.model_copy(update={"alertmanager_urls": alertmanager, "alertmanager_resend_s": 30.0})
    app, worker = alerts_app(settings)
    engine = create_engine(settings.sqlalchemy_url())
    records = AlertRecords(engine)
    with worker:
        report_signals(app, "screen", [PAIN], ttl_s=60)
        poll(lambda: listed(alertmanager, "algedonic"), deadline_s=20, what="the alert in Alertmanager")
        poll(lambda: records.alerts("firing"), deadline_s=20, what="the firing recorded in the history")
        book = AlertBook(redis.Redis.from_url(settings.require("redis_url")))
        (open_alert,) = alert_desk.open_alerts(book)
        alert_desk.resolve(book, str(open_alert.id), "ops", datetime.now(UTC), alert_desk.policy_for(settings),
                           history=records)  # fmt: skip
        assert listed(alertmanager, "algedonic")  # nobody told Alertmanager
        assert app.send_task(names.ALERTS_RESEND).get(timeout=20) == 1
        poll(lambda: not listed(alertmanager, "algedonic"), deadline_s=20, what="the resend to resolve it there")
    engine.dispose()
