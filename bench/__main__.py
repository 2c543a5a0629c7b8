"""`python -m bench [--quick] [measure …]`: run the measures, print them, rewrite BENCHMARKS.md."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

from bench import readme
from bench.common import Result
from bench.report import console_lines, current_commit, read_machine, rewrite

MEASURES = (
    "p1_plugin_overhead",
    "p2_collection_cycle",
    "p3_ingest",
    "p4_analysis",
    "p8_monitoring_cpu",
    "c1_probe_cost",
    "c2_assessment_cpu",
    "p5_alert_latency",
    "p6_dashboard_latency",
    "c3_scrape_cost",
    "p9_shards",
)
"""Every measure, by module name under `bench/`; each has `run(quick: bool) -> Result`."""


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("measures", nargs="*", metavar="measure", help=f"one of {', '.join(MEASURES)}")
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions, small sizes; print only, a miss does not fail"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.measures) - set(MEASURES))
    if unknown:
        parser.error(f"unknown measure {', '.join(unknown)}; known: {', '.join(MEASURES)}")
    return args


def run_one(name: str, quick: bool) -> Result | None:
    """Import and run one measure; an error is printed and gives None."""
    started = time.monotonic()
    print(f"== {name}{' (quick)' if quick else ''}", flush=True)
    try:
        run = cast(Callable[[bool], Result], importlib.import_module(f"bench.{name}").run)
        result = run(quick)
    except Exception:
        traceback.print_exc()
        print(f"   {name}: ERROR after {time.monotonic() - started:.1f} s", flush=True)
        return None
    for line in console_lines(result):
        print(line)
    print(f"    ({time.monotonic() - started:.1f} s)", flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every measure ran and (outside --quick) met its target; 1 on a miss, 2 on an error."""
    args = parse(sys.argv[1:] if argv is None else argv)
    machine, when, commit = read_machine(), datetime.now(UTC), current_commit()
    print(f"machine: {machine.describe()}; {when:%Y-%m-%d %H:%M} UTC", flush=True)
    names = [m for m in MEASURES if m in args.measures] or list(MEASURES)
    outcomes = {name: run_one(name, args.quick) for name in names}
    results = [r for r in outcomes.values() if r is not None]
    failed = [name for name, r in outcomes.items() if r is None]
    missed = ", ".join(r.id for r in results if not r.passed)
    if not args.quick and results:
        rewrite(results, machine, when, commit=commit)
        try:
            readme.refresh()
        except readme.ReadmeError as error:
            print(f"BENCHMARKS.md rewritten; the README was not: {error}")
            return 2
        print("BENCHMARKS.md and the README's table of targets rewritten")
    print(f"summary: {len(results)} ran; missed: {missed or 'none'}; errors: {', '.join(failed) or 'none'}")
    if failed:
        return 2
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
