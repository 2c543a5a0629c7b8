"""The `vsmmon` command as a user runs it: a subprocess with its own environment."""

import json
import os
import subprocess
import sys

import pytest


def run_vsmmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    return subprocess.run(
        [sys.executable, "-m", "vsmmon", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("VSMMON_HTTP_PORT", "abc"), ("VSMMON_BROKER_URL", "kafka://x"), ("VSMMON_HEALTH_INTERVAL_S", "-1")],
)
def test_bad_settings_stop_with_one_line_naming_the_variable_and_exit_2(variable: str, value: str) -> None:
    result = run_vsmmon("status", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vsmmon: configuration error: {variable}: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_status_without_any_database_says_what_to_set(tmp_path: object) -> None:
    result = run_vsmmon("status", env={"VSMMON_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "VSMMON_DATABASE_URL: not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_passwords_in_urls_never_reach_the_error_output() -> None:
    url = "postgresql+psycopg://app:hunter2@127.0.0.1:1/nodb"
    result = run_vsmmon("status", env={"VSMMON_DATABASE_URL": url})
    assert result.returncode == 1
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_unknown_role_is_a_usage_error() -> None:
    result = run_vsmmon("worker", "--role", "everything")
    assert result.returncode == 2
    assert "invalid choice: 'everything'" in result.stderr


def test_actions_and_decisions_print_a_line_or_two_each_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from vsmmon.cli.alerts import _history

    action = {"at": "2026-11-27T03:00:00+00:00", "action": "pool_grow", "target": "celery@w1", "params": {"n": 2},
              "dry_run": True, "effective": None, "reason": "queue emails short of capacity"}  # fmt: skip
    assert _history(argparse.Namespace(json=False), "actions", "no control actions", [action],
                    lambda r: [f"{r['action']} {r['target']}", f"    {r['reason']}"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "pool_grow celery@w1\n    queue emails short of capacity\n"
    assert _history(argparse.Namespace(json=False), "decisions", "no policy decisions", [], lambda r: []) == 0
    assert capsys.readouterr().out == "no policy decisions\n"
    assert _history(argparse.Namespace(json=True), "actions", "no control actions", [action], lambda r: []) == 0
    assert json.loads(capsys.readouterr().out) == {"actions": [action]}
