"""BENCHMARKS.md's rows name where their figures come from: the time, the commit measured, the machine."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, Stats, Target
from bench.report import Machine, current_commit, rewrite

WHEN = datetime(2026, 12, 6, 3, 13, tzinfo=UTC)
MACHINE = Machine("Test CPU", 2, 23.6)


def result(measure: str) -> Result:
    return Result(measure, "what", "ms", "base", "fig", Stats.of([10.0]), Stats.of([12.0]), Target(max_figure=50.0))


def test_a_row_names_its_run_and_a_later_run_of_another_measure_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    rewrite([result("P6")], MACHINE, WHEN, path, commit="abc1234")
    rewrite([result("P1")], MACHINE, WHEN.replace(hour=4), path, commit="def5678+changes")
    rows = {line.split(" | ")[0]: line for line in path.read_text().splitlines() if line.startswith("| P")}
    assert rows["| P6"].endswith("| 2026-12-06 03:13 · abc1234 · Test CPU, 2 cores |")
    assert rows["| P1"].endswith("| 2026-12-06 04:13 · def5678+changes · Test CPU, 2 cores |")


def test_the_commit_is_the_checkouts_with_changes_marked(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert current_commit(tmp_path) == "unknown"
    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "BENCHMARKS.md").write_text("table")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=7", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    (tmp_path / "BENCHMARKS.md").write_text("rewritten by the run")
    assert current_commit(tmp_path) == head  # the run's own output is not a change to what it measured
    (tmp_path / "a.txt").write_text("two")
    assert current_commit(tmp_path) == f"{head}+changes"
