"""Collection stage: turn what the host probe and the workers answered into one `Collection`.

Pure: the Celery task does the broadcast and hands the replies here with the clock reading. Text of a
reply (hostnames, versions, metric and queue names, errors) has its control characters replaced by U+FFFD
(`vsmmon.codec.scrub`) and the report says so in its `text` error: a worker cannot refuse a 422, and a NUL
would fail the whole cycle's write.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from vsmmon import names
from vsmmon.codec import scrub
from vsmmon.collect.broker import QueueStats
from vsmmon.models import METRIC_MAX, AgentKind, AgentReport, Collection, utc

MAX_DISCOVERED_QUEUES = 256
"""Queues read per cycle beyond the watched ones: bounds the probe's work and the queue series."""

MAX_METRICS_PER_AGENT = 500
MAX_NAME_LENGTH = 120
SPOILED = "control characters replaced by U+FFFD in"
SPOILED_NAMES = f"{SPOILED}: metric names"


def collect(
    *,
    collection_id: UUID,
    now: datetime,
    duration_ms: float,
    host_reports: Iterable[AgentReport],
    worker_replies: Mapping[str, Any],
    expected_workers: Iterable[str] = (),
    pushed_reports: Iterable[AgentReport] = (),
    queue_stats: Iterable[QueueStats] = (),
    queue_errors: Mapping[str, str] | None = None,
    interval_s: float = 5.0,
    stopped: Iterable[str] = (),
) -> Collection:
    """Build the collection of one cycle.

    `worker_replies` maps a worker's hostname to its `vsm_metrics` reply; a worker in
    `expected_workers` that did not answer is listed as unreachable. `pushed_reports` are what
    pushed agents sent since the last cycle, oldest first: the latest of each agent is kept.
    `queue_stats` and `queue_errors` are what the broker probes read, one report per queue.
    `stopped` are the workers that said goodbye since the last cycle: stopped on purpose, not unreachable. A
    worker whose reply says it is stopping (a warm shutdown began, `goodbye.leaving`) is one of them, and its
    reply is no report: answered after its goodbye was collected, it would read as back, then as lost.
    """
    reports = list(host_reports)
    leaving = stopping(worker_replies)
    workers = [parse_worker_reply(name, reply) for name, reply in sorted(worker_replies.items()) if name not in leaving]
    reports.extend(workers)
    reports.extend(host_report(reply) for reply in worker_replies.values() if _reports_host(reply))
    reports.extend(queue_reports(queue_stats, workers, queue_errors or {}))
    latest_pushed = {r.agent_id: r for r in pushed_reports}
    reports.extend(latest_pushed[agent_id] for agent_id in sorted(latest_pushed))
    unique: dict[str, AgentReport] = {}
    for report in reports:  # the first report of an id wins: a pushed agent cannot shadow a worker
        unique.setdefault(report.agent_id, report)
    gone = set(stopped) | leaving
    unreachable = tuple(sorted({scrub(n) for n in set(expected_workers) - set(worker_replies) - gone}))
    return Collection(collection_id, utc(now), duration_ms, tuple(unique.values()), unreachable, interval_s,
                      tuple(sorted({scrub(n) for n in gone})))  # fmt: skip


def stopping(replies: Mapping[str, Any]) -> set[str]:
    """The workers whose `vsm_metrics` reply says they are stopping."""
    return {name for name, reply in replies.items() if isinstance(reply, Mapping) and reply.get("stopping") is True}


def parse_worker_reply(hostname: str, reply: Any) -> AgentReport:
    """Read one worker's `vsm_metrics` reply; a malformed part becomes an error entry, not an exception."""
    spoiled: list[str] = []
    agent_id = _plain(hostname, "hostname", spoiled)
    if not isinstance(reply, Mapping):
        return AgentReport(agent_id, AgentKind.CELERY_WORKER, "", errors=_spoiled({"reply": _describe(reply)}, spoiled))
    errors = _errors(reply.get("errors"), spoiled)
    figures = task_metrics(reply.get("tasks"))
    histograms = {name: figures.pop(name) for name in [n for n in figures if names.latest_only(n)]}
    metrics, problems = clean_metrics({**_mapping(reply.get("metrics")), **figures})
    latest, dropped = clean_metrics(histograms)  # capped on their own: up to 16 a task name
    if "metrics" in dropped:
        dropped["histograms"] = dropped.pop("metrics").replace("metrics", "histogram figures")
    problems.update(dropped)
    if not isinstance(reply.get("metrics"), Mapping):
        problems["metrics"] = _describe(reply.get("metrics"))
    errors.update(problems)
    queues = reply.get("queues")
    # every text before the errors: their `text` entry names each field that held a control character
    host = _plain(str(reply.get("host", ""))[:MAX_NAME_LENGTH], "host", spoiled)
    version = _plain(str(reply.get("version", ""))[:MAX_NAME_LENGTH], "version", spoiled)
    config_hash = _plain(str(reply.get("config_hash", ""))[:64], "config_hash", spoiled)
    named = [_plain(str(q)[:MAX_NAME_LENGTH], "queues", spoiled) for q in queues] if isinstance(queues, list) else []
    return AgentReport(
        agent_id=agent_id,
        kind=AgentKind.CELERY_WORKER,
        host=host,
        metrics=metrics,
        version=version,
        errors=_spoiled(errors, spoiled),
        queues=tuple(sorted(named)),
        config_hash=config_hash,
        latest=latest,
    )


def _plain(text: str, field: str, spoiled: list[str]) -> str:
    """`text` scrubbed of control characters; `field` noted in `spoiled` when it held any."""
    clean = scrub(text)
    if clean != text and field not in spoiled:
        spoiled.append(field)
    return clean


def _errors(raw: Any, spoiled: list[str]) -> dict[str, str]:
    return {_plain(str(k)[:MAX_NAME_LENGTH], "errors", spoiled): _plain(str(v)[:500], "errors", spoiled)
            for k, v in _mapping(raw).items()}  # fmt: skip


def _spoiled(errors: dict[str, str], spoiled: list[str]) -> dict[str, str]:
    """`errors` with the `text` entry naming every field that had control characters replaced."""
    if errors.get("text") == SPOILED_NAMES:  # from `clean_metrics`
        spoiled = [*spoiled, "metric names"]
    if spoiled:
        errors["text"] = f"{SPOILED}: {', '.join(spoiled)}"
    return errors


def _reports_host(reply: Any) -> bool:
    return isinstance(reply, Mapping) and isinstance(reply.get("host_metrics"), Mapping)


def host_report(reply: Mapping[str, Any]) -> AgentReport:
    """The host section a host's elected worker adds to its reply, as the host's own report."""
    spoiled: list[str] = []
    host = _plain(str(reply.get("host", ""))[:MAX_NAME_LENGTH], "host", spoiled)
    section = reply["host_metrics"]
    metrics, problems = clean_metrics(section.get("metrics"))
    errors = _errors(section.get("errors"), spoiled)
    return AgentReport(f"host:{host}", AgentKind.HOST, host, metrics, errors=_spoiled({**errors, **problems}, spoiled))


def task_metrics(raw: Any) -> dict[str, Any]:
    """Per-task-name figures of a reply (`{name: {metric: value}}`) as flat `task.NAME.METRIC` names."""
    flat: dict[str, Any] = {}
    for name, figures in _mapping(raw).items():
        for metric, value in _mapping(figures).items():
            flat[f"task.{name}.{metric}"] = value
    return flat


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def clean_metrics(raw: Any) -> tuple[dict[str, float], dict[str, str]]:
    """Keep the finite numeric metrics of `raw`; say why each other entry was dropped."""
    if not isinstance(raw, Mapping):
        return {}, {"metrics": _describe(raw)}
    metrics: dict[str, float] = {}
    problems: dict[str, str] = {}
    for name, value in raw.items():
        key = scrub(str(name)[:MAX_NAME_LENGTH])
        if key != str(name)[:MAX_NAME_LENGTH]:
            problems["text"] = SPOILED_NAMES
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems[f"metric:{key}"] = f"expected a number, got {type(value).__name__}"
        elif isinstance(value, int) and abs(value) > METRIC_MAX:  # would not even convert to a float
            problems[f"metric:{key}"] = (
                f"expected a number of magnitude at most {METRIC_MAX:.4g}, got an integer of {value.bit_length()} bits"
            )
        elif not math.isfinite(value):
            problems[f"metric:{key}"] = f"expected a finite number, got {value}"
        elif abs(value) > METRIC_MAX:
            problems[f"metric:{key}"] = f"expected a number of magnitude at most {METRIC_MAX:.4g}, got {value:.4g}"
        elif len(metrics) >= MAX_METRICS_PER_AGENT:
            problems["metrics"] = f"more than {MAX_METRICS_PER_AGENT} metrics; the rest were dropped"
            break
        else:
            metrics[key] = float(value)
    return metrics, problems


def _describe(value: Any) -> str:
    return f"expected an object, got {type(value).__name__}"


def queue_reports(
    stats: Iterable[QueueStats], workers: Iterable[AgentReport], errors: Mapping[str, str]
) -> list[AgentReport]:
    """One report per queue (`queue:<name>`): depth, consumers, oldest message age, depth per priority.

    Where the broker cannot count consumers (Redis), the workers whose replies name the queue are counted.
    """
    consuming: dict[str, int] = {}
    for worker in workers:
        for name in worker.queues:
            consuming[name] = consuming.get(name, 0) + 1
    reports = []
    for s in stats:
        metrics = {"messages": float(s.messages)}
        metrics["consumers"] = float(s.consumers if s.consumers is not None else consuming.get(s.name, 0))
        if s.oldest_age_s is not None:
            metrics["oldest_age_s"] = s.oldest_age_s
        metrics.update({f"messages_priority_{step}": float(n) for step, n in s.by_priority.items()})
        reports.append(AgentReport(f"queue:{s.name}", AgentKind.QUEUE, "", metrics))
    reports.extend(
        AgentReport(f"queue:{name}", AgentKind.QUEUE, "", errors={"broker": problem})
        for name, problem in sorted(errors.items())
    )
    return reports


def consumed_queues(replies: Mapping[str, Any]) -> tuple[str, ...]:
    """The queues the fleet's workers say they consume (their `vsm_metrics` replies), at most MAX_DISCOVERED_QUEUES.

    The pipeline's own queues are probed on the pipeline's broker already, so they are left out here.
    """
    found: set[str] = set()
    for reply in replies.values():
        queues = reply.get("queues") if isinstance(reply, dict) else None
        for q in queues if isinstance(queues, list) else ():
            if isinstance(q, str) and 0 < len(q) <= 255 and q.isprintable() and q not in names.QUEUES:
                found.add(q)
    return tuple(sorted(found)[:MAX_DISCOVERED_QUEUES])
