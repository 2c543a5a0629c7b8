"""What monitored systems use: the Celery worker plugin (`install`) and the push client (`Reporter`).

Celery is imported only when `install` is called, so importing `vsmmon.agent` stays Celery-free.
"""

from __future__ import annotations

from typing import Any

from vsmmon.agent.reporter import Reporter, ReportRejected


def install(app: Any, version: str | None = None, *, failure_arguments: bool = False) -> None:
    """Add vsmmon's inspect commands (`vsm_metrics`, `vsm_health`) and task counting to a Celery app.

    `version` names the monitored software's version, reported to vsmmon for identity coherence. With
    `failure_arguments` a task's last failures keep its arguments, as their senders' reprs (off by default:
    arguments can hold secrets).
    """
    from vsmmon.agent.plugin import install as _install

    _install(app, version, failure_arguments=failure_arguments)


__all__ = ["ReportRejected", "Reporter", "install"]
