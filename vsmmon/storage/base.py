"""The `Store` protocol: what the pipeline needs from durable storage."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from vsmmon.models import Collection, CollectionSummary, Rollup


class Store(Protocol):
    """Durable storage of collections, samples, rollups and the agent registry.

    Every write is idempotent on its natural key: storing a collection twice stores it once, and
    the rollups of one collection are merged once.
    """

    def save_collection(self, collection: Collection, now: datetime) -> bool:
        """Store a collection, its samples and its agents; False when it was already stored."""
        ...

    def apply_rollups(self, collection_id: UUID, rollups: list[Rollup], now: datetime) -> bool:
        """Merge a stored collection's rollups; False when they were merged before."""
        ...

    def latest_collection(self) -> CollectionSummary | None:
        """The most recent stored collection, if any."""
        ...

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        """One stored collection.

        Raises:
            NotFound: no collection has this id.
        """
        ...

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        """Stored rollups of one series, oldest window first."""
        ...

    def ping(self) -> None:
        """Check the store answers.

        Raises:
            StoreUnavailable: it does not.
        """
        ...
