"""docker-compose.yml, checked without a Docker engine: every command is a real vsmmon command or role,
every VSMMON_* variable a real setting, every service has a healthcheck (or says why not), ports bind
to 127.0.0.1, Flower sits behind auth."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from vsmmon import names
from vsmmon.cli.main import build_parser
from vsmmon.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("image") == "vsmmon:latest"}


def subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def env_names(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    return set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}


def test_the_file_has_the_whole_deployment() -> None:
    roles = {s["command"][2] for s in OURS.values() if s.get("command", [None])[:1] == ["worker"]}
    assert roles == set(names.ROLES) - {"all", "rest", "control"}  # one service per role (not the combined ones)
    assert {"postgres", "redis", "migrate", "beat", "web", "flower", "demo-fleet"} <= set(SERVICES)
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_command_is_a_real_vsmmon_command_or_module(name: str) -> None:
    service = OURS[name]
    if "entrypoint" in service:
        argv = service["entrypoint"]
        module = argv[argv.index("-A") + 1] if "-A" in argv else argv[argv.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, module
        return
    command = service["command"]
    assert command[0] in subcommands(), command
    build_parser().parse_args(command)  # exits (SystemExit) on an unknown option or role


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_vsmmon_variable_is_a_real_setting(name: str) -> None:
    fields = {ENV_PREFIX + f.upper() for f in Settings.model_fields}
    used = {n for n in env_names(OURS[name]) if n.startswith(ENV_PREFIX)}
    assert used <= fields, used - fields


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck_or_a_reason(name: str) -> None:
    service = SERVICES[name]
    assert "healthcheck" in service or len(service.get("x-no-healthcheck", "")) > 10, name
    test = [str(part) for part in service.get("healthcheck", {}).get("test", [])]
    argv = test[1].split() if test[:1] == ["CMD-SHELL"] else test[1:]
    if argv[:1] == ["vsmmon"]:
        assert argv[1] in subcommands(), argv


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_bind_to_localhost(name: str) -> None:
    for port in SERVICES[name].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port


def test_flower_is_behind_auth_and_the_api_needs_a_token() -> None:
    flower_env = SERVICES["flower"]["environment"]
    assert "FLOWER_BASIC_AUTH" in flower_env
    assert ":?" in flower_env["FLOWER_BASIC_AUTH"]  # compose refuses to start without it
    assert ":?" in OURS["web"]["environment"]["VSMMON_API_TOKEN"]


def test_prometheus_alertmanager_and_grafana_come_with_their_files_and_vsmmon_posts_to_alertmanager() -> None:
    mounted = {
        name: {v.split(":")[0] for v in SERVICES[name]["volumes"] if v.startswith("./")}
        for name in ("prometheus", "alertmanager", "grafana")
    }
    for sources in mounted.values():
        for source in sources:
            assert (ROOT / source).exists(), source
    assert "./docs/monitoring/prometheus.rules.yml" in mounted["prometheus"]
    assert "./docs/monitoring/grafana/dashboards" in mounted["grafana"]
    assert ":?" in SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]  # no default admin/admin
    assert OURS["web"]["environment"]["VSMMON_ALERTMANAGER_URLS"] == "http://alertmanager:9093"
    scrape = yaml.safe_load((ROOT / "docs/monitoring/prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == ["web:8000"]  # the web service's port inside the network
