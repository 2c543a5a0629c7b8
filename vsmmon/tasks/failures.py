"""The last failures of each task name: read from the workers' replies, kept in Redis.

A worker's plugin keeps its last failures (`vsmmon.agent.counters.Failure`: exception class and text, the task
id and time, never the task's arguments) and each reply carries those of the last two minutes. The collect
task hands them here: `parse_failures` reads them as text it does not trust (control characters replaced,
lengths cut, a malformed entry skipped), `FailureBook.record` keeps each once (a failure is the same JSON in
every reply that carries it) and the newest `KEEP` per task name, for a week.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from vsmmon import names
from vsmmon.codec import scrub

KEEP = 20
"""Failures kept per task name across the fleet."""
MAX_PER_REPLY = 10
TTL_S = 7 * 86400
_LIMITS = {"task": 120, "task_id": 64, "exception": 200, "message": 300}
ARGUMENTS_LIMIT = 300


@dataclass(frozen=True, slots=True)
class TaskFailure:
    task: str
    task_id: str
    worker: str
    exception: str
    message: str
    at: datetime
    arguments: str | None = None  # only from a worker whose plugin was installed with failure_arguments=True

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def parse_failures(worker: str, raw: Any) -> list[TaskFailure]:
    """The failures of one reply (`[{task, task_id, exception, message, at, arguments?}]`); what is not one is
    skipped."""
    if not isinstance(raw, list):
        return []
    found = []
    for entry in raw[:MAX_PER_REPLY]:
        if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) for k in _LIMITS):
            continue
        at = entry.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or not 0 < at < 1e11:
            continue
        text = {k: scrub(entry[k].replace("\n", " ")[:limit]) for k, limit in _LIMITS.items()}
        shown = entry.get("arguments")
        arguments = scrub(shown.replace("\n", " ")[:ARGUMENTS_LIMIT]) if isinstance(shown, str) else None
        found.append(TaskFailure(worker=scrub(worker)[:120], at=datetime.fromtimestamp(at, UTC), arguments=arguments,
                                 **text))  # fmt: skip
    return found


def failures_in(replies: Mapping[str, Any]) -> list[TaskFailure]:
    """The failures every reply of a collection carries (`vsm_metrics` replies by worker hostname)."""
    return [
        f for worker, r in replies.items() if isinstance(r, Mapping) for f in parse_failures(worker, r.get("failures"))
    ]


def _member(f: TaskFailure) -> str:
    return json.dumps(f.to_dict(), sort_keys=True, separators=(",", ":"))


def _decoded(raw: bytes | str) -> TaskFailure | None:
    try:
        d = json.loads(raw)
        return TaskFailure(d["task"], d["task_id"], d["worker"], d["exception"], d["message"],
                           datetime.fromisoformat(d["at"]), d.get("arguments"))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None  # another version's entry: not shown, and trimmed away in time


class FailureBook:
    """The newest `KEEP` failures of each task name (a sorted set by time per name; one JSON member each)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def record(self, failures: Iterable[TaskFailure]) -> int:
        by_task: dict[str, list[TaskFailure]] = {}
        for f in failures:
            by_task.setdefault(f.task, []).append(f)
        if not by_task:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for task, found in by_task.items():
            key = names.TASK_FAILURES_KEY.format(task=task)
            pipe.zadd(key, {_member(f): f.at.timestamp() for f in found})
            pipe.zremrangebyrank(key, 0, -(KEEP + 1))
            pipe.expire(key, TTL_S)
        pipe.execute()
        return sum(map(len, by_task.values()))

    def last(self, tasks: Iterable[str], n: int = KEEP) -> dict[str, list[TaskFailure]]:
        """Each task name's newest `n` failures, newest first (a name with none maps to [])."""
        wanted = list(dict.fromkeys(tasks))
        pipe = self.client.pipeline(transaction=False)
        for task in wanted:
            pipe.zrevrange(names.TASK_FAILURES_KEY.format(task=task), 0, max(0, n - 1))
        found = pipe.execute() if wanted else []
        return {t: [f for f in map(_decoded, raw) if f is not None] for t, raw in zip(wanted, found, strict=True)}
