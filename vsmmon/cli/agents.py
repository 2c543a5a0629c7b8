"""`vsmmon simulate` and `vsmmon agent watch`: push metrics to a running vsmmon through its API."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import psutil
from tqdm import tqdm

from vsmmon.agent import simulator
from vsmmon.agent.process import ProcessProbe
from vsmmon.agent.reporter import Reporter, ReportRejected
from vsmmon.config import Settings
from vsmmon.errors import ConfigError, TransientError
from vsmmon.local import runfile
from vsmmon.models import PUSHED_KINDS

BATCH = 1000


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="push metrics of simulated agents (demos, tests, benchmarks)")
    sim.add_argument("--agents", type=int, default=10, help="how many agents (default 10)")
    sim.add_argument("--profile", choices=["mixed", *simulator.PROFILES], default="mixed")
    sim.add_argument("--interval", type=float, default=5.0, help="seconds between reports (default 5)")
    sim.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 runs until Ctrl-C")
    sim.add_argument("--seed", type=int, default=0, help="random seed of the fleet's shapes")
    sim.add_argument("--url", default=None, help="vsmmon's HTTP address (default: the running one)")

    agent = sub.add_parser("agent", help="run a pushed agent")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    watch = agent_sub.add_parser("watch", help="report any process's psutil metrics every interval")
    watch.add_argument("--pid", type=int, required=True, help="the process to watch")
    watch.add_argument("--id", required=True, dest="agent_id", help="the agent id to report as")
    watch.add_argument("--type", choices=sorted(k.value for k in PUSHED_KINDS), default="api")
    watch.add_argument("--interval", type=float, default=5.0, help="seconds between reports (default 5)")
    watch.add_argument("--url", default=None, help="vsmmon's HTTP address (default: the running one)")


def _reporter(settings: Settings, url: str | None) -> Reporter:
    settings = runfile.resolve(settings)
    if settings.api_token is None:
        raise ConfigError("VSMMON_API_TOKEN", "not set (pushing metrics needs the API token)")
    running = runfile.read(settings.data_dir.resolve())
    base = url or (running.http_url if running else f"http://{settings.http_host}:{settings.http_port}")
    return Reporter(base, settings.api_token.get_secret_value())


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.agents < 1 or args.interval <= 0:
        raise ConfigError("--agents/--interval", "expected at least one agent and a positive interval")
    agents = simulator.fleet(args.agents, args.profile, args.seed)
    ticks = int(args.duration // args.interval) if args.duration > 0 else None
    pushed = refused = unreachable = 0
    with _reporter(settings, args.url) as reporter, tqdm(total=ticks, unit="cycle", desc="simulate") as bar:
        start = time.monotonic()
        tick = 0
        while ticks is None or tick < ticks:
            entries = list(simulator.reports_at(agents, tick * args.interval, args.interval))
            for i in range(0, len(entries), BATCH):
                try:
                    pushed += reporter.report_many(entries[i : i + BATCH])
                except ReportRejected as e:
                    refused += len(entries[i : i + BATCH])
                    tqdm.write(f"vsmmon simulate: {e}")
                except TransientError as e:
                    unreachable += len(entries[i : i + BATCH])
                    tqdm.write(f"vsmmon simulate: {e}")
            tick += 1
            bar.update(1)
            bar.set_postfix(pushed=pushed, refused=refused, unreachable=unreachable)
            _sleep_until(start + tick * args.interval)
    print(f"pushed {pushed} reports of {len(agents)} agents ({refused} refused, {unreachable} unreachable)")
    return 0 if refused == 0 else 1


def cmd_agent(args: argparse.Namespace, settings: Settings) -> int:
    if not psutil.pid_exists(args.pid):
        raise ConfigError("--pid", f"no process {args.pid}")
    probe = ProcessProbe(args.pid)
    process = psutil.Process(args.pid)
    sent = 0
    with _reporter(settings, args.url) as reporter:
        start = time.monotonic()
        while _alive(process):
            try:
                children = [c.pid for c in process.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            metrics, errors = probe.read(children)
            if "process" in errors:
                break
            try:
                reporter.report(args.agent_id, args.type, metrics, interval_s=args.interval)
                sent += 1
            except TransientError as e:
                print(f"vsmmon agent watch: {e}", flush=True)
            _sleep_until(start + (sent + 1) * args.interval, stop=lambda: not _alive(process))
    print(f"process {args.pid} exited; sent {sent} reports as {args.agent_id}")
    return 0


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie: an exited child stays a zombie until its parent reaps it."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _sleep_until(deadline: float, stop: Callable[[], bool] = lambda: False) -> None:
    while (left := deadline - time.monotonic()) > 0 and not stop():
        time.sleep(min(left, 0.2))
