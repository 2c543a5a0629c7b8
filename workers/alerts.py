"""`vsmmon.alerts.*`: the alert manager's tasks (queue vsm.alerts).

- `evaluate(source, signals, ttl_s)`: a stage reports the conditions it sees; the manager steps and the
  notifications go out at once: S5 first (the critical path), then S3, the dashboard and webhooks;
- `record(alerts, events)`: the history rows, retried while PostgreSQL is away, so an outage delays the
  record, never an alert;
- `deliver(notifications)`: notifications decided elsewhere (a resolve from the API or the CLI);
- `webhook(url, payload)`: one Alertmanager-format POST, retried with backoff on 5xx and network errors;
  the messages are groups, one per alert name, sent on Alertmanager's timers (`vsmmon.alerts.grouping`):
  at once when a notification makes a group due, else by `flush_webhooks()` (beat, every few seconds);
- `alertmanager(url, alerts)`: alerts posted to an Alertmanager's API v2, the same way; `resend()` (beat,
  every `VSMMON_ALERTMANAGER_RESEND_S`) posts every firing alert again, as Alertmanager expects.
Each POST's outcome (sent, refused, retried, failed) is counted per receiver for `/metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from celery import Celery

from vsmmon import names
from vsmmon.alerts import alertmanager
from vsmmon.alerts.codec import (
    alert_from_dict,
    alert_message,
    alert_to_dict,
    notification_from_dict,
    notification_to_dict,
    signal_to_dict,
    signals_from_list,
)
from vsmmon.alerts.desk import Outcome, policy_for, report
from vsmmon.alerts.groupbook import GroupBook
from vsmmon.alerts.grouping import Timers
from vsmmon.alerts.model import Alert, Event, Notification, Signal
from vsmmon.alerts.routing import alertmanager_payload
from vsmmon.errors import InvalidInput, StoreUnavailable, TransientError
from vsmmon.redact import redact_url
from vsmmon.workers.context import VsmTask, WorkerContext

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_RECEIVER = "vsmmon"


def report_signals(app: Celery, source: str, signals: Sequence[Signal], ttl_s: float) -> None:
    """Hand a stage's signals to the alert manager (the conditions it sees holding now)."""
    app.send_task(names.ALERTS_EVALUATE, args=(source, [signal_to_dict(s) for s in signals], ttl_s))


def dispatch(app: Celery, ctx: WorkerContext, outcome: Outcome) -> None:
    """Deliver an outcome's notifications and have its rows recorded."""
    deliver(app, ctx, outcome.notifications)
    to_alertmanagers(app, ctx, [*outcome.changed, *(n.alert for n in outcome.notifications)])
    client = ctx.realtime.client
    for alert in outcome.changed:
        client.publish(names.ALERTS_CHANNEL, alert_message(alert))
    if outcome.changed or outcome.events:
        app.send_task(names.ALERTS_RECORD, args=([alert_to_dict(a) for a in outcome.changed],
                                                 [event_to_dict(e) for e in outcome.events]))  # fmt: skip


def deliver(app: Celery, ctx: WorkerContext, notifications: Sequence[Notification]) -> None:
    """S5 and S3 by their queues, the dashboard by pub/sub, webhooks by group (a retried task per due group)."""
    for route, task in (("s5", names.S5_POLICY), ("s3", names.S3_CONTROL)):
        for n in notifications:
            if route in n.routes:
                app.send_task(task, args=(notification_to_dict(n),))
    for n in notifications:
        ctx.realtime.client.publish(names.ALERTS_CHANNEL, alert_message(n.alert, n.kind, over_cap=n.over_cap))
    hooked = [n for n in notifications if "webhook" in n.routes]
    if hooked:
        to_webhooks(app, ctx, hooked)


def to_webhooks(app: Celery, ctx: WorkerContext, notifications: Sequence[Notification]) -> int:
    """These notifications into their webhook groups; each group now due to every webhook. The groups sent."""
    settings = ctx.settings
    if not settings.webhooks:
        return 0
    timers = Timers(settings.webhook_group_wait_s, settings.webhook_group_interval_s,
                    settings.webhook_repeat_interval_s)  # fmt: skip
    due = GroupBook(ctx.realtime.client).settle(notifications, ctx.clock(), timers)
    for group in due:
        payload = alertmanager_payload(list(group.alerts.values()), WEBHOOK_RECEIVER, settings.external_url)
        for url in settings.webhooks:
            app.send_task(names.ALERTS_WEBHOOK, args=(url, payload))
    return len(due)


def to_alertmanagers(app: Celery, ctx: WorkerContext, alerts: Sequence[Alert]) -> None:
    """Post these alerts' states (firing, acknowledged, resolved) to every configured Alertmanager."""
    urls = ctx.settings.alertmanagers
    if not urls:
        return
    latest = {a.id: a for a in alerts}  # one alert may change twice in an outcome: its last state
    body = alertmanager.batch(latest.values(), ctx.clock(), ctx.settings.alertmanager_resend_s,
                              ctx.settings.external_url)  # fmt: skip
    if body:
        for url in urls:
            app.send_task(names.ALERTS_ALERTMANAGER, args=(url, body))


def count_delivery(ctx: WorkerContext, receiver: str, url: str, outcome: str) -> None:
    """One POST's outcome, in the Redis hash `/metrics` reads (`vsmmon_alert_deliveries_total`)."""
    client = ctx.realtime.client
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(names.ALERT_DELIVERIES_KEY, f"{receiver}|{origin(url)}|{outcome}", 1)
    pipe.expire(names.ALERT_DELIVERIES_KEY, names.STATE_TTL_S)
    pipe.execute()


def origin(url: str) -> str:
    """scheme://host[:port] of a receiver's URL: a webhook's path or query often is its secret (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def post(task: VsmTask, receiver: str, url: str, body: object, *, retried: bool = True) -> httpx.Response:
    """POST `body` as JSON; a network error, 429 or 5xx raises TransientError (counted `retried` while the task
    retries, `failed` on its last try or when it does not retry); another 4xx is counted `refused` and logged,
    never retried."""
    shown = redact_url(url)
    last_try = not retried or task.request.retries >= (task.max_retries or 0)
    try:
        response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_S)
    except httpx.HTTPError as e:
        count_delivery(task.ctx, receiver, url, "failed" if last_try else "retried")
        raise TransientError(f"{receiver} {shown}: {type(e).__name__}: {e}") from None
    if response.status_code >= 500 or response.status_code == 429:
        count_delivery(task.ctx, receiver, url, "failed" if last_try else "retried")
        raise TransientError(f"{receiver} {shown}: HTTP {response.status_code}")
    if response.status_code >= 400:
        count_delivery(task.ctx, receiver, url, "refused")
        log.error("%s %s refused the alerts: HTTP %d %s", receiver, shown, response.status_code,
                  response.text[:200])  # fmt: skip
    else:
        count_delivery(task.ctx, receiver, url, "sent")
    return response


def event_to_dict(e: Event) -> dict[str, Any]:
    detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.detail.items()}
    return {"alert_id": str(e.alert_id), "at": e.at.isoformat(), "event": e.event, "detail": detail}


def event_from_dict(raw: Any) -> Event:
    if not isinstance(raw, dict):
        raise InvalidInput("event", "expected an object")
    try:
        return Event(UUID(raw["alert_id"]), datetime.fromisoformat(raw["at"]), raw["event"], dict(raw["detail"]))
    except (KeyError, ValueError, TypeError) as e:
        raise InvalidInput("event", f"malformed: {e}") from None


def register(app: Celery) -> None:
    @app.task(name=names.ALERTS_EVALUATE, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=1, retry_backoff_max=10, max_retries=None)  # fmt: skip
    def evaluate(self: VsmTask, source: str, signals: list[Any], ttl_s: float) -> dict[str, Any]:
        ctx = self.ctx
        parsed = signals_from_list(signals)
        outcome = report(ctx.alert_book, str(source), parsed, ctx.clock(), ttl_s=float(ttl_s),
                         policy=policy_for(ctx.settings))  # fmt: skip
        dispatch(self.app, ctx, outcome)
        return {
            "source": source,
            "signals": len(parsed),
            "notified": [f"{n.kind}:{n.alert.type}:{n.alert.target}" for n in outcome.notifications],
            "suppressed": len(outcome.suppressed),
        }

    @app.task(name=names.ALERTS_RECORD, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=30, max_retries=None)  # fmt: skip
    def record(self: VsmTask, alerts: list[Any], events: list[Any]) -> dict[str, int]:
        changed = [alert_from_dict(a) for a in alerts]
        self.ctx.alert_records.save(changed, [event_from_dict(e) for e in events])
        return {"alerts": len(changed), "events": len(events)}

    @app.task(name=names.ALERTS_DELIVER, base=VsmTask, bind=True, shared=False)
    def deliver_task(self: VsmTask, notifications: list[Any]) -> int:
        parsed = [notification_from_dict(n) for n in notifications]
        deliver(self.app, self.ctx, parsed)
        to_alertmanagers(self.app, self.ctx, [n.alert for n in parsed])
        return len(parsed)

    @app.task(name=names.ALERTS_WEBHOOK, base=VsmTask, bind=True, shared=False,
              autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=300, max_retries=8)  # fmt: skip
    def webhook(self: VsmTask, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = post(self, "webhook", url, payload)
        return {"url": redact_url(url), "status": response.status_code, "alerts": len(payload.get("alerts", []))}

    @app.task(name=names.ALERTS_FLUSH_WEBHOOKS, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def flush_webhooks(self: VsmTask) -> int:
        """The webhook groups whose timer ran out since the last notification (a no-op without WEBHOOK_URLS)."""
        return to_webhooks(self.app, self.ctx, [])

    @app.task(name=names.ALERTS_ALERTMANAGER, base=VsmTask, bind=True, shared=False)
    def alertmanager_task(self: VsmTask, url: str, alerts: list[Any]) -> dict[str, Any]:
        """One POST, never retried (as Prometheus): a retried batch would arrive after a newer state; the next
        resend carries every current one."""
        try:
            response = post(self, "alertmanager", alertmanager.endpoint(url), alerts, retried=False)
        except TransientError as e:
            log.warning("%s; the next resend carries these alerts again", e)
            return {"url": redact_url(url), "status": None, "alerts": len(alerts)}
        return {"url": redact_url(url), "status": response.status_code, "alerts": len(alerts)}

    @app.task(name=names.ALERTS_RESEND, base=VsmTask, bind=True, shared=False, ignore_result=False)
    def resend(self: VsmTask) -> int:
        """Every open firing alert to the Alertmanagers again, before its endsAt passes, and every alert resolved
        within the window they could still hold it firing (a lost resolve, one made by hand). Resolved ones
        come from the history: without PostgreSQL only the open ones go."""
        ctx = self.ctx
        if not ctx.settings.alertmanagers:
            return 0
        open_alerts = list(ctx.alert_book.read().state.alerts.values())
        since = ctx.clock() - timedelta(seconds=alertmanager.resend_window_s(ctx.settings.alertmanager_resend_s))
        try:
            resolved = ctx.alert_records.resolved_since(since)
        except StoreUnavailable as e:
            log.warning("resolved alerts not resent this time: %s", e)
            resolved = []
        reopened = {a.fingerprint for a in open_alerts}  # the same labels firing again: the open one speaks
        alerts = [*open_alerts, *(a for a in resolved if a.fingerprint not in reopened)]
        to_alertmanagers(self.app, ctx, alerts)
        return len(alerts)
