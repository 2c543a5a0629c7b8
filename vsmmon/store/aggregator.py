"""Aggregation stage: fold a collection's samples into 5 min rollups, and 5 min rollups into 1 h and 24 h ones.

Rollups are hierarchical: a collection only touches the 5 min window it falls in; a 1 h window is the merge of
its 5 min windows and a 24 h window the merge of its 1 h windows (`Rollup.merge` is exact for count, min, max,
sum, last and the quantile sketch), so the stores fold a finer window into the coarser one once, when it
closes, instead of re-merging every window at every cycle. Until then a coarse window reads as its stored
part combined with its finer windows not yet folded (`combine`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from vsmmon.models import ROLLUP_WINDOWS_S, Rollup, Sample
from vsmmon.sketch import Sketch, key_of

BASE_WINDOW_S = ROLLUP_WINDOWS_S[0]
"""The window each collection is merged into (5 min); the longer ones are folded from it."""


def window_start(ts: datetime, window_s: int) -> datetime:
    """Start of the window of `window_s` seconds (aligned to the Unix epoch) that holds `ts`."""
    epoch_s = int(ts.timestamp())
    return datetime.fromtimestamp(epoch_s - epoch_s % window_s, tz=UTC)


def aggregate(samples: Iterable[Sample], windows_s: Iterable[int] = (BASE_WINDOW_S,)) -> list[Rollup]:
    """One rollup per (agent, metric, window length, window start) present in `samples`."""
    windows = tuple(windows_s)
    rollups: dict[tuple[str, str, int, datetime], Rollup] = {}
    starts: dict[tuple[datetime, int], datetime] = {}  # a collection's samples share one time: align it once
    for sample in samples:
        sketch = Sketch((key_of(sample.value),), (1,))
        for window_s in windows:
            start = starts.get((sample.ts, window_s))
            if start is None:
                start = starts[(sample.ts, window_s)] = window_start(sample.ts, window_s)
            key = (sample.agent_id, sample.metric, window_s, start)
            single = Rollup(
                sample.agent_id, sample.metric, window_s, start, 1,
                sample.value, sample.value, sample.value, sample.value, sample.ts, sketch,
            )  # fmt: skip
            existing = rollups.get(key)
            rollups[key] = single if existing is None else existing.merge(single)
    return list(rollups.values())


def fold(rollups: Iterable[Rollup], window_s: int) -> list[Rollup]:
    """Finer rollups merged into the windows of `window_s` that hold them. Raises: ValueError if not finer."""
    coarse: dict[tuple[str, str, datetime], Rollup] = {}
    for r in rollups:
        if window_s % r.window_s:
            raise ValueError(f"a {r.window_s} s window does not fold into {window_s} s windows")
        start = window_start(r.window_start, window_s)
        rekeyed = Rollup(r.agent_id, r.metric, window_s, start, r.count, r.min, r.max, r.sum, r.last, r.last_ts,
                         r.sketch)  # fmt: skip
        key = (r.agent_id, r.metric, start)
        existing = coarse.get(key)
        coarse[key] = rekeyed if existing is None else existing.merge(rekeyed)
    return list(coarse.values())


def combine(rollups: Iterable[Rollup]) -> list[Rollup]:
    """Parts of the same windows merged into one rollup each, oldest window first."""
    merged: dict[tuple[str, str, int, datetime], Rollup] = {}
    for r in rollups:
        key = (r.agent_id, r.metric, r.window_s, r.window_start)
        existing = merged.get(key)
        merged[key] = r if existing is None else existing.merge(r)
    return sorted(merged.values(), key=lambda r: (r.window_start, r.agent_id, r.metric, r.window_s))
