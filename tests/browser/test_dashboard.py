"""The dashboard in headless Chromium against the real HTTP service, PostgreSQL and Redis."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import redis

from tests.browser.seed import assessment, raise_alert, seed, store_and_publish
from tests.integration.conftest import API_TOKEN, poll
from vsmmon.config import Settings
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.alert_records import AlertRecords, ControlAction, PolicyDecision
from vsmmon.store.postgres import PostgresStore

TIMEOUT_MS = 15_000  # predicates of wait_for_function are functions: Playwright evals an expression, the CSP refuses
NO_VALUE = "\u2013"  # what the page shows for a missing figure


def open_dashboard(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT_MS)


def shown_at(page: Any, at: str) -> None:
    page.wait_for_selector(f"#viability[data-at='{at}']", timeout=TIMEOUT_MS)


def test_the_page_shows_viability_the_systems_and_the_agents(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=40, offline=3)
    summary = store_and_publish(store, redis_client, assessment(fleet))
    open_dashboard(page, live_api)
    shown_at(page, summary["at"])
    assert float(page.text_content("#viability-value")) == pytest.approx(summary["viability"], abs=0.0051)
    assert page.text_content("#viability-state") == summary["viability_state"]
    for name, system in summary["systems"].items():
        card = page.locator(f".system[data-system='{name}']")
        shown = card.locator(".score").text_content()
        if system["score"] is None:
            assert shown == NO_VALUE
        else:
            assert float(shown) == pytest.approx(system["score"], abs=0.0051)
        assert card.locator(".muted").nth(1).text_content() == system["state"]
        for factor in system["factors"]:
            assert factor["name"] in card.text_content()
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 44", timeout=TIMEOUT_MS)
    assert page.text_content("#agent-counts") == "44 shown, 3 offline"
    offline = page.locator("#agents tbody td[data-s='offline']")
    assert offline.count() == 3
    assert page.locator("#tiles i.offline").count() == 3


def test_a_new_assessment_appears_without_a_reload(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=12, offline=0, cycles=3)
    first = store_and_publish(store, redis_client, assessment(fleet))
    open_dashboard(page, live_api)
    shown_at(page, first["at"])
    page.evaluate("window.sameDocument = true")
    second = store_and_publish(store, redis_client, assessment(fleet, degraded=True))
    assert second["viability"] != first["viability"]
    shown_at(page, second["at"])
    assert float(page.text_content("#viability-value")) == pytest.approx(second["viability"], abs=0.0051)
    assert page.evaluate("window.sameDocument") is True  # the page was updated in place, never reloaded


def test_one_redis_subscription_serves_every_browser(
    browser: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=5, offline=0, cycles=3)
    contexts = [browser.new_context() for _ in range(3)]
    try:
        pages = [c.new_page() for c in contexts]
        for p in pages:
            open_dashboard(p, live_api)
        [(_, subscribers)] = redis_client.pubsub_numsub("vsm:health")
        assert subscribers == 1
        summary = store_and_publish(store, redis_client, assessment(fleet))
        for p in pages:
            shown_at(p, summary["at"])
    finally:
        for c in contexts:
            c.close()


def test_the_agent_grid_sorts_and_filters(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=30, offline=4, cycles=3)
    store_and_publish(store, redis_client, assessment(fleet, degraded=True))
    open_dashboard(page, live_api)
    rows = page.locator("#agents tbody tr")
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 34", timeout=TIMEOUT_MS)
    page.select_option("#agent-status", "offline")
    assert sorted(rows.nth(i).get_attribute("data-id") for i in range(rows.count())) == sorted(fleet.offline)
    page.select_option("#agent-status", "")
    page.select_option("#agent-kind", "queue")
    assert rows.count() == 4
    page.select_option("#agent-kind", "")
    page.fill("#agent-filter", "worker-001")
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 10", timeout=TIMEOUT_MS)
    page.fill("#agent-filter", "")
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 34", timeout=TIMEOUT_MS)

    def health_column() -> list[float]:
        cells = page.locator("#agents tbody tr td:nth-child(4)").all_text_contents()
        return [float(c) for c in cells if c != NO_VALUE]

    page.wait_for_function(
        "() => [...document.querySelectorAll('#agents tbody td:nth-child(4)')].some(td => td.textContent !== '\u2013')",
        timeout=TIMEOUT_MS,
    )
    page.click("#agents th[data-sort='score']")  # the default order is by health: this click reverses it
    descending = health_column()
    assert descending == sorted(descending, reverse=True)
    assert len(set(descending)) > 1
    page.click("#agents th[data-sort='score']")
    assert health_column() == sorted(descending)


def test_charts_draw_the_series_with_the_forecast(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    seed(store, redis_client, agents=4, offline=0, cycles=60)
    open_dashboard(page, live_api)
    # the first worker is charted once the agents are loaded
    page.wait_for_function(
        "() => document.querySelector('#chart-agent').value === 'celery@worker-0000'", timeout=TIMEOUT_MS
    )
    note = page.locator("#chart-memory .note")
    poll(lambda: "forecast of memory_bytes" in (note.text_content() or ""), deadline_s=15, what="the memory forecast")
    for chart in ("cpu", "memory", "throughput", "latency", "queue"):
        page.wait_for_selector(f"#chart-{chart} canvas", timeout=TIMEOUT_MS)
        assert page.text_content(f"#chart-{chart} .note") != "no data in this window"
    assert "Holt projection of cpu_percent" in (page.text_content("#chart-cpu .note") or "")
    page.click(".windows button[data-window='3600']")
    page.wait_for_selector(".windows button.on[data-window='3600']")
    page.click("#agents tbody tr[data-id='celery@worker-0002']")
    assert page.input_value("#chart-agent") == "celery@worker-0002"


def test_the_grid_stays_whole_with_a_thousand_agents(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=1000, offline=25, cycles=2)
    store_and_publish(store, redis_client, assessment(fleet))
    open_dashboard(page, live_api)
    page.wait_for_function("() => document.querySelectorAll('#tiles i').length === 1004", timeout=TIMEOUT_MS)
    assert page.locator("#agents tbody tr").count() == 300
    assert page.text_content("#agents-more") == "704 more match: narrow the filter to see them"
    assert page.locator("#tiles i.offline").count() == 25
    page.fill("#agent-filter", "worker-09")
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 100", timeout=TIMEOUT_MS)


def test_an_alert_is_acknowledged_and_silenced_from_the_page(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis, settings: Settings
) -> None:
    fleet = seed(store, redis_client, agents=5, offline=0, cycles=3)
    open_dashboard(page, live_api)
    page.fill("#token", API_TOKEN)
    page.dispatch_event("#token", "change")
    alert = raise_alert(store, redis_client, settings, fleet.workers[1])
    item = page.locator(f"#alerts .alert[data-id='{alert['id']}']")
    item.wait_for(timeout=TIMEOUT_MS)  # pushed: the page was loaded before the alert fired
    assert item.get_attribute("data-status") == "firing"
    assert "RSS above the hard limit" in item.text_content()
    page.once("dialog", lambda dialog: dialog.accept("ops-on-call"))
    item.locator("button[data-ack]").click()
    page.wait_for_selector(f"#alerts .alert[data-id='{alert['id']}'][data-status='acknowledged']", timeout=TIMEOUT_MS)
    assert "acknowledged by ops-on-call" in item.text_content()
    [stored] = [a for a in httpx.get(f"{live_api}/api/v1/alerts").json()["alerts"] if a["id"] == alert["id"]]
    assert (stored["status"], stored["acknowledged_by"]) == ("acknowledged", "ops-on-call")

    item.locator("button[data-silence]").click()
    assert page.input_value("#silence-form input[name='matcher']") == f"target={fleet.workers[1]}"
    page.fill("#silence-form input[name='comment']", "known leak, fix deploying")
    page.click("#silence-form button[type='submit']")
    page.wait_for_selector("#silences .item button[data-unsilence]", timeout=TIMEOUT_MS)
    [silence] = httpx.get(f"{live_api}/api/v1/silences").json()["silences"]
    assert silence["matchers"] == {"target": fleet.workers[1]}
    assert (silence["created_by"], silence["comment"]) == ("ops-on-call", "known leak, fix deploying")
    page.click("#silences button[data-unsilence]")
    page.wait_for_selector("#silences .muted", timeout=TIMEOUT_MS)
    assert httpx.get(f"{live_api}/api/v1/silences").json()["silences"] == []


def test_writes_from_the_page_without_the_token_are_refused(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis, settings: Settings
) -> None:
    fleet = seed(store, redis_client, agents=2, offline=0, cycles=3)
    alert = raise_alert(store, redis_client, settings, fleet.workers[0])
    open_dashboard(page, live_api)
    item = page.locator(f"#alerts .alert[data-id='{alert['id']}']")
    item.wait_for(timeout=TIMEOUT_MS)
    messages: list[str] = []

    def answer(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept("someone")

    page.on("dialog", answer)
    item.locator("button[data-ack]").click()
    # Playwright calls dispatch its events (the dialog handler runs inside them): wait with the page, not sleep
    deadline = time.monotonic() + 10
    while len(messages) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(messages) == 2, messages
    assert messages[1].startswith("ack failed (401)")
    assert httpx.get(f"{live_api}/api/v1/alerts").json()["alerts"][0]["status"] == "firing"


def test_s3_actions_and_s5_decisions_read_as_sentences_that_link_to_the_alert_and_the_agent(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis, settings: Settings
) -> None:
    fleet = seed(store, redis_client, agents=3, offline=0, cycles=12)
    target = fleet.workers[1]
    alert = raise_alert(store, redis_client, settings, target)
    records = AlertRecords(store.engine)
    alert_id = uuid.UUID(alert["id"])
    grown = ControlAction(uuid.uuid4(), fleet.now, target, "pool_grow", {"n": 1}, "backlog 40 over 60 s", alert_id,
                          False, {"concurrency": 2}, {"concurrency": 3}, fleet.now, True)  # fmt: skip
    records.save_action(grown)
    detail = {"reason": "critical, no standing policy", "alert": alert, "lifts": []}
    records.save_decision(PolicyDecision(uuid.uuid4(), fleet.now, alert_id, "notify", detail))
    open_dashboard(page, live_api)
    action = page.locator("#actions .item[data-action='pool_grow']")
    action.wait_for(timeout=TIMEOUT_MS)
    assert action.text_content().split("\n")[0].strip() == (
        f"Grew the pool of {target} by 1 (pool 2 \u2192 3), for its alert: backlog 40 over 60 s; it helped."
    )
    decision = page.locator("#decisions .item[data-decision='notify']")
    assert decision.text_content().split("\n")[0].strip() == (
        f"Notified the operators of critical memory_high on {target} (the alert: critical, no standing policy)."
    )
    assert "{" not in decision.text_content()  # no raw JSON document
    decision.locator(f"a[data-chart-agent='{target}']").click()
    assert page.input_value("#chart-agent") == target
    page.select_option("#alert-filter", "resolved")  # the alert is not listed: the link finds it anyway
    decision.locator("a[data-alert-link]").click()
    page.wait_for_selector(f"#alerts .alert.picked[data-id='{alert['id']}']", timeout=TIMEOUT_MS)


def test_charts_start_on_an_agent_with_data_and_draw_no_axes_without_any(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=2, offline=0, cycles=12)
    sensor = Collection(uuid.uuid4(), fleet.now, 1.0, (AgentReport("a-sensor", AgentKind.SENSOR, "edge", {}),))
    store.update_registry(sensor)  # first in id order, with nothing to chart
    open_dashboard(page, live_api)
    page.wait_for_function(
        "() => document.querySelector('#chart-agent').value === 'celery@worker-0000'", timeout=TIMEOUT_MS
    )
    for chart, unit in (("cpu", " %"), ("throughput", " tasks/s"), ("memory", "B")):
        # the charts load in parallel: wait for each one's own axis, not for the first to be drawn
        page.wait_for_selector(f"#chart-{chart}[data-yticks] canvas", timeout=TIMEOUT_MS)
        ticks = (page.get_attribute(f"#chart-{chart}", "data-yticks") or "").split("|")
        assert len(ticks) >= 2, (chart, ticks)
        assert all(t.endswith(unit) for t in ticks), (chart, ticks)  # each with its unit
        assert len(set(ticks)) == len(ticks), (chart, ticks)  # none twice
    page.select_option("#chart-agent", "a-sensor")
    page.wait_for_function(
        "() => document.querySelector('#chart-memory .note').textContent === 'no data in this window'",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#chart-memory canvas").count() == 0  # no empty axes reading "1 B ... 0 B"
