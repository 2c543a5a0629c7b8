"""Sending pipeline tasks and reading their results, for the HTTP service (which imports no Celery)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from vsmmon.errors import TransientError


class CeleryGateway:
    """The `TaskGateway` of `vsmmon.web` on a Celery app."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, name: str, args: tuple[Any, ...] = ()) -> str:
        try:
            return str(self.app.send_task(name, args=args, retry=False).id)
        except Exception as e:  # kombu's connection errors vary by transport
            raise TransientError(f"broker unreachable: {e}") from e

    def result(self, task_id: str, timeout_s: float | None) -> tuple[str, Any]:
        """(state, result): waits up to `timeout_s` when given; PENDING with no result when not done."""
        handle: AsyncResult[Any] = AsyncResult(task_id, app=self.app)
        if timeout_s:
            try:
                handle.get(timeout=timeout_s, propagate=False, disable_sync_subtasks=False)
            except CeleryTimeout:
                return "PENDING", None
        state = str(handle.state)
        return state, handle.result if state == "SUCCESS" else (str(handle.result) if handle.failed() else None)
