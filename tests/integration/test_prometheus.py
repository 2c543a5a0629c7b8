"""vsmmon with the real Prometheus (Debian's `prometheus` and `promtool`, installed by `make prometheus`, which
`make test` runs): the example config and rules in docs/monitoring pass promtool and their own rule tests; the
served `/metrics` passes `promtool check metrics`, and every series the rules and the Grafana dashboard read is
one vsmmon serves; a real Prometheus scraping a running pipeline answers PromQL queries with a worker's CPU
and a task's counter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.browser.seed import assessment, seed, store_and_publish
from tests.integration.conftest import in_thread, poll
from tests.integration.cycles import Beat
from tests.integration.daemons import serving
from tests.integration.fleet import control_app, fleet_workers
from vsmmon.config import Settings
from vsmmon.local.embedded import free_port
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app
from vsmmon.workers.context import PipelineApp

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docs" / "monitoring"
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")
SERIES = re.compile(r"\b((?:celery|vsmmon)_[a-z0-9_]+|celery:[a-z0-9_:]+)\b")
pytestmark = pytest.mark.timeout(180)


def promtool(*args: str, cwd: Path = MONITORING, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert shutil.which(PROMTOOL), f"{PROMTOOL} missing: `make prometheus` (run by `make test`) installs it"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip


def test_the_example_config_and_rules_pass_promtool_and_their_rule_tests() -> None:
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 1 rule files found" in config.stdout
    rules = promtool("check", "rules", "prometheus.rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 9 rules found" in rules.stdout
    tested = promtool("test", "rules", "prometheus.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_rule_test_expecting_what_the_rules_do_not_do_fails(tmp_path: Path) -> None:
    """The rule tests can fail: the same tests, expecting a failure ratio of 0.5 instead of 0.25."""
    shutil.copy(MONITORING / "prometheus.rules.yml", tmp_path)
    text = (MONITORING / "prometheus.rules.test.yml").read_text()
    assert "value: 0.25" in text
    (tmp_path / "prometheus.rules.test.yml").write_text(text.replace("value: 0.25", "value: 0.5"))
    tested = promtool("test", "rules", "prometheus.rules.test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "celery:task_failure_ratio:rate5m" in tested.stdout + tested.stderr


def served_series(text: str) -> set[str]:
    """The series names a scrape of `text` gives Prometheus (a counter's `_total`, a histogram's three)."""
    found: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            found.add(f"{family.name}_total")
        elif family.type == "histogram":
            found |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            found.add(family.name)
    return found


def read_series(expressions: list[str]) -> set[str]:
    return {m for e in expressions for m in SERIES.findall(e)}


COMPAT_LINT = 'celery_active_consumer_count non-histogram and non-summary metrics should not have "_count" suffix'


def test_metrics_pass_promtool_and_hold_every_series_the_rules_and_the_dashboard_read(
    settings: Settings, clean_services: None, store: PostgresStore
) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    fleet = seed(store, client, agents=4, offline=1, cycles=3)
    store_and_publish(store, client, assessment(fleet))
    client.close()
    with TestClient(create_app(settings, report_self=False)) as http:
        text = http.get("/metrics").text
    checked = promtool("check", "metrics", stdin=text)
    # the one lint finding: celery-exporter's own name, kept so that its users' dashboards and rules keep working
    assert checked.returncode == 3, checked.stdout + checked.stderr  # 3: lint findings only, the text parses
    assert (checked.stdout + checked.stderr).strip().splitlines() == [COMPAT_LINT], checked.stdout + checked.stderr
    groups = yaml.safe_load((MONITORING / "prometheus.rules.yml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "vsmmon.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    wanted = read_series([r["expr"] for r in rules] + queries)
    assert len(queries) >= 20
    assert {"celery_task_succeeded_total", "vsmmon_worker_cpu_percent"} <= wanted
    assert wanted - recorded <= served_series(text), sorted(wanted - recorded - served_series(text))
    assert {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p} == {"prometheus"}
    provisioned = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert provisioned["datasources"][0]["uid"] == "prometheus"


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    """`prometheus_for(target)`: a real Prometheus scraping `target` (host:port) every second; its base URL."""
    assert shutil.which(PROMETHEUS), f"{PROMETHEUS} missing: `make prometheus` (run by `make test`) installs it"
    with ExitStack() as stack:

        def start(target: str) -> str:
            job = {"job_name": "vsmmon", "static_configs": [{"targets": [target]}]}
            config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

            def argv(port: int) -> list[str]:
                return [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn"]  # fmt: skip

            return stack.enter_context(serving(argv, tmp_path / "prometheus.log", "Prometheus"))

        yield start


def query(base: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_a_running_pipeline_and_answers_for_a_worker_and_a_task(
    pipeline: PipelineApp, fast_settings: Settings, store: PostgresStore, tmp_path: Path, prometheus_for: Any
) -> None:
    import uvicorn

    broker = fast_settings.require("broker_url")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(fast_settings, report_self=False), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))  # fmt: skip
    with fleet_workers(broker, ["scraped"], tmp_path / "fleet") as (worker,), in_thread(server, port):
        for result in [control_app(broker).send_task("fleet.ok", queue="fleet") for _ in range(5)]:
            assert result.id
        beat = Beat(pipeline, store)

        def counted() -> bool:
            beat.cycle()
            agent = next((a for a in store.agents() if a.agent_id == worker.hostname), None)
            figures = ("succeeded_total", "runtime_count")  # the registry keeps the histogram too
            return agent is not None and all(agent.metrics.get(f"task.fleet.ok.{f}") == 5 for f in figures)

        poll(counted, deadline_s=60, what="a collection that counted the 5 tasks")
        base = prometheus_for(f"127.0.0.1:{port}")

        def answered(promql: str) -> list[dict[str, Any]] | None:
            return query(base, promql) or None

        ok = poll(lambda: answered(f'celery_task_succeeded_total{{name="fleet.ok", hostname="{worker.hostname}"}}'),
                  deadline_s=30, what="Prometheus to scrape the task counter")  # fmt: skip
        assert float(ok[0]["value"][1]) == 5
        task = f'name="fleet.ok", hostname="{worker.hostname}"'
        runs = poll(lambda: answered(f"celery_task_runtime_count{{{task}}}"), deadline_s=30,
                    what="Prometheus to scrape the task's runtime histogram")  # fmt: skip
        assert float(runs[0]["value"][1]) == 5
        (median,) = query(base, f"histogram_quantile(0.5, celery_task_runtime_bucket{{{task}}})")
        assert 0 < float(median["value"][1]) <= 0.25  # a task that returns at once: its runs in the low buckets
        cpu = poll(lambda: answered(f'vsmmon_worker_cpu_percent{{hostname="{worker.hostname}"}}'), deadline_s=30,
                   what="Prometheus to scrape the worker's CPU")  # fmt: skip
        assert 0 <= float(cpu[0]["value"][1]) <= 100 * (os.cpu_count() or 1)
        up = query(base, 'up{job="vsmmon"}')
        assert [float(s["value"][1]) for s in up] == [1.0]
