"""The soak's judgement (pure): the issue's bounds fail the run when missed, and each fleet size keeps its
own part of BENCHMARKS.md."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.soak_report import Cycle, Sample, cycles_of, judge, write_section

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
Times = namedtuple("Times", "user nice system idle iowait")


def samples(cores: float, n: int = 30) -> list[Sample]:
    """A run sampled every 5 s whose pipeline spends `cores` of CPU, flat at 100 MB."""
    return [Sample(5.0 * i, {"beat": 100.0}, 0, 0, cores * 5.0 * i, 0.0, 0.5, Times(10.0 * i, 0, 0, 10.0 * i, 0))
            for i in range(n)]  # fmt: skip


def cycles(end_to_end_s: float, n: int = 30) -> list[Cycle]:
    out = []
    for i in range(n):
        start = T0 + timedelta(seconds=5 * i)
        out.append((start, 200.0, start + timedelta(seconds=end_to_end_s), start + timedelta(seconds=0.5)))
    return out


def verdict(end_to_end_s: float = 1.0, cores: float = 0.5, simulator_ok: bool = True) -> tuple[bool, str]:
    v = judge(samples(cores), cycles(end_to_end_s), since=T0, total_s=150, interval_s=5.0, agents=10000,
              simulator_said="pushed 1 reports", simulator_ok=simulator_ok)  # fmt: skip
    return v.passed, "\n".join(v.lines)


def test_a_run_within_every_bound_passes_and_says_where_the_time_went() -> None:
    passed, text = verdict()
    assert passed, text
    assert "collection 0.20 s, then stored 0.30 s, then aggregated 0.50 s" in text


def test_each_bound_of_the_issue_fails_the_run_on_its_own() -> None:
    assert not verdict(end_to_end_s=3.0)[0]  # within the interval, but p95 over 2.5 s
    assert not verdict(cores=1.2)[0]  # the pipeline over one core
    assert not verdict(simulator_ok=False)[0]  # reports refused: fewer agents than claimed were measured


def test_each_fleet_size_keeps_its_own_part_of_benchmarks_md(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n| table |\n\n## Soak\n\nan old single run\n")
    small = judge(samples(0.2), cycles(0.5), since=T0, total_s=600, interval_s=5.0, agents=1000, simulator_said="s")
    big = judge(samples(0.9), cycles(3.0), since=T0, total_s=600, interval_s=5.0, agents=10000, simulator_said="b")
    write_section(small, 1000, path)
    write_section(big, 10000, path)
    write_section(small, 1000, path)  # rewritten: the other size's part stays
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n| table |\n\n## Soak\n")
    assert "an old single run" not in text
    assert text.count("### 1,000 agents") == 1
    assert text.count("### 10,000 agents") == 1
    assert text.index("### 1,000 agents") < text.index("### 10,000 agents")
    assert "Result: **PASS**" in text.split("### 10,000 agents")[0]
    assert "Result: **FAIL**" in text.split("### 10,000 agents")[1]


def test_a_sharded_cycle_is_one_cycle_aggregated_when_its_last_shard_is() -> None:
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    at = [start + timedelta(seconds=s) for s in range(6)]
    parts = [
        (start, 900.0, at[2], at[1], 0, 2),
        (start, 300.0, at[3], at[2], 1, 2),  # the last shard aggregated: the cycle's end
        (at[5], 100.0, at[5], at[5], 0, 2),  # its shard 1 is not stored yet: not aggregated
        (at[4], 50.0, at[4], at[4], 0, 1),  # an unsharded cycle
    ]
    assert cycles_of(parts) == [(start, 900.0, at[3], at[2]), (at[4], 50.0, at[4], at[4]), (at[5], 100.0, None, at[5])]
