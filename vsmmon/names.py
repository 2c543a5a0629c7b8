"""Every name that crosses a process boundary, spelled once: queues, task names, Redis keys, channels.

Plain constants with no Celery import, shared by the library, the Celery app, `beat_schedule.py` and
the tests, so renaming a function never breaks the schedule, a queued message or a dashboard. Queue
and task names are part of vsmmon's contract with operators (S3/S5 consumers, Flower, routing rules).
The dashboard's messages are built here too (`dashboard_message`), so their shape is written once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

# --- queues, and the worker roles that consume them -------------------------------------------------
COLLECT_QUEUE = "vsm.collect"
STORE_QUEUE = "vsm.store"
ANALYSIS_QUEUE = "vsm.analysis"
HEALTH_QUEUE = "vsm.health"
ALERTS_QUEUE = "vsm.alerts"
S3_CONTROL_QUEUE = "vsm.s3.control"
S5_POLICY_QUEUE = "vsm.s5.policy"

GOODBYE_QUEUE = "vsm.fleet.goodbye"
"""On the fleet's broker: a monitored worker that stops cleanly says so here (`vsmmon.agent.goodbye`)."""
QUEUES = (COLLECT_QUEUE, STORE_QUEUE, ANALYSIS_QUEUE, HEALTH_QUEUE, ALERTS_QUEUE, S3_CONTROL_QUEUE, S5_POLICY_QUEUE)

ROLES: dict[str, tuple[str, ...]] = {
    "collector": (COLLECT_QUEUE, STORE_QUEUE),  # the collection's path: collect, persist, aggregate
    "analysis": (ANALYSIS_QUEUE,),
    "health": (HEALTH_QUEUE,),
    "alerts": (ALERTS_QUEUE,),
    "s3": (S3_CONTROL_QUEUE,),
    "s5": (S5_POLICY_QUEUE,),
    "all": QUEUES,
    "rest": tuple(q for q in QUEUES if q not in (COLLECT_QUEUE, STORE_QUEUE)),  # beside a `collector` worker
    # beside `collector` and `analysis` workers (`vsmmon up`): judgement and control never wait behind a window close
    "control": (HEALTH_QUEUE, ALERTS_QUEUE, S3_CONTROL_QUEUE, S5_POLICY_QUEUE),
}
"""`vsmmon worker --role ROLE` consumes these queues."""

# --- task names: `vsmmon.<stage>.<verb>` ------------------------------------------------------------
COLLECT_RUN = "vsmmon.collect.run"
COLLECT_SHARD = "vsmmon.collect.shard"
COLLECT_DISCOVER = "vsmmon.collect.discover"
PERSIST_COLLECTION = "vsmmon.persist.collection"
AGGREGATE_COLLECTION = "vsmmon.aggregate.collection"
AGGREGATE_CLOSE = "vsmmon.aggregate.close"
MAINTENANCE_RUN = "vsmmon.maintenance.run"
ANALYSIS_RUN = "vsmmon.analysis.run"
HEALTH_ASSESS = "vsmmon.health.assess"
HEALTH_CHECK = "vsmmon.health.check"
HEALTH_AUDIT = "vsmmon.health.audit"
ALERTS_EVALUATE = "vsmmon.alerts.evaluate"
ALERTS_RECORD = "vsmmon.alerts.record"
ALERTS_DELIVER = "vsmmon.alerts.deliver"
ALERTS_WEBHOOK = "vsmmon.alerts.webhook"
ALERTS_ALERTMANAGER = "vsmmon.alerts.alertmanager"
ALERTS_RESEND = "vsmmon.alerts.resend"
ALERTS_FLUSH_WEBHOOKS = "vsmmon.alerts.flush_webhooks"
S3_CONTROL = "vsmmon.s3.control"
S3_VERIFY = "vsmmon.s3.verify"
S5_POLICY = "vsmmon.s5.policy"
SENT_AT_HEADER = "vsm_sent_at"  # stamped by the plugin on publish; the broker probe reads a message's age from it
CANARY_TASK = "vsmmon.audit.canary"
"""Registered by the plugin in every monitored worker; the S3* audit sends it to the worker it probes."""
PROBE_TASKS = frozenset({COLLECT_RUN, COLLECT_DISCOVER, HEALTH_ASSESS, HEALTH_CHECK, HEALTH_AUDIT, CANARY_TASK})
"""The observer's own tasks: they wait on the fleet's replies, so a worker running one is not loaded by it.
The plugin counts them (they ran) but leaves them out of `active` (saturation, headroom, evenness)."""

ROUTES = {
    "vsmmon.collect.*": COLLECT_QUEUE,
    # a collection's path, never behind an analysis: stored and counted within its interval
    "vsmmon.persist.*": STORE_QUEUE,
    AGGREGATE_COLLECTION: STORE_QUEUE,
    "vsmmon.aggregate.*": ANALYSIS_QUEUE,
    "vsmmon.analysis.*": ANALYSIS_QUEUE,
    "vsmmon.maintenance.*": ANALYSIS_QUEUE,
    "vsmmon.health.*": HEALTH_QUEUE,
    ALERTS_RECORD: ANALYSIS_QUEUE,  # history writes wait for PostgreSQL, never in front of an alert
    "vsmmon.alerts.*": ALERTS_QUEUE,
    "vsmmon.s3.*": S3_CONTROL_QUEUE,
    "vsmmon.s5.*": S5_POLICY_QUEUE,
}
"""Task-name patterns to queues: each stage has its own queue, so each can be scaled apart."""

# --- Redis keys -------------------------------------------------------------------------------------
# Every key gets an expiry at its first write (kombu's own queue keys aside). Most live a few of their writer's
# periods; state that must last while the pipeline runs (the alert ledger and cooldowns, S5's standing, the
# counters) has `STATE_TTL_S`, renewed on every write, so Redis forgets it a week after vsmmon stops.
STATE_TTL_S = 7 * 86400
PREFIX = "vsm:"
STAGED_KEY = PREFIX + "staged:{id}"  # a collection waiting for the database (the outage buffer)
WORKERS_KEY = PREFIX + "workers"  # hash: hostname -> last seen, the workers each cycle waits for
DISCOVERY_KEY = PREFIX + "discovery:{slot}"  # the first cycle of a slot asks everyone
CLOSE_SENT_KEY = PREFIX + "close:{cutoff}"  # the aggregation that sent the close to this cutoff (epoch s)
PUSHED_KEY = PREFIX + "pushed"  # list: pushed reports waiting for the next cycle
LOST_COLLECTIONS_KEY = PREFIX + "lost_collections_total"
PUSHED_DROPPED_KEY = PREFIX + "pushed_dropped_total"  # pushed reports trimmed past the buffer's cap
PUSHED_REJECTED_KEY = PREFIX + "pushed_rejected_total"  # staged pushed reports that did not decode
PUSHED_KNOWN_KEY = PREFIX + "pushed:known:{day}"  # set: pushed agent ids seen that day (admission; 2 days)
PUSHED_NEW_KEY = PREFIX + "pushed:new:{minute}"  # new pushed agent ids admitted that minute (admission; 2 min)
REFUSED_REPORTS_KEY = PREFIX + "refused_reports_total"  # parts of staged collections persist left out (control chars)
REALTIME_PREFIX = PREFIX + "rt8:"  # one ring of float64 slots per series (the float32 rings of "rt:" expire unread)
ALERTS_STATE_KEY = PREFIX + "alerts:state"
ALERTS_LOCK_KEY = PREFIX + "alerts:lock"
WEBHOOK_GROUPS_KEY = PREFIX + "alerts:webhook-groups"  # the webhook groups (`vsmmon.alerts.grouping`), JSON
WEBHOOK_GROUPS_LOCK_KEY = PREFIX + "alerts:webhook-groups:lock"
ALERT_DELIVERIES_KEY = PREFIX + "alerts:deliveries"  # hash: "receiver|url|outcome" -> POSTs (for /metrics)
ALERTS_COOLDOWN_KEY = PREFIX + "alerts:cooldowns"  # hash: fingerprint -> "epoch seconds|severity" of its last delivery
HEALTH_PREVIOUS_KEY = PREFIX + "health:previous"  # bands and viability of the last assessment (hysteresis)
HEALTH_NOW_KEY = PREFIX + "health:now"  # an assessment asked for at once (a worker lost): one per collection interval
ANALYSED_AT_KEY = PREFIX + "analysis:at"  # when the last analysis ran (ISO 8601): how fresh its advice is
S3_ADVICE_KEY = PREFIX + "s3:advice:{alert}"  # how often S3 waited for fresh advice on this alert (at most 3)
S3_ANALYSIS_ASKED_KEY = PREFIX + "s3:analysis-asked"  # S3 sent an analysis run (one per advice wait)
EXHAUSTION_KEY = PREFIX + "analysis:exhaustion"  # time to exhaustion per resource, for S4
ACCURACY_KEY = PREFIX + "analysis:accuracy"  # sMAPE of the forecasts due in the last hour, for S4
AUDIT_KEY = PREFIX + "audit:last"
S5_STANDING_KEY = PREFIX + "s5:standing"
S3_CLAIM_KEY = PREFIX + "s3:claim:{target}"  # one S3 action per target per cooldown, across S3's processes
BEAT_SLOT_KEY = PREFIX + "beat:slot:{name}:{slot}"
HEALTH_CHECK_SENT_KEY = PREFIX + "health-check:{id}"  # an ad-hoc check the API sent: pending, not unknown
HEALTH_CHECK_SENT_TTL_S = 3600
TASK_FAILURES_KEY = (
    PREFIX + "tasks:failures:{task}"
)  # sorted set: a task name's last failures (`vsmmon.tasks.failures`)
STREAM_TICKET_KEY = PREFIX + "stream-ticket:{digest}"  # a dashboard's single-use event-stream ticket (its SHA-256)

# --- the per-task runtime histogram a worker reports (`task.NAME.FIGURE`, vsmmon.agent.counters) -----------
RUNTIME_BUCKETS_MS = (5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)
"""Upper bounds of each task name's runtime histogram: prometheus_client's default buckets, which
celery-exporter's `celery_task_runtime` uses, so a dashboard's `histogram_quantile` reads both alike."""
RUNTIME_COUNT = "runtime_count"
RUNTIME_SUM = "runtime_sum_s"


def runtime_bucket(bound_ms: int) -> str:
    """The figure counting the task's runs of at most `bound_ms` (cumulative, as Prometheus' `le`)."""
    return f"runtime_le_{bound_ms}ms"


HISTOGRAM_FIGURES = frozenset({RUNTIME_COUNT, RUNTIME_SUM, *map(runtime_bucket, RUNTIME_BUCKETS_MS)})


def latest_only(metric: str) -> bool:
    """A figure kept as the agent's latest (the registry, `/metrics`) and stored in no series: a histogram's
    buckets are scraped, never charted or aggregated (up to 16 per task name would multiply the samples)."""
    return metric.startswith("task.") and metric.rpartition(".")[2] in HISTOGRAM_FIGURES


# --- pub/sub channels of the dashboard ---------------------------------------------------------------
HEALTH_CHANNEL = PREFIX + "health"
"""Each assessment, as the JSON of `vsmmon.health.codec.assessment_to_dict`."""
ALERTS_CHANNEL = PREFIX + "alerts"
"""JSON {"type": "alert" | "control_action" | "policy_decision", "data": {...}}: see `dashboard_message`."""

MessageType = Literal["alert", "control_action", "policy_decision"]


def dashboard_message(type: MessageType, data: Mapping[str, Any], **extra: Any) -> str:
    """The JSON published on `ALERTS_CHANNEL`: `type`, then `extra` (e.g. `event`, `over_cap`), then `data`."""
    return json.dumps({"type": type, **extra, "data": dict(data)})
