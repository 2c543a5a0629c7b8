"""`python -m bench.scenarios [--list] [NAME …]`: run scenarios, print their verdicts, rewrite BENCHMARKS.md.

Scenarios of the "parallel" lane (the long idle install) run on their own pipeline and Redis db index
beside the others, which run one after the other. A run of every scenario rewrites the "Scenarios"
section of BENCHMARKS.md; a run of some rewrites only their rows. Exit code 0 when every scenario ran and
passed, 1 when one missed a must, had a false positive or failed a check, 2 when one could not run.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.report import read_machine
from bench.scenarios.catalog import SCENARIOS, by_name
from bench.scenarios.pipeline import redis_urls
from bench.scenarios.report import console_lines, rewrite
from bench.scenarios.scenario import Outcome, Scenario, run_scenario


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - {s.name for s in SCENARIOS})
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(s.name for s in SCENARIOS)}")
    return args


def run_lanes(chosen: list[Scenario]) -> list[Outcome]:
    """The parallel lane's scenarios in a thread of their own, the rest here, each lane on its own Redis db."""
    urls = redis_urls()
    parallel = [s for s in chosen if s.lane == "parallel"]
    main = [s for s in chosen if s.lane != "parallel"]
    if not main or len(urls) < 2:
        main, parallel = main + parallel, []
    outcomes: dict[str, Outcome] = {}

    def lane(scenarios: list[Scenario], url: str) -> None:
        for s in scenarios:
            outcomes[s.name] = run_scenario(s, url)
            for line in console_lines(outcomes[s.name]):
                print(line, flush=True)

    side = threading.Thread(target=lane, args=(parallel, urls[1]), name="parallel-lane") if parallel else None
    if side is not None:
        side.start()
    lane(main, urls[0])
    if side is not None:
        side.join()
    return [outcomes[s.name] for s in chosen if s.name in outcomes]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:<16} {s.planned_s:5.0f} s  {s.lane:<8}  {s.what}")
        return 0
    chosen = [by_name(n) for n in args.names] if args.names else list(SCENARIOS)
    machine, when = read_machine(), datetime.now(UTC)
    started = time.monotonic()
    print(f"scenarios: {', '.join(s.name for s in chosen)}; machine: {machine.describe()}; {when:%Y-%m-%d %H:%M} UTC",
          flush=True)  # fmt: skip
    outcomes = run_lanes(chosen)
    wall_s = time.monotonic() - started
    if not args.no_write:
        rewrite(outcomes, machine, when, wall_s, complete=not args.names)
        print("BENCHMARKS.md (Scenarios) rewritten")
    failed = [o.scenario.name for o in outcomes if not o.passed]
    errors = [o.scenario.name for o in outcomes if o.error is not None]
    print(f"scenarios: {len(outcomes)} ran in {wall_s:.0f} s; failed: {', '.join(failed) or 'none'}")
    if errors:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
