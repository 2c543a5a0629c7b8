"""`vsmmon check`: a fresh health assessment through the pipeline, as a table or JSON.

Exit codes follow the Nagios plugin convention, so it serves as a compose healthcheck and an
Icinga/Nagios check: 0 OK, 1 warning, 2 critical, 3 unknown (pipeline unreachable or timed out). The
check and the alerts never disagree: the code is at least as severe as the worst active (firing or
acknowledged) alert, of the whole system or, with `--agent`, of that agent, and those alerts are listed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vsmmon import names
from vsmmon.config import Settings
from vsmmon.local import runfile

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
BY_VIABILITY = {"normal": OK, "warning": WARNING, "critical": CRITICAL}
BY_STATE = {"healthy": OK, "degraded": WARNING, "unhealthy": CRITICAL}
BY_SEVERITY = {"info": OK, "warning": WARNING, "critical": CRITICAL}


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="run a fresh health assessment (exit 0 OK, 1 warning, 2 critical, 3 unknown)")
    check.add_argument("--agent", default=None, help="judge one agent instead of the whole system")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the result (default 10)")


def active_alerts(result: dict[str, Any], agent: str | None) -> list[dict[str, Any]]:
    """The active alerts the check answers for: all of them, or those whose target is the agent."""
    found = [a for a in result.get("active_alerts", []) if agent is None or a.get("target") == agent]
    return sorted(found, key=lambda a: -BY_SEVERITY.get(str(a.get("severity")), OK))


def exit_code(result: dict[str, Any], agent: str | None) -> int:
    if agent is None:
        code = BY_VIABILITY.get(str(result.get("viability_state")), UNKNOWN)
    else:
        found = next((a for a in result.get("agents", []) if a["agent_id"] == agent), None)
        code = UNKNOWN if found is None else BY_STATE.get(found["state"], UNKNOWN)
    if code == UNKNOWN:
        return code
    return max([code, *(BY_SEVERITY.get(str(a.get("severity")), OK) for a in active_alerts(result, agent))])


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from vsmmon.errors import TransientError
    from vsmmon.workers.app import create_app
    from vsmmon.workers.gateway import CeleryGateway

    settings = runfile.resolve(settings)
    try:
        app = create_app(settings)
        app.conf.broker_connection_timeout = min(args.timeout, 5.0)
        gateway = CeleryGateway(app)
        state, result = gateway.result(gateway.send(names.HEALTH_CHECK), args.timeout)
    except TransientError as e:
        return _unknown(args, f"pipeline unreachable: {e}")
    if state != "SUCCESS" or not isinstance(result, dict):
        reason = f"no answer within {args.timeout:g} s" if state == "PENDING" else f"check {state}: {result}"
        return _unknown(args, reason)
    code = exit_code(result, args.agent)
    print(json.dumps(result) if args.json else render(result, args.agent))
    return code


def _unknown(args: argparse.Namespace, reason: str) -> int:
    print(json.dumps({"status": "UNKNOWN", "reason": reason}) if args.json else f"UNKNOWN - {reason}")
    return UNKNOWN


def render(result: dict[str, Any], agent: str | None) -> str:
    """A Nagios-style first line, then every score with the factors behind it."""
    label = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}[exit_code(result, agent)]
    lines = []
    if agent is not None:
        found = next((a for a in result.get("agents", []) if a["agent_id"] == agent), None)
        if found is None:
            return f"UNKNOWN - agent {agent!r} is not registered"
        lines.append(f"{label} - {agent} {found['state']} ({_fmt(found['score'])})")
        lines += [f"  {f['name']:<20} {_fmt(f['score'])}  {_inputs(f['inputs'])}" for f in found["factors"]]
        return "\n".join(lines + _alert_lines(result, agent))
    lines.append(f"{label} - viability {_fmt(result['viability'])} ({result['viability_state']})"
                 f" | viability={_fmt(result['viability'])};0.7;0.5;0;1")  # fmt: skip
    lines.append(f"  overall health {_fmt(result['overall_health'])}")
    if cap := result.get("viability_cap"):
        lines.append(f"  viability capped at {_fmt(cap['at_most'])}: {cap['because']}")
    for name, system in result["systems"].items():
        lines.append(f"  {name}  {system['state']:<10} {_fmt(system['score'])}")
        lines += [f"      {f['name']:<20} {_fmt(f['score'])}  {_inputs(f['inputs'])}" for f in system["factors"]]
    worst = sorted(result.get("agents", []), key=lambda a: a["score"] if a["score"] is not None else 1)[:5]
    if worst:
        lines.append("  least healthy agents:")
        lines += [f"      {a['agent_id']:<40} {a['state']:<10} {_fmt(a['score'])}" for a in worst]
    lines += [f"  pain: {p}" for p in result.get("algedonic", [])]
    lines += [f"  bottleneck: {b}" for b in result.get("bottlenecks", [])]
    return "\n".join(lines + _alert_lines(result, agent))


def _alert_lines(result: dict[str, Any], agent: str | None) -> list[str]:
    shown = [f"  alert {a['severity']:<8} {a['status']:<12} {a['type']} on {a['target']}: {a.get('summary', '')}"
             for a in active_alerts(result, agent)]  # fmt: skip
    return ["  active alerts:", *shown] if shown else []


def _fmt(x: Any) -> str:
    return "  n/a" if x is None else f"{x:.2f}"


def _inputs(inputs: dict[str, Any]) -> str:
    shown = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(inputs.items())[:6]]
    return ", ".join(shown)
