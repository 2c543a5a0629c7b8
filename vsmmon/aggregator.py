"""Aggregation stage: fold a collection's samples into 5 min / 1 h / 24 h rollups.

Rollups are built per collection and merged into what is stored (`Rollup.merge`, an SQL upsert in
PostgreSQL), so no cycle re-reads a window's samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from vsmmon.models import ROLLUP_WINDOWS_S, Rollup, Sample


def window_start(ts: datetime, window_s: int) -> datetime:
    """Start of the window of `window_s` seconds (aligned to the Unix epoch) that holds `ts`."""
    epoch_s = int(ts.timestamp())
    return datetime.fromtimestamp(epoch_s - epoch_s % window_s, tz=UTC)


def aggregate(samples: Iterable[Sample], windows_s: Iterable[int] = ROLLUP_WINDOWS_S) -> list[Rollup]:
    """One rollup per (agent, metric, window length, window start) present in `samples`."""
    windows = tuple(windows_s)
    rollups: dict[tuple[str, str, int, datetime], Rollup] = {}
    for sample in samples:
        for window_s in windows:
            start = window_start(sample.ts, window_s)
            key = (sample.agent_id, sample.metric, window_s, start)
            single = Rollup(
                sample.agent_id, sample.metric, window_s, start, 1,
                sample.value, sample.value, sample.value, sample.value, sample.ts,
            )  # fmt: skip
            existing = rollups.get(key)
            rollups[key] = single if existing is None else existing.merge(single)
    return list(rollups.values())
