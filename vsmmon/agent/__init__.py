"""What monitored apps install: the Celery worker plugin (`install`).

Celery is imported only when `install` is called, so importing `vsmmon.agent` stays Celery-free.
"""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Add vsmmon's inspect commands (`vsm_metrics`, `vsm_health`) to a Celery app's workers."""
    from vsmmon.agent.plugin import install as _install

    _install(app)


__all__ = ["install"]
