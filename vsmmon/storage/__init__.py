"""Storage: the `Store` protocol, its PostgreSQL and in-memory implementations, and the tables."""

from vsmmon.storage.base import Store

__all__ = ["Store"]
