"""The README's benchmark tables are BENCHMARKS.md's, and are written from it (bench/readme.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import readme

ROW = (
    "| P5 | critical alert latency: p99 ms from a collection | the same hops: 16.6 ms (min 11.0, max 23.5) | "
    "screen + evaluate -> vsm.s5.policy: 23.4 ms (min 17.9, max 45.8) | 1.414 | < 100.0 ms | **PASS** | 5 | "
    "2026-12-06 20:01 · 136429a · Intel(R) Xeon(R) Processor, 2 cores |"
)
SOAK = """
## Soak

intro

### 1,000 agents

Written by the last full run at this size (2026-12-06 20:12 UTC, commit a664b95).

| check | figure | result |
|---|---|---|
| end-to-end p95 under 2.5 s | p95 0.24 s; per stage, p95: collection 0.02 s | PASS |
| RSS of beat flat and under 150 MB | after 60 s warm-up 85.6 MB -> 85.7 MB at the end (+0.1 MB); max 85.7 MB | PASS |
| RSS of worker analysis: pool processes (the largest at each sample) (2 pool processes over the run) flat and \
under 150 MB | after 60 s warm-up 96.7 MB -> 104.5 MB at the end (+7.8 MB); max 104.5 MB | **FAIL** |
| the pipeline under 1 core | every pipeline process together (pool processes included) 0.06 cores | PASS |

Result: **FAIL**.
"""
README = (
    f"x\n{readme.begin('targets')}\nstale\n{readme.end('targets')}\ny\n{readme.begin('soak')}\n{readme.end('soak')}\n"
)


def test_the_readme_holds_the_tables_benchmarks_md_gives() -> None:
    text = readme.README_MD.read_text()
    assert readme.refreshed(text, readme.BENCHMARKS_MD.read_text()) == text, "run python -m bench.readme"


def test_a_row_shows_its_medians_ratio_verdict_and_the_commit_it_ran_on() -> None:
    table = readme.targets(f"intro\n\n{ROW}\n")
    assert table.splitlines()[2] == (
        "| P5 | critical alert latency | 16.6 ms | 23.4 ms | 1.414 | < 100.0 ms | **PASS** | "
        "2026-12-06 20:01 · 136429a |"
    )


def test_a_soak_row_names_its_run_its_largest_process_and_the_checks_that_failed() -> None:
    row = readme.soak(SOAK).splitlines()[2]
    assert row == (
        "| 1,000 agents | 2026-12-06 20:12 UTC, commit a664b95 | p95 0.24 s | 104.5 MB | 0.06 cores | **FAIL** | "
        "RSS of worker analysis: pool processes |"
    )


def test_refreshing_replaces_only_what_is_between_the_markers() -> None:
    out = readme.refreshed(README, f"{ROW}\n{SOAK}")
    assert "stale" not in out
    assert out.startswith("x\n")
    assert "\ny\n" in out
    assert readme.refreshed(out, f"{ROW}\n{SOAK}") == out  # idempotent


def test_a_readme_without_a_block_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no markers\n")
    (tmp_path / "BENCHMARKS.md").write_text(ROW)
    with pytest.raises(readme.ReadmeError, match="'targets'"):
        readme.refresh(tmp_path / "README.md", tmp_path / "BENCHMARKS.md")
    assert (tmp_path / "README.md").read_text() == "no markers\n"
