"""`vsmmon.maintenance.run`: partitions ahead of time, retention by dropping whole partitions, small tables
trimmed (agents offline or stopped past `VSMMON_RETENTION_AGENTS_S` among them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery

from vsmmon import names
from vsmmon.errors import TransientError
from vsmmon.store.retention import policies
from vsmmon.workers.context import VsmTask

AHEAD = timedelta(hours=3)


def register(app: Celery) -> None:
    @app.task(
        name=names.MAINTENANCE_RUN, base=VsmTask, bind=True, shared=False,
        autoretry_for=(TransientError,), retry_backoff=5, retry_backoff_max=120, max_retries=5,
    )  # fmt: skip
    def run(self: VsmTask) -> dict[str, Any]:
        ctx = self.ctx
        report = ctx.store.maintain(policies(ctx.settings), ctx.clock(), AHEAD)
        return {"created": list(report.created), "dropped": list(report.dropped), "deleted_rows": report.deleted_rows}
