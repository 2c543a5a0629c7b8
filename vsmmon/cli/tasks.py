"""`vsmmon tasks`: every task name across the live workers, or one name's last failures (`vsmmon tasks NAME`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis

from vsmmon.config import Settings
from vsmmon.errors import NotFound
from vsmmon.local import runfile
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.tasks import reads

ARROWS = {"up": "↑", "down": "↓", "flat": "→", None: " "}


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tasks = sub.add_parser(
        "tasks", help="task names across the fleet: rate, failures, runtimes; or one name's failures"
    )
    tasks.add_argument("name", nargs="?", help="one task name: its figures and last failures")
    tasks.add_argument("--filter", default="", help="only task names holding this text (any case)")
    tasks.add_argument("--sort", choices=sorted(reads.SORTS), default="rate", help="order (default: busiest first)")
    tasks.add_argument("--json", action="store_true", help="print JSON")


@contextmanager
def sources(settings: Settings) -> Iterator[tuple[Any, RealtimeWindow]]:
    """The store and the real-time window of the running instance (or of `settings`)."""
    from vsmmon.store.postgres import store_for

    resolved = runfile.resolve(settings)
    client = redis.Redis.from_url(resolved.require("redis_url"), socket_timeout=5, socket_connect_timeout=5)
    try:
        with store_for(resolved.sqlalchemy_url()) as store:
            yield store, RealtimeWindow(client, resolved.collect_interval_s)
    finally:
        client.close()


def cmd_tasks(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    with sources(settings) as (store, window):
        if args.name:
            found = reads.detail(store, window, args.name, now)
            if found is None:
                raise NotFound(f"no live worker reports the task {args.name[:120]!r}")
            print(json.dumps(found) if args.json else "\n".join(_detail_lines(found)))
            return 0
        rows = reads.table(store, window, now, args.filter, args.sort)
    if args.json:
        print(json.dumps({"at": now.isoformat(), "tasks": rows}))
    elif not rows:
        print("no task has run on a live worker yet" + (f" matching {args.filter!r}" if args.filter else ""))
    else:
        print("\n".join(table_lines(rows)))
    return 0


def _figure(value: float | None, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}{unit}"


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The table as text: rates and the failure ratio over the last 5 min, the slowest worker's percentiles."""
    width = max(12, *(len(r["name"]) for r in rows))
    lines = [f"{'task':<{width}}  {'runs/s':>8}    {'failed':>7} {'retry/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} "
             f"{'wait p95':>8}  workers"]  # fmt: skip
    for r in rows:
        lines.append(
            f"{r['name']:<{width}}  {_figure(r['rate_per_s']):>8} {ARROWS[r['trend_5m']]}{ARROWS[r['trend_1h']]} "
            f"{_figure(r['failure_ratio'], '%', 100, 1):>7} {_figure(r['retries_per_s']):>8} "
            f"{_figure(r['runtime_p50_s'], 's', digits=3):>8} {_figure(r['runtime_p95_s'], 's', digits=3):>8} "
            f"{_figure(r['runtime_p99_s'], 's', digits=3):>8} {_figure(r['wait_p95_s'], 's', digits=3):>8}  "
            f"{len(r['workers'])}"
        )
        if r["last_failure"]:
            f = r["last_failure"]
            lines.append(f"{'':<{width}}  last failure {f['at']} on {f['worker']}: {f['exception']}: {f['message']}")
    lines.append("runs/s, failed and retry/s over the last 5 min (arrows: against the 5 min before, the hour); "
                 "percentiles: the slowest worker's last runs")  # fmt: skip
    return lines


def _detail_lines(found: dict[str, Any]) -> list[str]:
    row = found["task"]
    lines = table_lines([{**row, "last_failure": None}])[:2]
    lines.append(f"workers: {', '.join(row['workers'])}")
    totals = ", ".join(f"{o} {row[f'{o}_total']:.0f}" for o in ("succeeded", "failed", "retried", "rejected"))
    lines.append(f"totals: {totals}")
    if not found["failures"]:
        lines.append("no failure kept")
    for f in found["failures"]:
        lines.append(f"{f['at']}  {f['worker']}  {f['task_id']}  {f['exception']}: {f['message']}")
        if f.get("arguments"):
            lines.append(f"    {f['arguments']}")
    return lines
