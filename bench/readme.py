"""The README's benchmark tables, generated from BENCHMARKS.md (pure: texts in, text out), so the two never
disagree: `make bench` and `make soak` rewrite them after BENCHMARKS.md; `python -m bench.readme` by hand."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.report import BENCHMARKS_MD, ROW_ID

README_MD = BENCHMARKS_MD.parent / "README.md"
BLOCKS = ("targets", "soak")


class ReadmeError(Exception):
    """README.md lacks a generated block's markers."""


def begin(name: str) -> str:
    return f"<!-- {name}: generated from BENCHMARKS.md by bench/readme.py; do not edit -->"


def end(name: str) -> str:
    return f"<!-- end {name} -->"


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def median(cell: str) -> str:
    """The median of a baseline or figure cell (`name: median (min …, max …)…`)."""
    found = re.search(r": ([^:]+?) \(min ", cell)
    return found.group(1) if found else ""


def check_name(check: str) -> str:
    """A soak check's name without the limits the table's columns show."""
    return re.sub(
        r" \((the largest at each sample|\d+ pool processes over the run)\)| flat and under \d+ MB", "", check
    )


def targets(benchmarks: str) -> str:
    """One row per measure: what (its name, before the first colon), the medians, ratio, target, result, run."""
    rows = ["| id | what | baseline | vsmmon | ratio | target | result | run (UTC · commit) |", "|" + "---|" * 8]
    for line in benchmarks.splitlines():
        if ROW_ID.match(line):
            c = cells(line)
            run = " · ".join(c[8].split(" · ")[:2]) if len(c) > 8 else ""
            rows.append(
                f"| {c[0]} | {c[1].split(':')[0]} | {median(c[2])} | {median(c[3])} | {c[4]} | {c[5]} | {c[6]} "
                f"| {run} |"
            )
    return "\n".join(rows)


def soak(benchmarks: str) -> str:
    """One row per fleet size of the Soak section: when, the end-to-end p95, the largest process, the CPU, the
    result and the checks that failed."""
    rows = [
        "| fleet | last full run | end-to-end p95 | largest process | pipeline CPU | result | failed checks |",
        "|---|---|---|---|---|---|---|",
    ]
    section = benchmarks.partition("\n## Soak\n")[2]
    for part in section.split("\n### ")[1:]:
        title, _, body = part.partition("\n")
        run = re.search(r"\(([^()]*UTC[^()]*)\)", body)
        checks = [cells(line) for line in body.splitlines() if line.startswith("| ") and not line.startswith("| check")]
        p95 = next((c[1].split(";")[0] for c in checks if c[0].startswith("end-to-end p95")), "")
        rss = [float(m) for c in checks if c[0].startswith("RSS of ") for m in re.findall(r"max ([\d.]+) MB", c[1])]
        cpu = next((m.group(0) for c in checks if (m := re.search(r"[\d.]+ cores", c[1]))), "")
        failed = "; ".join(check_name(c[0]) for c in checks if "FAIL" in c[-1]) or "none"
        result = re.search(r"^Result: (\*\*\w+\*\*)", body, flags=re.MULTILINE)
        largest = f"{max(rss):.1f} MB" if rss else ""
        when = run.group(1) if run else ""
        rows.append(
            f"| {title} | {when} | {p95} | {largest} | {cpu} | {result.group(1) if result else ''} | {failed} |"
        )
    return "\n".join(rows)


def refreshed(readme: str, benchmarks: str) -> str:
    """`readme` with each generated block rewritten from `benchmarks`."""
    render = {"targets": targets, "soak": soak}
    for name in BLOCKS:
        start, stop = readme.find(begin(name)), readme.find(end(name))
        if start < 0 or stop < start:
            raise ReadmeError(f"README.md has no block {name!r}: expected the lines {begin(name)!r} and {end(name)!r}")
        readme = f"{readme[: start + len(begin(name))]}\n{render[name](benchmarks)}\n{readme[stop:]}"
    return readme


def refresh(readme: Path = README_MD, benchmarks: Path = BENCHMARKS_MD) -> None:
    """Rewrite README.md's generated blocks from BENCHMARKS.md."""
    readme.write_text(refreshed(readme.read_text(), benchmarks.read_text()))


if __name__ == "__main__":
    try:
        refresh()
    except ReadmeError as error:
        sys.exit(f"bench.readme: {error}")
