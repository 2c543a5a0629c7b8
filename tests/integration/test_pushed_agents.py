"""Pushed agents end to end: the Reporter client, `vsmmon agent watch` and `vsmmon simulate`."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import API_TOKEN, poll
from vsmmon.agent import Reporter, ReportRejected
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import Settings
from vsmmon.errors import TransientError


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update(VSMMON_API_TOKEN=API_TOKEN, VSMMON_DATA_DIR=str(settings.data_dir))
    return env


def test_the_reporter_pushes_and_reports_refusals(live_api: str, settings: Settings) -> None:
    staging = RedisStaging.from_url(settings.require("redis_url"))
    with Reporter(live_api, API_TOKEN) as reporter:
        reporter.report("api-1", "api", {"requests_per_s": 120.0, "latency_p95_s": 0.08}, host="web-1")
        assert reporter.report_many([{"agent_id": "s-1", "type": "sensor", "metrics": {"temp_c": 21.5}}]) == 1
        with pytest.raises(ReportRejected) as refused:
            reporter.report("api-1", "toaster", {"x": 1.0})
        assert refused.value.status == 422
        assert "type" in str(refused.value)
    with Reporter(live_api, "wrong") as bad, pytest.raises(ReportRejected) as unauthorized:
        bad.report("api-1", "api", {"x": 1.0})
    assert unauthorized.value.status == 401
    with Reporter("http://127.0.0.1:1", API_TOKEN) as nowhere, pytest.raises(TransientError):
        nowhere.report("api-1", "api", {"x": 1.0})
    reports = staging.drain_pushed()
    assert [(r.agent_id, r.kind.value) for r in reports] == [("api-1", "api"), ("s-1", "sensor")]
    assert reports[0].metrics == {"requests_per_s": 120.0, "latency_p95_s": 0.08}


def test_agent_watch_reports_a_process_until_it_exits(live_api: str, settings: Settings) -> None:
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watch = subprocess.Popen(
        [sys.executable, "-m", "vsmmon", "agent", "watch", "--pid", str(watched.pid), "--id", "proc-1",
         "--type", "api", "--interval", "0.5", "--url", live_api],
        env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    staging, reports = RedisStaging.from_url(settings.require("redis_url")), []

    def two_reports() -> bool | None:
        reports.extend(staging.drain_pushed())
        return len(reports) >= 2 or None

    try:
        poll(two_reports, deadline_s=30, what="two reports of the watched process")
    finally:
        watched.terminate()  # the watch ends when the process it watches does
        watched.wait()
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert f"process {watched.pid} exited" in out
    reports.extend(staging.drain_pushed())
    assert len(reports) >= 2
    assert {r.agent_id for r in reports} == {"proc-1"}
    assert reports[-1].metrics["rss_bytes"] > 1e6
    assert "cpu_percent" in reports[-1].metrics
    assert reports[-1].interval_s == 0.5


def test_simulate_pushes_every_agent_each_interval_with_progress(live_api: str, settings: Settings) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "vsmmon", "simulate", "--agents", "40", "--profile", "mixed",
         "--interval", "0.5", "--duration", "1.5", "--url", live_api],
        env=cli_env(settings), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pushed 120 reports of 40 agents (0 refused, 0 unreachable)" in result.stdout
    assert "3/3" in result.stderr  # the progress bar
    assert time.monotonic() - started >= 1.0
    reports = RedisStaging.from_url(settings.require("redis_url")).drain_pushed()
    assert len(reports) == 120
    assert len({r.agent_id for r in reports}) == 40
