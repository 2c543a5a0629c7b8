"""A mergeable quantile sketch: a log-bucket histogram (DDSketch's mapping) with a fixed relative error.

A value x with |x| >= `MIN_ABS` falls in bucket k = ceil(log_gamma |x|), gamma = (1 + ALPHA) / (1 - ALPHA), and
is read back as sign(x) * 2 gamma^k / (gamma + 1): within ALPHA (1 %) of x, relatively. Values closer to 0 than
`MIN_ABS` share bucket 0 and read back as 0; magnitudes above `MAX_ABS` are clamped to it. A sketch is just the
count of each bucket, so merging two is adding counts: windows merge exactly (associative, commutative) without
raw samples, and `quantile(q)` is within ALPHA of numpy's `percentile(xs, 100 q, method="lower")` of everything
merged in.

Keys are encoded so that their integer order is the order of the values they stand for: 0 for the zero bucket,
1 + k - K_MIN for positive values, -(1 + k - K_MIN) for negative ones; they fit a PostgreSQL `integer`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALPHA = 0.01
"""Relative accuracy of every quantile read back (DDSketch's alpha)."""
GAMMA = (1.0 + ALPHA) / (1.0 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MIN_ABS = 1e-9
"""Values closer to 0 than this count as 0."""
MAX_ABS = 1e300
"""Larger magnitudes count as this one (the accuracy holds up to it)."""
_K_MIN = math.ceil(math.log(MIN_ABS) / _LOG_GAMMA)


def key_of(value: float) -> int:
    """The encoded bucket of one finite value. Raises: ValueError for NaN or infinities."""
    if not math.isfinite(value):
        raise ValueError(f"a sketch holds finite values only, got {value!r}")
    magnitude = min(abs(value), MAX_ABS)
    if magnitude < MIN_ABS:
        return 0
    k = 1 + math.ceil(math.log(magnitude) / _LOG_GAMMA) - _K_MIN
    return k if value > 0 else -k


def value_of(key: int) -> float:
    """The value a bucket reads back as: within ALPHA of every value it holds."""
    if key == 0:
        return 0.0
    k = abs(key) - 1 + _K_MIN
    magnitude = 2.0 * GAMMA**k / (GAMMA + 1.0)
    return magnitude if key > 0 else -magnitude


@dataclass(frozen=True, slots=True)
class Sketch:
    """Bucket counts: `keys` strictly increasing, `counts` > 0, the same length."""

    keys: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, values: Iterable[float]) -> Sketch:
        """The sketch of some values."""
        found: dict[int, int] = {}
        for v in values:
            k = key_of(v)
            found[k] = found.get(k, 0) + 1
        return cls._from(found)

    @classmethod
    def from_pairs(cls, keys: Sequence[int], counts: Sequence[int]) -> Sketch:
        """A sketch from (key, count) pairs in any order, a key possibly repeated (as stored). Raises: ValueError."""
        if len(keys) != len(counts):
            raise ValueError(f"{len(keys)} keys for {len(counts)} counts")
        found: dict[int, int] = {}
        for k, c in zip(keys, counts, strict=True):
            if c < 0:
                raise ValueError(f"negative count {c} for key {k}")
            found[k] = found.get(k, 0) + c
        return cls._from(found)

    @classmethod
    def _from(cls, found: dict[int, int]) -> Sketch:
        keys = tuple(sorted(k for k, c in found.items() if c))
        return cls(keys, tuple(found[k] for k in keys))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def merge(self, other: Sketch) -> Sketch:
        """The sketch of both sketches' values."""
        if not other.keys:
            return self
        if not self.keys:
            return other
        found = dict(zip(self.keys, self.counts, strict=True))
        for k, c in zip(other.keys, other.counts, strict=True):
            found[k] = found.get(k, 0) + c
        return Sketch._from(found)

    def quantile(self, q: float) -> float | None:
        """The value of rank floor(q (n - 1)) (0-based, ascending), within ALPHA; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile is in [0, 1], got {q}")
        n = self.count
        if n == 0:
            return None
        rank = math.floor(q * (n - 1))
        seen = 0
        for k, c in zip(self.keys, self.counts, strict=True):
            seen += c
            if seen > rank:
                return value_of(k)
        raise AssertionError("unreachable: counts add up to n")  # pragma: no cover


EMPTY = Sketch()
