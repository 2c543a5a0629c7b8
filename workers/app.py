"""The Celery app: JSON only, late acks, one queue per stage.

`create_app(settings)` builds a configured app; `celery -A vsmmon.workers.app` (Flower, the celery CLI) gets
one from the environment through the module attribute `app`, created on first access, not at import.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from kombu import Queue

from vsmmon import names
from vsmmon.agent import install as install_plugin
from vsmmon.config import Settings, load_settings
from vsmmon.workers import beat_schedule
from vsmmon.workers.context import ContextFactory, PipelineApp, build_context
from vsmmon.workers.slots import AlignedSchedule

REDIS_TRANSPORT = "vsmmon.workers.transport:Transport"
MAX_MEMORY_PER_CHILD_KIB = 140 * 1024


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from vsmmon's."""
    return {
        "broker_url": settings.require("broker_url"),
        "result_backend": settings.effective_redis_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # a pool process that grew past this (KiB) after a task is replaced: a guard under P7's 150 MB cap, above
        # what the tasks need (at 10,000 agents a process peaks at ~119 MB after health, ~132 MB after analysis,
        # from a 90 MB start: they read the registry whole and the real-time window 100 agents at a time)
        "worker_max_memory_per_child": MAX_MEMORY_PER_CHILD_KIB,
        "task_ignore_result": True,
        "task_queues": [Queue(q) for q in names.QUEUES],
        "task_default_queue": names.ANALYSIS_QUEUE,
        "task_routes": {pattern: {"queue": q} for pattern, q in names.ROUTES.items()},
        "timezone": "UTC",
        "enable_utc": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # the pipeline's own tasks (about one a second) show in Flower; monitored fleets need not send events
        "worker_send_task_events": True,
        "beat_schedule": schedule_from(beat_schedule.SCHEDULE, settings),
        "result_expires": 3600,
        "broker_transport_options": transport_options(settings),
        # plain redis:// only: rediss:// keeps kombu's own (its TLS set-up is keyed on the scheme's name)
        "broker_transport": REDIS_TRANSPORT if settings.require("broker_url").startswith("redis://") else None,
    }


def transport_options(settings: Settings) -> dict[str, Any]:
    """Redis transport options: when a dead worker's unacknowledged tasks go back to their queue."""
    # Redis has no consumer acks: a message taken by a worker that died (acks_late) is put back once it has
    # been unacknowledged for the visibility timeout. That must exceed the longest task plus the longest
    # retry countdown a worker holds (maintenance: 120 s), or a running task is delivered twice, and stay
    # below the staging horizon, or the staged data is gone when the task returns. kombu's default sweep
    # (every 100 s) would add up to 100 s: sweep every timeout / 4, at most 10 s.
    if not settings.require("broker_url").startswith("redis"):
        return {}  # RabbitMQ redelivers a dead consumer's unacknowledged messages at once
    timeout_s = settings.visibility_timeout_s
    return {
        "visibility_timeout": timeout_s,
        "unacked_restore_interval": max(1, min(10, timeout_s // 4)),
        "unacked_restore_throttle": 1,
    }


def schedule_from(entries: dict[str, dict[str, Any]], settings: Settings) -> dict[str, dict[str, Any]]:
    """Resolve the plain-data schedule against the settings' intervals."""
    resolved = {}
    for key, entry in entries.items():
        every = entry["every"]
        period_s = float(getattr(settings, every) if isinstance(every, str) else every)
        options = {"expires": period_s} if entry.get("expires_after_period") else {}
        # on the wall-clock grid, each run claimed by one beat (vsmmon.workers.slots): any number of beats
        resolved[key] = {"task": entry["task"], "schedule": AlignedSchedule(timedelta(seconds=period_s)),
                         "options": options}  # fmt: skip
    return resolved


def create_app(
    settings: Settings,
    context_factory: ContextFactory = build_context,
) -> PipelineApp:
    """A configured app with the pipeline's tasks registered and the worker plugin installed."""
    app = PipelineApp(settings, context_factory)
    app.conf.update(celery_config(settings))
    install_plugin(app)
    from vsmmon.workers import aggregate, alerts, analyse, audit, collect, health, maintenance, persist, s3, s5

    for module in (collect, persist, aggregate, analyse, health, maintenance, alerts, s3, s5, audit):
        module.register(app)
    return app


def __getattr__(name: str) -> Celery:
    # `celery -A vsmmon.workers.app …` and Flower look up `app`: build it from the environment only then.
    if name in {"app", "celery"}:
        built = create_app(load_settings())
        globals()[name] = built
        return built
    raise AttributeError(name)
