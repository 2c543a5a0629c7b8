"""In-memory `Store` for unit tests and demos; same contract as the PostgreSQL one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from vsmmon.errors import NotFound
from vsmmon.models import Collection, CollectionSummary, Rollup, Sample


@dataclass
class MemoryStore:
    """Keeps everything in dicts; not shared between processes."""

    summaries: dict[UUID, CollectionSummary] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    agents: dict[str, datetime] = field(default_factory=dict)
    _rollups: dict[tuple[str, str, int, datetime], Rollup] = field(default_factory=dict)

    def save_collection(self, collection: Collection, now: datetime) -> bool:
        if collection.id in self.summaries:
            return False
        self.summaries[collection.id] = CollectionSummary(
            collection.id, collection.started_at, collection.duration_ms, collection.agent_count,
            collection.sample_count, collection.unreachable, now, None,
        )  # fmt: skip
        self.samples.extend(collection.samples())
        for report in collection.reports:
            self.agents[report.agent_id] = max(self.agents.get(report.agent_id, now), collection.started_at)
        return True

    def apply_rollups(self, collection_id: UUID, rollups: list[Rollup], now: datetime) -> bool:
        summary = self.get_collection(collection_id)
        if summary.aggregated_at is not None:
            return False
        for rollup in rollups:
            key = (rollup.agent_id, rollup.metric, rollup.window_s, rollup.window_start)
            existing = self._rollups.get(key)
            self._rollups[key] = rollup if existing is None else existing.merge(rollup)
        self.summaries[collection_id] = CollectionSummary(
            summary.id, summary.started_at, summary.duration_ms, summary.agent_count,
            summary.sample_count, summary.unreachable, summary.persisted_at, now,
        )  # fmt: skip
        return True

    def latest_collection(self) -> CollectionSummary | None:
        return max(self.summaries.values(), key=lambda s: s.started_at, default=None)

    def get_collection(self, collection_id: UUID) -> CollectionSummary:
        try:
            return self.summaries[collection_id]
        except KeyError:
            raise NotFound(f"collection {collection_id} is not stored") from None

    def rollups(self, agent_id: str, metric: str, window_s: int) -> list[Rollup]:
        found = [r for (a, m, w, _), r in self._rollups.items() if (a, m, w) == (agent_id, metric, window_s)]
        return sorted(found, key=lambda r: r.window_start)

    def ping(self) -> None:
        return None
