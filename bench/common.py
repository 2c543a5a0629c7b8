"""What every measure shares: repetition statistics, targets, results and the alternating order."""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Stats:
    """The repetitions of one figure: median, min and max of a sequence of measured values."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("no repetition was measured")

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Target:
    """What a measure must reach: a ratio to its baseline (a floor or a ceiling) and optionally a minimum figure."""

    min_ratio: float | None = None
    max_ratio: float | None = None
    min_figure: float | None = None
    max_figure: float | None = None

    def met(self, ratio: float, figure: float) -> bool:
        return (
            (self.min_ratio is None or ratio >= self.min_ratio)
            and (self.max_ratio is None or ratio <= self.max_ratio)
            and (self.min_figure is None or figure >= self.min_figure)
            and (self.max_figure is None or figure < self.max_figure)
        )

    def describe(self, unit: str, digits: int) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f"ratio >= {self.min_ratio:.2f}")
        if self.max_ratio is not None:
            parts.append(f"ratio <= {self.max_ratio:.2f}")
        if self.min_figure is not None:
            parts.append(f">= {self.min_figure:,.{digits}f} {unit}")
        if self.max_figure is not None:
            parts.append(f"< {self.max_figure:,.{digits}f} {unit}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class Result:
    """One measure's outcome: the measured figure against the baseline measured in the same run."""

    id: str
    what: str
    unit: str
    baseline_name: str
    figure_name: str
    baseline: Stats
    figure: Stats
    target: Target
    digits: int = 0
    notes: tuple[str, ...] = field(default=())
    ratios: Stats | None = None
    """Per-repetition ratios, when both sides ran at the same time: the ratio is then their median."""
    aa_ratios: Stats | None = None
    """Per-repetition ratios of the same method with the baseline on both sides: the noise of the method."""
    figure_detail: str = ""
    """A second figure of the measured side, shown after its spread (e.g. an in-process cost)."""

    @property
    def ratio(self) -> float:
        if self.ratios is not None:
            return self.ratios.median
        return self.figure.median / self.baseline.median

    @property
    def aa_ratio(self) -> float | None:
        """Noise alone between two sides: the A/A repetitions' median, else baseline's odd against even ones."""
        if self.aa_ratios is not None:
            return self.aa_ratios.median
        values = self.baseline.values
        if len(values) < 4:
            return None
        return statistics.median(values[1::2]) / statistics.median(values[0::2])

    @property
    def passed(self) -> bool:
        return self.target.met(self.ratio, self.figure.median)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    @property
    def repetitions(self) -> int:
        return min(self.figure.n, self.baseline.n)

    def amount(self, value: float) -> str:
        """A figure of this measure with its unit, e.g. `612,345 samples/s`."""
        return f"{value:,.{self.digits}f} {self.unit}"

    def spread(self, stats: Stats) -> str:
        """`median unit (min …, max …)` of one side."""
        low, high = f"{stats.min:,.{self.digits}f}", f"{stats.max:,.{self.digits}f}"
        return f"{self.amount(stats.median)} (min {low}, max {high})"

    @property
    def figure_text(self) -> str:
        """The measured side's spread, and its detail when it has one."""
        spread = self.spread(self.figure)
        return f"{spread}; {self.figure_detail}" if self.figure_detail else spread


def alternating(repetitions: int) -> Iterator[tuple[int, bool]]:
    """(repetition, is_measured_side) in ABBA order, so a linear drift weighs on both sides alike."""
    for rep in range(repetitions):
        first = rep % 2 == 0
        yield rep, first
        yield rep, not first


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """Terminate a measure's subprocess; killed when it does not exit within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
