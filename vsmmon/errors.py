"""One exception tree: everything vsmmon raises on purpose is a `VsmmonError`.

`TransientError` is the branch a Celery task may retry (`autoretry_for`); everything else is final.
"""

from __future__ import annotations


class VsmmonError(Exception):
    """Base of every error vsmmon raises on purpose."""


class ConfigError(VsmmonError):
    """A setting is missing or has a value of the wrong form."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class InvalidInput(VsmmonError):
    """Input from outside (a message, a request body) does not have the expected form."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(VsmmonError):
    """A named thing (collection, agent) does not exist."""


class StoreRefused(VsmmonError):
    """The database refused a write for good (a value it cannot hold, a constraint): retrying will not help."""


class EmbeddedServerError(VsmmonError):
    """An embedded PostgreSQL or Redis server could not be started or stopped."""


class AlreadyRunning(VsmmonError):
    """Another `vsmmon up` already owns this data directory."""

    def __init__(self, pid: int, data_dir: str) -> None:
        super().__init__(f"vsmmon is already running from {data_dir} (pid {pid})")
        self.pid = pid
        self.data_dir = data_dir


class TransientError(VsmmonError):
    """A failure that may go away by itself (a service briefly unreachable); retrying is right."""


class StoreUnavailable(TransientError):
    """The database could not be reached or refused the operation for a passing reason."""


class BufferUnavailable(TransientError):
    """The Redis staging buffer could not be reached."""
