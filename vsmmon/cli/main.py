"""The `vsmmon` command line.

This is the composition root: `worker` and `beat` import the Celery app from `workers/` inside the
command, so importing this module (and the rest of `vsmmon/`) never imports Celery.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vsmmon import __version__, names
from vsmmon.cli import agents as cli_agents
from vsmmon.cli import alerts as cli_alerts
from vsmmon.cli import check as cli_check
from vsmmon.cli import queues as cli_queues
from vsmmon.cli import tasks as cli_tasks
from vsmmon.codec import progress_to_dict, summary_to_dict
from vsmmon.config import Settings, load_settings
from vsmmon.errors import ConfigError, VsmmonError
from vsmmon.local import runfile
from vsmmon.redact import redact_url

if TYPE_CHECKING:
    from vsmmon.models import AgentInfo
    from vsmmon.store.base import AgentScore

EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vsmmon", description="VSM monitoring pipeline for Celery fleets")
    parser.add_argument("--version", action="version", version=f"vsmmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("up", help="run everything here (embedded PostgreSQL and Redis when no URL is set)")

    status = sub.add_parser("status", help="the latest persisted collection and the agents vsmmon knows")
    status.add_argument("--json", action="store_true", help="print JSON")

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_up = db_sub.add_parser("upgrade", help="apply migrations (default: to head)")
    db_up.add_argument("revision", nargs="?", default="head")
    db_down = db_sub.add_parser("downgrade", help="revert migrations to REVISION (`base`: all)")
    db_down.add_argument("revision")
    db_sub.add_parser("current", help="the database's revision and the code's head")

    worker = sub.add_parser("worker", help="a Celery worker of the pipeline")
    worker.add_argument("--role", choices=sorted(names.ROLES), default="all", help="which queues to consume")
    worker.add_argument("--concurrency", type=int, default=None, help="pool size (default: settings)")
    worker.add_argument("--hostname", default=None, help="worker name (default: vsmmon-ROLE@HOST)")
    worker.add_argument("--nice", type=int, default=0, choices=range(20), metavar="0-19",
                        help="lower the worker's CPU priority by this much (0: unchanged)")  # fmt: skip

    cli_agents.add_commands(sub)
    cli_check.add_command(sub)
    cli_tasks.add_command(sub)
    cli_queues.add_command(sub)

    recs = sub.add_parser("recommendations", help="what the analysis stage recommends now")
    recs.add_argument("--json", action="store_true", help="print JSON")

    flower = sub.add_parser("flower", help="Flower on the pipeline's broker (auth: FLOWER_BASIC_AUTH=user:password)")
    flower.add_argument("--port", type=int, default=5555, help="HTTP port (default 5555)")
    flower.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")

    sub.add_parser("beat", help="the scheduler (run any number; exactly one schedules)")
    sub.add_parser("serve", help="the HTTP service: API, health endpoints")
    cli_alerts.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(COMMANDS[args.command](args, settings) or 0)
    except ConfigError as e:
        print(f"vsmmon: configuration error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except VsmmonError as e:
        print(f"vsmmon: {redact_url(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.local.up import up

    return up(settings)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.store.postgres import store_for

    settings = runfile.resolve(settings)
    with store_for(settings.sqlalchemy_url()) as store:
        latest = store.latest_collection()
        rollups = store.rollup_progress()
        agents = store.agents()
        _, scores = store.agent_scores(datetime.now(UTC) - timedelta(hours=1))
    listed = [agent_row(a, scores.get(a.agent_id)) for a in sorted(agents, key=lambda a: a.agent_id)]
    if latest is None:
        print(json.dumps({"latest": None, "agents": listed}) if args.json else "no collection stored yet")
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"latest": summary_to_dict(latest), "rollups": progress_to_dict(rollups), "agents": listed}))
        return 0
    age_s = (datetime.now(UTC) - latest.started_at).total_seconds()
    print(f"database          {redact_url(settings.sqlalchemy_url())}")
    print(f"latest collection {latest.id}")
    print(f"  when            {latest.started_at.isoformat(timespec='seconds')} ({age_s:.0f} s ago)")
    print(f"  agents          {latest.agent_count}")
    print(f"  samples         {latest.sample_count}")
    print(f"  duration        {latest.duration_ms:.0f} ms")
    if latest.unreachable:
        print(f"  unreachable     {', '.join(latest.unreachable)}")
    print(f"  aggregated      {'yes' if latest.aggregated_at else 'not yet'}")
    closed = rollups.closed_to.isoformat(timespec="seconds") if rollups.closed_to else "none yet"
    oldest = f" (oldest {rollups.oldest_pending.isoformat(timespec='seconds')})" if rollups.oldest_pending else ""
    print(f"rollups           5 min windows stored up to {closed}; {rollups.pending} collections pending{oldest}")
    print(f"agents            {len(listed)} known")
    width = max((len(a["id"]) for a in listed), default=2)
    for a in listed:
        health = "-" if a["health"] is None else f"{a['health']:.2f} {a['state']}"
        print(f"  {a['id']:<{width}}  {a['kind']:<13} {a['status']:<8} {health}")
    return 0


def agent_row(agent: AgentInfo, score: AgentScore | None) -> dict[str, Any]:
    """One agent as `vsmmon status` lists it: identity, registry status, health in the latest assessment."""
    return {"id": agent.agent_id, "kind": agent.kind.value, "host": agent.host, "status": agent.status.value,
            "last_seen": agent.last_seen.isoformat(), "health": None if score is None else score.score,
            "state": None if score is None else score.state}  # fmt: skip


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.store import migrations

    url = runfile.resolve(settings).sqlalchemy_url()
    if args.db_command == "upgrade":
        migrations.upgrade(url, args.revision)
        at = migrations.current(url)
        if at[0] == at[1]:
            report = migrations.prepare_storage(url, settings)
            print(f"partitions: {len(report.created)} created, {len(report.dropped)} dropped")
        print(f"database at {at[0] or 'base'}")
    elif args.db_command == "downgrade":
        migrations.downgrade(url, args.revision)
        print(f"database at {migrations.current(url)[0] or 'base'}")
    else:
        current, head = migrations.current(url)
        state = "up to date" if current == head else f"behind head {head}"
        print(f"{current or 'base'} ({state})")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.workers.app import create_app

    app = create_app(settings)
    if args.nice:  # its pool processes inherit it
        os.nice(args.nice)
    hostname = args.hostname or f"vsmmon-{args.role}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            f"--hostname={hostname}",
            f"--queues={','.join(names.ROLES[args.role])}",
            f"--concurrency={args.concurrency or settings.worker_concurrency}",
            f"--loglevel={settings.log_level}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def cmd_beat(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.collect.selfreport import SelfReporter
    from vsmmon.collect.staging import RedisStaging
    from vsmmon.workers.app import create_app

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    staging = RedisStaging.from_url(settings.require("redis_url"))
    reporter = SelfReporter("beat", staging, settings.collect_interval_s).start()
    try:
        app.Beat(
            schedule=str(data_dir / "celerybeat-schedule"),
            scheduler="vsmmon.workers.slots:SlotScheduler",  # any number of beats; each run sent once
            loglevel=settings.log_level,
            max_interval=5,
        ).run()
    finally:
        reporter.stop()
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from vsmmon.web import create_app
    from vsmmon.web.serving import server_config
    from vsmmon.workers.app import create_app as create_pipeline
    from vsmmon.workers.gateway import CeleryGateway

    resolved = runfile.resolve(settings)
    app = create_app(resolved, gateway=CeleryGateway(create_pipeline(resolved)))
    uvicorn.Server(server_config(app, resolved)).run()  # bounded connections and waits, a redacted access log
    return 0


def cmd_recommendations(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.store.postgres import store_for
    from vsmmon.web.routes_analysis import recommendation_to_dict

    with store_for(runfile.resolve(settings).sqlalchemy_url()) as store:
        found = [recommendation_to_dict(r) for r in store.recommendations(datetime.now(UTC))]
    if args.json:
        print(json.dumps({"recommendations": found}))
        return 0
    if not found:
        print("no current recommendations")
    for r in found:
        print(f"{r['kind']:<20} {r['target']:<30} {json.dumps(r['action'])}  (confidence {r['confidence']:.2f})")
        print(f"    {r['rationale']}")
    return 0


def cmd_flower(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from vsmmon.workers.app import create_app

    if not os.environ.get("FLOWER_BASIC_AUTH") and args.address not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("FLOWER_BASIC_AUTH", "required when Flower listens beyond this machine (user:password)")
    app = create_app(runfile.resolve(settings))
    app.set_current()  # Flower reads task results through the current app
    app.set_default()
    app.start(["flower", f"--port={args.port}", f"--address={args.address}"])
    return 0


COMMANDS = {
    "alerts": cli_alerts.cmd_alerts,
    "actions": cli_alerts.cmd_actions,
    "decisions": cli_alerts.cmd_decisions,
    "flower": cmd_flower,
    "recommendations": cmd_recommendations,
    "check": cli_check.cmd_check,
    "tasks": cli_tasks.cmd_tasks,
    "queues": cli_queues.cmd_queues,
    "simulate": cli_agents.cmd_simulate,
    "agent": cli_agents.cmd_agent,
    "up": cmd_up,
    "status": cmd_status,
    "db": cmd_db,
    "worker": cmd_worker,
    "beat": cmd_beat,
    "serve": cmd_serve,
}
