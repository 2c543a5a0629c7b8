"""`vsmmon alerts …`, `vsmmon actions`, `vsmmon decisions`: the alert manager, S3 and S5 from the shell.

Reads and changes go straight to the ledger (Redis) and the history (PostgreSQL), like the API; a manual
resolve's recovery notice is sent to the pipeline's alerts queue.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import redis

from vsmmon import names
from vsmmon.alerts import desk as alert_desk
from vsmmon.alerts.book import AlertBook
from vsmmon.alerts.codec import alert_message, notification_to_dict, plain_row, public_alert, silence_to_dict
from vsmmon.config import Settings
from vsmmon.errors import InvalidInput, NotFound
from vsmmon.local import runfile
from vsmmon.store.alert_records import AlertRecords

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser("alerts", help="open alerts; ack, resolve, silence")
    alerts.add_argument("--status", default="active",
                        choices=["active", "pending", "firing", "acknowledged", "resolved", "all"])  # fmt: skip
    alerts.add_argument("--json", action="store_true")
    alerts.add_argument("--limit", type=int, default=50)
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION")
    for name, text in (("ack", "acknowledge an open alert"), ("resolve", "resolve an open alert by hand")):
        p = actions.add_parser(name, help=text)
        p.add_argument("ref", help="alert id or fingerprint")
        p.add_argument("--by", default=_me(), help="who (default: user@host)")
    silence = actions.add_parser("silence", help="mute notifications of matching alerts for a while")
    silence.add_argument("--match", action="append", required=True, metavar="KEY=VALUE",
                         help="type, target, severity, fingerprint or a label; repeat for more")  # fmt: skip
    silence.add_argument("--for", dest="duration", default="1h", help="e.g. 30m, 2h, 1d (default 1h)")
    silence.add_argument("--by", default=_me())
    silence.add_argument("--comment", default="")
    actions.add_parser("silences", help="silences in force")
    unsilence = actions.add_parser("unsilence", help="end a silence now")
    unsilence.add_argument("silence_id")
    for name, text in (("actions", "S3's control actions, newest first"), ("decisions", "S5's policy decisions")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true")
        p.add_argument("--limit", type=int, default=20)


def _me() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def duration_s(text: str) -> float:
    """ "90", "90s", "30m", "2h", "1d" in seconds.

    Raises:
        InvalidInput: anything else.
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise InvalidInput("--for", f"expected a duration like 30m, 2h or 1d, got {text[:40]!r}")
    return float(match["n"]) * _UNIT_S[match["unit"]]


@contextmanager
def _services(settings: Settings) -> Iterator[tuple[AlertBook, AlertRecords, Settings]]:
    from vsmmon.store.postgres import create_engine

    resolved = runfile.resolve(settings)
    client = redis.Redis.from_url(resolved.require("redis_url"), socket_timeout=5, socket_connect_timeout=5)
    engine = create_engine(resolved.sqlalchemy_url())
    try:
        yield AlertBook(client), AlertRecords(engine), resolved
    finally:
        client.close()
        engine.dispose()


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    with _services(settings) as (book, records, resolved):
        command, now = args.alerts_command, datetime.now(UTC)
        if command is None:
            return _list(args, book, records)
        if command == "ack":  # the ledger and the history change together, or neither does
            outcome = alert_desk.acknowledge(book, args.ref, args.by, now, history=records)
            _publish(book, outcome)
            print(f"acknowledged {args.ref} by {args.by}")
        elif command == "resolve":
            outcome = alert_desk.resolve(book, args.ref, args.by, now, alert_desk.policy_for(resolved), history=records)
            _publish(book, outcome)
            if outcome.notifications:
                from vsmmon.names import ALERTS_DELIVER
                from vsmmon.workers.app import create_app

                notes = [notification_to_dict(n) for n in outcome.notifications]
                create_app(resolved).send_task(ALERTS_DELIVER, args=(notes,))
            print(f"resolved {args.ref}" + (" (recovery notice sent)" if outcome.notifications else ""))
        elif command == "silence":
            matchers = dict(_pair(m) for m in args.match)
            s = alert_desk.add_silence(book, matchers, duration_s(args.duration), created_by=args.by,
                                       comment=args.comment, now=now)  # fmt: skip
            print(f"silence {s.id} until {s.expires_at.isoformat()} for {json.dumps(dict(s.matchers))}")
        elif command == "silences":
            for s in alert_desk.silences(book, now):
                print(json.dumps(silence_to_dict(s)))
        elif command == "unsilence":
            if not alert_desk.remove_silence(book, UUID(args.silence_id)):
                raise NotFound(f"no silence {args.silence_id}")
            print(f"silence {args.silence_id} ended")
    return 0


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value:
        raise InvalidInput("--match", f"expected KEY=VALUE, got {text[:60]!r}")
    return key.strip(), value


def _publish(book: AlertBook, outcome: alert_desk.Outcome) -> None:
    for alert in outcome.changed:
        book.client.publish(names.ALERTS_CHANNEL, alert_message(alert))


def _list(args: argparse.Namespace, book: AlertBook, records: AlertRecords) -> int:
    if args.status in ("active", "pending", "firing", "acknowledged"):
        rows = [public_alert(a) for a in alert_desk.open_alerts(book) if args.status in ("active", a.status)]
    else:
        rows = [plain_row(r) for r in records.alerts(None if args.status == "all" else args.status, args.limit)]
    rows = rows[: args.limit]
    if args.json:
        print(json.dumps({"alerts": rows}))
        return 0
    if not rows:
        print("no alerts" if args.status == "all" else f"no {args.status} alerts")
    for r in rows:
        level = f" L{r['escalation_level']}" if r["escalation_level"] else ""
        print(f"{r['severity']:<8} {r['status']:<12}{level} {r['type']:<18} {r['target']:<28} {r['id']}")
        if r["summary"]:
            print(f"    {r['summary']}")
    return 0


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    def lines(r: dict[str, Any]) -> list[str]:
        verdict = {True: "helped", False: "did not help", None: "not verified"}[r["effective"]]
        mode = " (dry run)" if r["dry_run"] else ""
        return [f"{r['at']}  {r['action']:<12} {r['target']:<28} {json.dumps(r['params'])}{mode}  {verdict}",
                f"    {r['reason']}"]  # fmt: skip

    with _services(settings) as (_, records, _):
        rows = [plain_row(r.row()) for r in records.actions(args.limit)]
    return _history(args, "actions", "no control actions", rows, lines)


def cmd_decisions(args: argparse.Namespace, settings: Settings) -> int:
    def lines(r: dict[str, Any]) -> list[str]:
        return [f"{r['at']}  {r['decision']:<16} {r['detail'].get('reason', '')}"]

    with _services(settings) as (_, records, _):
        rows = [plain_row(r.row()) for r in records.decisions(args.limit)]
    return _history(args, "decisions", "no policy decisions", rows, lines)


def _history(
    args: argparse.Namespace,
    key: str,
    empty: str,
    rows: list[dict[str, Any]],
    lines: Callable[[dict[str, Any]], list[str]],
) -> int:
    """S3's actions or S5's decisions: as JSON (`--json`), else a few lines each."""
    if args.json:
        print(json.dumps({key: rows}))
        return 0
    if not rows:
        print(empty)
    for r in rows:
        print("\n".join(lines(r)))
    return 0
