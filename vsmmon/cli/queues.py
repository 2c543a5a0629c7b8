"""`vsmmon queues`: every live queue with its length, consumers, oldest message, arrivals, drain and drain time."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from vsmmon.cli.tasks import sources
from vsmmon.config import Settings
from vsmmon.local import runfile
from vsmmon.tasks import reads

STATES = {"empty": "empty", "holding": "never: holds steady", "growing": "never: growing",
          "stalled": "never: no consumer", "unknown": "-", "unreadable": "broker unreadable"}  # fmt: skip


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queues = sub.add_parser("queues", help="every queue: length, consumers, oldest message, drain")
    queues.add_argument("--json", action="store_true", help="print JSON")


def cmd_queues(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    with sources(settings) as (store, window):
        rows = reads.queues(store, window, runfile.resolve(settings), now)
    if args.json:
        print(json.dumps({"at": now.isoformat(), "queues": rows}))
    elif not rows:
        print("no queue collected yet")
    else:
        print("\n".join(table_lines(rows)))
    return 0


def _figure(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def drains(q: dict[str, Any]) -> str:
    if q["state"] == "draining":
        return f"in {q['drain_time_s']:.0f} s"
    return STATES[q["state"]]


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The table as text, longest queue first."""
    width = max(12, *(len(r["name"]) for r in rows))
    lines = [f"{'queue':<{width}}  {'messages':>9} {'consumers':>9} {'oldest':>8} {'in/s':>8} {'out/s':>8}  drains"]
    for r in rows:
        oldest = "-" if r["oldest_age_s"] is None else f"{r['oldest_age_s']:.0f}s"
        lines.append(
            f"{r['name']:<{width}}  {_figure(r['messages'], 0):>9} {_figure(r['consumers'], 0):>9} {oldest:>8} "
            f"{_figure(r['arrival_per_s']):>8} {_figure(r['drain_per_s']):>8}  {drains(r)}"
            + (f" ({r['error']})" if r["error"] else "")
        )
    lines.append("messages, consumers and oldest message at the last collection; in/s and out/s over the last 5 min")
    return lines
