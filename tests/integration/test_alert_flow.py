"""The alert manager in the pipeline: a simulated overload reaches S3, which grows a real worker's pool;
pain reaches S5 as a message on vsm.s5.policy and a policy decision; a webhook receiver gets the
Alertmanager-format message. Real Redis, PostgreSQL, Celery workers (the test plays beat)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from tests.integration.conftest import poll
from tests.integration.cycles import Beat
from tests.integration.fleet import control_app, fleet_workers
from vsmmon import names
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.codec import notification_to_dict
from vsmmon.alerts.groupbook import GroupBook
from vsmmon.alerts.grouping import Timers
from vsmmon.alerts.manager import step
from vsmmon.alerts.model import Alert, AlertPolicy, AlertState, AlertStatus, Notification, Severity, Signal
from vsmmon.config import Settings
from vsmmon.store.alert_records import AlertRecords, ControlAction
from vsmmon.store.postgres import PostgresStore, create_engine
from vsmmon.workers.app import create_app
from vsmmon.workers.context import PipelineApp

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def alert_settings(fast_settings: Settings) -> Settings:
    # warnings fire at the first check that sees them (no 30 s pending), so the test need not wait
    # S3 acts on a condition held 2 s (not 60): its deferral is exercised, the test need not wait a minute
    return fast_settings.model_copy(
        update={"alert_pending_s": 0.0, "control_verify_after_s": 3600.0, "control_persist_s": 2.0}
    )


@pytest.fixture
def records(alert_settings: Settings) -> Iterator[AlertRecords]:
    engine = create_engine(alert_settings.sqlalchemy_url())
    yield AlertRecords(engine)
    engine.dispose()


@pytest.fixture
def app_for(alert_settings: Settings, clean_services: None) -> Any:
    """Start pipeline workers on given queues: `with app_for(queues) as app`."""

    def start(consumed: list[str], settings: Settings = alert_settings) -> Any:
        app = create_app(settings)
        return app, start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                                 queues=consumed, shutdown_timeout=20)  # fmt: skip

    return start


def assess(app: PipelineApp) -> dict[str, Any]:
    result: dict[str, Any] = app.send_task(names.HEALTH_ASSESS).get(timeout=30)
    return result


def pool_size(broker: str, hostname: str) -> int:
    stats = control_app(broker).control.inspect(destination=[hostname], timeout=2).stats() or {}
    return len(stats[hostname]["pool"]["processes"])


def overload(app: PipelineApp, broker: str, store: PostgresStore, records: AlertRecords, busy: str) -> ControlAction:
    """Saturate the worker `busy` (concurrency 1), collect, assess; S3's pool_grow action on it."""
    assert pool_size(broker, busy) == 1
    producer = control_app(broker)
    for _ in range(10):  # tasks that outlast the test: every process busy all along (saturation exactly 1)
        producer.send_task("fleet.sleep", args=(60.0,), queue="work")
    beat = Beat(app, store)
    for _ in range(3):
        beat.cycle()
    analysis = app.send_task(names.ANALYSIS_RUN).get(timeout=60)  # the capacity plan: S3's one decision
    assert f"resource_adjustment:{busy}:pool_grow" in analysis["recommendations"], analysis
    assess(app)  # sees the worker saturated: a bottleneck, a resource alert for S3

    def grown() -> ControlAction | None:
        rows = [r for r in records.actions() if r.target == busy and r.action == "pool_grow"]
        return rows[0] if rows else None

    return poll(grown, deadline_s=30, what="S3 to grow the busy worker's pool")


def test_overload_reaches_s3_which_grows_the_workers_pool(
    app_for: Any, alert_settings: Settings, store: PostgresStore, records: AlertRecords, tmp_path: Path
) -> None:
    broker = alert_settings.require("broker_url")
    app, worker = app_for(list(names.QUEUES))
    with worker, fleet_workers(broker, ["busy"], tmp_path, concurrency=1, queues="work") as (busy,):
        action = overload(app, broker, store, records, busy.hostname)
        assert action.before["processes"] == 1
        assert action.before["pool"] == "prefork"
        assert action.after["processes"] == 3, action  # max_step 2, bound 16
        assert action.params == {"n": 2}
        assert action.dry_run is False
        assert busy.hostname in action.reason
        assert pool_size(broker, busy.hostname) == 3  # seen through inspect stats, not S3's own record
        alert = records.alert(str(action.alert_id))
        # two alerts say it: the worker's bottleneck and the capacity plan's advice to grow it; one action
        assert alert["type"] in ("bottleneck", "resource_adjustment")
        assert alert["target"] == busy.hostname
        both = poll(lambda: [r for r in records.actions() if r.target == busy.hostname][1:] and
                    [r for r in records.actions() if r.target == busy.hostname], deadline_s=30,
                    what="S3's decision on the second alert")  # fmt: skip
        assert [r.action for r in both if r.applied] == ["pool_grow"], both
        assert any(e["event"] == "notified" and "s3" in e["detail"]["routes"] for e in alert["events"])
        busy.kill()  # its tasks outlast the test: no warm shutdown waiting for them
        assert worker


def test_a_busy_worker_with_nothing_waiting_gets_no_action_and_s3_says_why(
    app_for: Any, alert_settings: Settings, store: PostgresStore, records: AlertRecords, tmp_path: Path
) -> None:
    """Saturated but not short: one long task on a one-process worker, an empty queue. The bottleneck fires;
    S3 takes no action: nothing waits in the worker's queues (nor does the capacity plan call for more)."""
    broker = alert_settings.require("broker_url")
    app, worker = app_for(list(names.QUEUES))
    with worker, fleet_workers(broker, ["steady"], tmp_path, concurrency=1, queues="work") as (steady,):
        control_app(broker).send_task("fleet.sleep", args=(60.0,), queue="work")
        beat = Beat(app, store)
        for _ in range(3):
            beat.cycle()
        analysis = app.send_task(names.ANALYSIS_RUN).get(timeout=60)
        assert not [r for r in analysis["recommendations"] if "pool_grow" in r], analysis
        assess(app)

        def decided() -> ControlAction | None:
            return next((r for r in records.actions() if r.target == steady.hostname), None)

        action = poll(decided, deadline_s=30, what="S3's decision on the busy worker")
        assert action.action == "none", action
        assert "nothing waits in" in action.reason  # the queue is empty at the last collection
        assert pool_size(broker, steady.hostname) == 1
        steady.kill()
        assert worker


def test_a_condition_gone_before_it_persisted_gets_no_action(
    alert_settings: Settings, clean_services: None, records: AlertRecords
) -> None:
    """S3 deferred a young alert; when the notification comes back the alert is no longer open: nothing done."""
    from vsmmon.workers.s3 import act

    app = create_app(alert_settings)
    sig = Signal("bottleneck", "busy@h", Severity.CRITICAL, {"factor": "queue"}, "busy@h: queue 0.00", resource=True)
    _, notes, _, _ = step(AlertState(), [sig], datetime.now(UTC))  # never written to the ledger: gone since
    result = act(app, app.context(), app, notes[0], deferred=True)
    assert result["action"] == "none"
    assert "did not persist" in result["reason"]
    assert records.actions() == []


def test_a_young_condition_is_deferred_before_it_is_planned(
    alert_settings: Settings, clean_services: None, records: AlertRecords
) -> None:
    """S3 decides nothing on an alert younger than `control_persist_s`, not even "none": it sends the
    notification back to itself and decides on what holds once the condition persisted."""
    from vsmmon.workers.s3 import act

    app = create_app(alert_settings)
    sig = Signal("bottleneck", "busy@h", Severity.CRITICAL, {"factor": "queue"}, "busy@h: queue 0.00", resource=True)
    _, notes, _, _ = step(AlertState(), [sig], datetime.now(UTC))
    result = act(app, app.context(), app, notes[0])
    assert result["action"] == "deferred", result
    assert "must hold 2 s more" in result["reason"]
    assert records.actions() == []  # no decision recorded on a condition that has not persisted
    client = redis.Redis.from_url(alert_settings.require("redis_url"))
    waiting = queued_tasks(client, names.S3_CONTROL_QUEUE)
    assert [(t["task"], t["args"][0]["alert"]["id"], t["args"][1]) for t in waiting] == [
        (names.S3_CONTROL, str(notes[0].alert.id), True)
    ]
    client.close()


def test_a_bottleneck_the_latest_analysis_predates_gets_fresh_advice_before_s3_decides(
    app_for: Any, alert_settings: Settings, store: PostgresStore, records: AlertRecords, tmp_path: Path
) -> None:
    """A burst that began after the last analysis: the advice S3 would read has not seen it (the analysis
    runs once a minute). S3 runs the analysis itself, once, and grows the pool on the fresh advice instead
    of recording "the capacity plan does not call for more processes"."""
    broker = alert_settings.require("broker_url")
    app, worker = app_for(list(names.QUEUES))
    with worker, fleet_workers(broker, ["busy"], tmp_path, concurrency=1, queues="work") as (busy,):
        producer = control_app(broker)
        for _ in range(10):
            producer.send_task("fleet.sleep", args=(60.0,), queue="work")
        beat = Beat(app, store)
        for _ in range(3):
            beat.cycle()
        client = redis.Redis.from_url(alert_settings.require("redis_url"))
        assert client.get(names.ANALYSED_AT_KEY) is None  # no analysis yet: no advice at all
        assess(app)  # the bottleneck fires; S3 defers it 2 s, then finds no current advice

        def grown() -> ControlAction | None:
            rows = [r for r in records.actions() if r.target == busy.hostname]
            assert all(r.action == "pool_grow" or "being adjusted by another" in r.reason for r in rows), rows
            return next((r for r in rows if r.action == "pool_grow"), None)

        # the bottleneck and the advice it brought about (or S3's headroom) reach S3 together: one grows the pool,
        # the other finds it taken; none may say the capacity plan does not call for more processes
        first = poll(grown, deadline_s=60, what="S3 to grow the busy worker's pool")
        analysed_at = datetime.fromisoformat(client.get(names.ANALYSED_AT_KEY).decode())
        assert analysed_at < first.at  # S3 asked for the analysis it acted on
        assert client.keys(names.S3_ADVICE_KEY.format(alert="*"))  # S3 asked, once per alert
        assert pool_size(broker, busy.hostname) == 3
        client.close()
        busy.kill()
        assert worker


def queued_tasks(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The messages waiting on a Redis queue, decoded (kombu: JSON envelope, base64 body)."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        body = json.loads(base64.b64decode(envelope["body"]))
        found.append({"task": envelope["headers"]["task"], "args": body[0]})
    return found


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Receiver.fail_first > 0:  # a receiver that is briefly down: the webhook task retries
            Receiver.fail_first -= 1
            self.send_response(503)
        else:
            Receiver.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.fail_first = [], 1
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_pain_reaches_s5_as_a_message_and_a_decision_and_the_webhook_gets_alertmanager_json(
    app_for: Any, alert_settings: Settings, store: PostgresStore, records: AlertRecords, receiver: str,
) -> None:  # fmt: skip
    settings = alert_settings.model_copy(update={"watch_queues": "orphan", "webhook_urls": receiver,
                                                 "webhook_group_wait_s": 0.0})  # fmt: skip
    client = redis.Redis.from_url(settings.require("redis_url"))
    producer = control_app(settings.require("broker_url"))
    for _ in range(3):
        producer.send_task("fleet.ok", queue="orphan")  # a queue nobody consumes: algedonic pain
    without_s5 = [q for q in names.QUEUES if q != names.S5_POLICY_QUEUE]
    app, worker = app_for(without_s5, settings)
    with worker:
        Beat(app, store).cycle()
        waiting = poll(lambda: queued_tasks(client, names.S5_POLICY_QUEUE) or None, deadline_s=20,
                       what="a message on vsm.s5.policy")  # fmt: skip
        (message,) = waiting
        assert message["task"] == names.S5_POLICY
        alert = message["args"][0]["alert"]
        assert (alert["type"], alert["target"], alert["severity"]) == ("algedonic", "queue orphan", "critical")
        assert alert["labels"] == {"condition": "no_consumer"}
        book = AlertBook(client)
        (open_alert,) = [a for a in book.read().state.alerts.values() if a.type == "algedonic"]
        assert str(open_alert.id) == alert["id"]
        payload = poll(lambda: Receiver.received[0] if Receiver.received else None, deadline_s=30,
                       what="the webhook receiver to get the notification (after one 503)")  # fmt: skip
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "vsmmon"
    (sent,) = payload["alerts"]
    assert sent["labels"] == {"alertname": "algedonic", "severity": "critical", "target": "queue orphan",
                              "condition": "no_consumer"}  # fmt: skip
    assert sent["endsAt"] == "0001-01-01T00:00:00Z"
    assert sent["startsAt"].endswith("Z")
    assert sent["fingerprint"] == open_alert.fingerprint
    assert payload["externalURL"] == settings.external_url
    assert {"groupKey", "truncatedAlerts", "groupLabels", "commonLabels", "commonAnnotations"} <= payload.keys()
    s5_app, s5_worker = app_for([names.S5_POLICY_QUEUE], settings)
    with s5_worker:
        decision = poll(lambda: records.decisions()[0] if records.decisions() else None, deadline_s=20,
                        what="S5's decision")  # fmt: skip
    assert decision.decision == "notify"
    assert str(decision.alert_id) == alert["id"]
    assert "queue orphan" in decision.detail["reason"]
    assert client.llen(names.S5_POLICY_QUEUE) == 0
    assert s5_app


def test_webhook_groups_wait_out_group_wait_and_the_flush_sends_one_message_per_alert_name(
    app_for: Any, alert_settings: Settings, receiver: str
) -> None:
    Receiver.fail_first = 0
    settings = alert_settings.model_copy(update={"webhook_urls": receiver, "webhook_group_wait_s": 10.0})
    now = datetime.now(UTC)
    signals = [Signal("bottleneck", f"w{i}@h", Severity.CRITICAL, {"factor": "queue"}, f"w{i}@h saturated",
                      resource=True) for i in (1, 2)] + [Signal("algedonic", "queue q", Severity.CRITICAL)]  # fmt: skip
    _, notes, _, _ = step(AlertState(), signals, now, AlertPolicy(pending_s={}, webhook=True))
    assert all("webhook" in n.routes for n in notes)
    app, worker = app_for([names.ALERTS_QUEUE], settings)
    with worker:
        app.send_task(names.ALERTS_DELIVER, args=([notification_to_dict(n) for n in notes],))
        book = GroupBook(redis.Redis.from_url(settings.require("redis_url")))
        groups = poll(lambda: book.read() or None, deadline_s=20, what="the notifications in their groups")
        assert {name: len(g.alerts) for name, g in groups.items()} == {"bottleneck": 2, "algedonic": 1}
        assert app.send_task(names.ALERTS_FLUSH_WEBHOOKS).get(timeout=20) == 0  # still in group_wait
        assert Receiver.received == []
        sent = poll(lambda: app.send_task(names.ALERTS_FLUSH_WEBHOOKS).get(timeout=20) or None, deadline_s=40,
                    what="the groups to come due after their 10 s wait")  # fmt: skip
        assert sent == 2
        poll(lambda: len(Receiver.received) == 2 or None, deadline_s=20, what="both groups' messages")
        assert app.send_task(names.ALERTS_FLUSH_WEBHOOKS).get(timeout=20) == 0  # sent, unchanged: nothing due
    by_name = {m["groupLabels"]["alertname"]: m for m in Receiver.received}
    assert by_name.keys() == {"bottleneck", "algedonic"}
    assert by_name["bottleneck"]["groupKey"] == '{}:{alertname="bottleneck"}'
    assert sorted(a["labels"]["target"] for a in by_name["bottleneck"]["alerts"]) == ["w1@h", "w2@h"]
    assert [a["labels"]["target"] for a in by_name["algedonic"]["alerts"]] == ["queue q"]


@pytest.mark.parametrize("stored", [b"not json", b"[1, 2]", b'{"bottleneck": {"alerts": [{"x": 1}]}}'])
def test_webhook_groups_that_are_not_groups_break_no_flush_and_are_replaced(
    alert_settings: Settings, clean_services: None, stored: bytes
) -> None:
    client = redis.Redis.from_url(alert_settings.require("redis_url"))
    client.set(names.WEBHOOK_GROUPS_KEY, stored)
    book, now, timers = GroupBook(client), datetime.now(UTC), Timers(0, 0, 14400)
    assert book.settle([], now, timers) == []  # no exception: the flush goes on
    _, notes, _, _ = step(AlertState(), [Signal("bottleneck", "w1@h", Severity.CRITICAL)], now,
                          AlertPolicy(pending_s={}, webhook=True))  # fmt: skip
    assert book.settle(notes, now, Timers(60, 0, 14400)) == []  # a new group, waiting out its minute
    assert {name: len(g.alerts) for name, g in book.read().items()} == {"bottleneck": 1}  # what it held is replaced


def test_an_action_that_did_not_help_is_pain_for_s5_which_holds_s3(
    app_for: Any, alert_settings: Settings, store: PostgresStore, records: AlertRecords, tmp_path: Path
) -> None:
    settings = alert_settings.model_copy(update={"control_verify_after_s": 3.0})
    broker = settings.require("broker_url")
    app, worker = app_for(list(names.QUEUES), settings)
    with worker, fleet_workers(broker, ["busy"], tmp_path, concurrency=1, queues="work") as (busy,):
        action = overload(app, broker, store, records, busy.hostname)
        assert action.before["watch"]["metric"] == "saturation"
        assert action.before["watch"]["value"] == 1.0
        beat = Beat(app, store)

        def verified() -> ControlAction | None:
            beat.cycle()  # the collections the check reads: still saturated, 3 of 3 processes busy
            row = records.action(action.id)
            return row if row.verified_at is not None else None

        row = poll(verified, deadline_s=60, what="S3 to check its action")
        assert row.effective is False
        assert row.after["signal"] == 1.0
        decision = poll(lambda: next((d for d in records.decisions() if d.decision == "hold"), None),
                        deadline_s=30, what="S5 to hold S3")  # fmt: skip
        assert "did not restore health" in decision.detail["reason"]
        assert decision.detail["alert"]["labels"] == {"condition": "control_failed"}
        app.send_task(names.S3_CONTROL, args=(notification_for(records, action),))
        held = poll(lambda: next((r for r in records.actions() if "S5 holds" in r.reason), None),
                    deadline_s=30, what="S3 to refuse to act while held")  # fmt: skip
        assert held.action == "none"
        assert pool_size(broker, busy.hostname) == 3  # no second growth
        busy.kill()


def notification_for(records: AlertRecords, action: ControlAction) -> dict[str, Any]:
    """A fresh firing notification of the action's alert, as the alert manager would send it."""
    row = records.alert(str(action.alert_id))
    now = datetime.now(UTC)
    alert = Alert(row["id"], row["fingerprint"], row["type"], row["target"], Severity(row["severity"]),
                  row["labels"], AlertStatus.FIRING, row["started_at"], now, resource=True)  # fmt: skip
    return notification_to_dict(Notification(alert, "reminder", ("dashboard", "s3"), now))


def consumed(broker: str, hostname: str) -> set[str]:
    replies = control_app(broker).control.inspect(destination=[hostname], timeout=2).active_queues() or {}
    return {q["name"] for q in replies.get(hostname, [])}


def test_protective_mode_stops_non_critical_queues_until_recovery(
    app_for: Any, alert_settings: Settings, records: AlertRecords, tmp_path: Path
) -> None:
    settings = alert_settings.model_copy(update={"s5_protective_queues": "reports"})
    broker = settings.require("broker_url")
    app, worker = app_for([names.S5_POLICY_QUEUE], settings)
    viability = Signal("viability", "system", Severity.CRITICAL, summary="viability 0.41 (critical)", system_wide=True)
    _, (firing,), _, _ = step(AlertState(), [viability], datetime.now(UTC))
    with worker, fleet_workers(broker, ["mixed"], tmp_path, concurrency=1, queues="work,reports") as (mixed,):
        assert {"work", "reports"} <= consumed(broker, mixed.hostname)
        app.send_task(names.S5_POLICY, args=(notification_to_dict(firing),))
        decision = poll(lambda: next(iter(records.decisions()), None), deadline_s=20, what="S5's decision")
        assert decision.decision == "protective_mode"
        assert decision.detail["cancelled"] == {"reports": [mixed.hostname]}
        poll(lambda: "reports" not in consumed(broker, mixed.hostname) or None, deadline_s=10,
             what="the worker to stop consuming reports")  # fmt: skip
        assert "work" in consumed(broker, mixed.hostname)  # the critical queue keeps its consumer
        recovery = Notification(firing.alert, "recovery", firing.routes, datetime.now(UTC))
        app.send_task(names.S5_POLICY, args=(notification_to_dict(recovery),))
        poll(lambda: "reports" in consumed(broker, mixed.hostname) or None, deadline_s=20,
             what="the worker to consume reports again")  # fmt: skip
        lifted = records.decisions()[0]
        assert lifted.decision == "notify"
        assert lifted.detail["lifts"] == ["protective_mode"]
