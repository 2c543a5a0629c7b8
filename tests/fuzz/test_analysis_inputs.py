"""Fuzzing the analysis stage's numbers with what a fleet of 1,000 agents feeds it (found by `make soak`:
a confidence of 1.0000000000000004 failed every analysis run)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import count, examples
from vsmmon.analyse.trends import slope_confidence


@examples(500)
@given(
    ratio=st.floats(0, 300),
    stderr=st.floats(1e-6, 1e6),
    sign=st.sampled_from([1.0, -1.0]),
    n=st.integers(0, 5000),
)
def test_slope_confidence_stays_a_probability(ratio: float, stderr: float, sign: float, n: int) -> None:
    """Slopes of every size against their standard error (the t ratio), over short and long windows."""
    count("slope_confidence")
    assert 0.0 <= slope_confidence(sign * ratio * stderr, stderr, n) <= 1.0
    assert slope_confidence(1.0, float("inf"), n) == 0.0
