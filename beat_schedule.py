"""The beat schedule as plain data: which task runs how often.

`every` is a period in seconds, or names the setting that holds it, so operators tune intervals
through VSMMON_COLLECT_INTERVAL_S / VSMMON_HEALTH_INTERVAL_S without touching this file.
`expires_after_period` drops a run still queued when the next one is due: a backlog of stale
collections would only measure the past.
"""

from vsmmon import names

ANALYSIS_EVERY_S = 60
WEBHOOK_FLUSH_EVERY_S = 5  # a group goes out within 5 s of its due time

SCHEDULE = {
    "collect-metrics": {
        "task": names.COLLECT_RUN,
        "every": "collect_interval_s",
        "expires_after_period": True,
    },
    "analyse-fleet": {  # trends, forecasts, time to exhaustion, capacity plans, recommendations
        "task": names.ANALYSIS_RUN,
        "every": ANALYSIS_EVERY_S,
        "expires_after_period": True,
    },
    "assess-health": {
        "task": names.HEALTH_ASSESS,
        "every": "health_interval_s",
        "expires_after_period": True,
    },
    "audit-worker": {  # S3*: one worker, drawn at random, probed beyond its self-report
        "task": names.HEALTH_AUDIT,
        "every": "audit_interval_s",
        "expires_after_period": True,
    },
    "resend-to-alertmanager": {  # firing alerts again before their endsAt (a no-op without ALERTMANAGER_URLS)
        "task": names.ALERTS_RESEND,
        "every": "alertmanager_resend_s",
        "expires_after_period": True,
    },
    "flush-webhook-groups": {  # webhook groups whose group_wait / interval ran out (a no-op without WEBHOOK_URLS)
        "task": names.ALERTS_FLUSH_WEBHOOKS,
        "every": WEBHOOK_FLUSH_EVERY_S,
        "expires_after_period": True,
    },
    "maintain-storage": {  # partitions ahead of time, retention by dropping partitions
        "task": names.MAINTENANCE_RUN,
        "every": 600,
        "expires_after_period": True,
    },
}
