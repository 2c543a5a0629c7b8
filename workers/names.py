"""Task names: the one place they are spelled, shared by the app, the tasks and beat.

Plain constants with no Celery import, so `beat_schedule.py` stays plain data and moving a function
never breaks the schedule or a message already queued. Names read `vsmmon.<stage>.<verb>`.
"""

from vsmmon import queues

COLLECT_RUN = "vsmmon.collect.run"
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
S3_CONTROL = "vsmmon.s3.control"
S3_VERIFY = "vsmmon.s3.verify"
S5_POLICY = "vsmmon.s5.policy"

ROUTES = {
    "vsmmon.collect.*": queues.COLLECT,
    # a collection's path, never behind an analysis: stored and counted within its interval
    "vsmmon.persist.*": queues.STORE,
    "vsmmon.aggregate.collection": queues.STORE,
    "vsmmon.aggregate.*": queues.ANALYSIS,
    "vsmmon.analysis.*": queues.ANALYSIS,
    "vsmmon.maintenance.*": queues.ANALYSIS,
    "vsmmon.health.*": queues.HEALTH,
    "vsmmon.alerts.record": queues.ANALYSIS,  # history writes wait for PostgreSQL, never in front of an alert
    "vsmmon.alerts.*": queues.ALERTS,
    "vsmmon.s3.*": queues.S3_CONTROL,
    "vsmmon.s5.*": queues.S5_POLICY,
}
"""Task-name patterns to queues: each stage has its own queue, so each can be scaled apart."""
