import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsmmon.sketch import ALPHA, EMPTY, MIN_ABS, Sketch, key_of, value_of

QUANTILES = (0.0, 0.5, 0.95, 0.99, 1.0)
TOLERANCE = ALPHA * (1 + 1e-12)  # rounding at a bucket's edge
values = st.lists(
    st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.floats(-1e-3, 1e-3), st.integers(0, 1000).map(float)),
    min_size=1,
    max_size=300,
)


def within_alpha(estimate: float | None, truth: float) -> bool:
    assert estimate is not None
    if abs(truth) < MIN_ABS:
        return estimate == 0.0
    return abs(estimate - truth) <= TOLERANCE * abs(truth)


@given(values)
def test_quantiles_are_within_the_relative_error_of_numpy_percentile(xs: list[float]) -> None:
    sketch = Sketch.of(xs)
    assert sketch.count == len(xs)
    for q in QUANTILES:
        truth = float(np.percentile(xs, 100 * q, method="lower"))
        assert within_alpha(sketch.quantile(q), truth), (q, sketch.quantile(q), truth)


@given(values, values, values)
def test_merging_is_exact_associative_and_commutative(a: list[float], b: list[float], c: list[float]) -> None:
    sa, sb, sc = Sketch.of(a), Sketch.of(b), Sketch.of(c)
    whole = Sketch.of(a + b + c)
    assert sa.merge(sb).merge(sc) == whole
    assert sc.merge(sa.merge(sb)) == whole
    assert sb.merge(sa) == sa.merge(sb)
    for q in QUANTILES:  # percentiles of merged windows, no raw samples kept
        truth = float(np.percentile(a + b + c, 100 * q, method="lower"))
        assert within_alpha(whole.quantile(q), truth)


def test_a_latency_distribution_gets_p50_p95_p99_within_one_percent() -> None:
    xs = np.random.default_rng(7).lognormal(mean=-3.0, sigma=1.2, size=20_000)
    sketch = Sketch.of(xs.tolist())
    for q in (0.5, 0.95, 0.99):
        truth = float(np.percentile(xs, 100 * q, method="lower"))
        assert abs(sketch.quantile(q) - truth) <= ALPHA * truth  # type: ignore[operator]
    assert len(sketch.keys) < 1000  # a few hundred buckets, whatever the sample count


@given(st.lists(st.tuples(st.integers(-5000, 5000), st.integers(0, 50)), max_size=60))
def test_stored_pairs_in_any_order_with_repeats_read_back_normalised(pairs: list[tuple[int, int]]) -> None:
    keys, counts = [k for k, _ in pairs], [c for _, c in pairs]
    sketch = Sketch.from_pairs(keys, counts)
    totals: dict[int, int] = {}
    for k, c in pairs:
        totals[k] = totals.get(k, 0) + c
    assert list(sketch.keys) == sorted(k for k, c in totals.items() if c)
    assert list(sketch.counts) == [totals[k] for k in sketch.keys]
    assert sketch.count == sum(counts)
    assert Sketch.from_pairs(keys[::-1], counts[::-1]) == sketch


@given(st.floats(-1e15, 1e15, allow_nan=False), st.floats(-1e15, 1e15, allow_nan=False))
def test_key_order_is_value_order(x: float, y: float) -> None:
    if x <= y:
        assert key_of(x) <= key_of(y)
    assert within_alpha(value_of(key_of(x)), x)


def test_empty_sketch_and_bad_input() -> None:
    assert EMPTY.quantile(0.5) is None
    assert EMPTY.merge(Sketch.of([1.0])) == Sketch.of([1.0])
    with pytest.raises(ValueError, match="finite"):
        key_of(math.inf)
    with pytest.raises(ValueError, match="quantile"):
        Sketch.of([1.0]).quantile(1.5)
    with pytest.raises(ValueError, match="negative"):
        Sketch.from_pairs([1], [-1])
