"""The tasks and queues views in headless Chromium against the real HTTP service, PostgreSQL and Redis: sorting,
filtering, a row's drill-down (charts, last failures) and live updates, checked against what the seed wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis

from tests.browser.seed import (
    FAILING,
    FAILURES,
    INTERVAL_S,
    SLOW,
    WEBHOOK_ARGUMENTS,
    assessment,
    seed,
    store_and_publish,
    task_names,
)
from tests.browser.test_dashboard import TIMEOUT_MS, open_dashboard
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.postgres import PostgresStore
from vsmmon.store.realtime import RealtimeWindow
from vsmmon.tasks.failures import FailureBook, TaskFailure

NAMES = 12  # the seed's shop tasks; vsmmon.collect.run is the thirteenth name its workers report


def rows_are(page: Any, table: str, n: int) -> None:
    page.wait_for_function(
        f"() => document.querySelectorAll('#{table} tbody tr:not(.empty)').length === {n}", timeout=TIMEOUT_MS
    )


def column(page: Any, table: str, n: int) -> list[str]:
    return page.locator(f"#{table} tbody tr td:nth-child({n})").all_text_contents()


def names_shown(page: Any) -> list[str]:
    return [page.locator("#tasks tbody tr").nth(i).get_attribute("data-name") for i in range(page.locator(
        "#tasks tbody tr").count())]  # fmt: skip


def test_the_tasks_view_shows_each_names_figures_sorts_and_filters(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    seed(store, redis_client, agents=40, offline=3, cycles=60, tasks=NAMES)
    open_dashboard(page, live_api)
    rows_are(page, "tasks", NAMES + 1)
    api = {r["name"]: r for r in httpx.get(f"{live_api}/api/v1/tasks", timeout=5).json()["tasks"]}
    shown = names_shown(page)
    assert shown == sorted(api, key=lambda n: (-(api[n]["rate_per_s"] or 0), n))  # busiest first
    failed = dict(zip(shown, column(page, "tasks", 3), strict=True))
    for name, ratio in FAILING.items():
        assert failed[name] == f"{100 * ratio:.1f} %"  # the share of runs the seed made fail
    assert failed["shop.orders.charge"] == "0.0 %"
    p50 = dict(zip(shown, column(page, "tasks", 5), strict=True))
    assert p50[SLOW] == "2.50 s"
    assert p50["shop.orders.charge"] == "20 ms"
    workers = dict(zip(shown, column(page, "tasks", 10), strict=True))
    assert workers["shop.orders.charge"] == str(len(api["shop.orders.charge"]["workers"]))
    last = dict(zip(shown, column(page, "tasks", 12), strict=True))
    assert last["shop.emails.send"].startswith("smtplib.SMTPServerDisconnected, ")
    assert last["shop.orders.charge"] == "\u2013"
    assert page.text_content("#task-counts") == f"{NAMES + 1} task names, 2 failing, {NAMES + 1} shown"

    page.click("#tasks th[data-sort='failure_ratio']")
    assert names_shown(page)[:2] == ["shop.emails.send", "shop.webhooks.deliver"]
    page.click("#tasks th[data-sort='failure_ratio']")  # again: least failing first
    assert names_shown(page)[-2:] == ["shop.webhooks.deliver", "shop.emails.send"]
    page.click("#tasks th[data-sort='name']")
    assert names_shown(page) == sorted(api)
    page.click("#tasks th[data-sort='runtime_p95_s']")
    assert names_shown(page)[0] == SLOW

    page.fill("#task-filter", "EMAILS")
    rows_are(page, "tasks", 2)
    assert sorted(names_shown(page)) == ["shop.emails.render", "shop.emails.send"]
    page.fill("#task-filter", "")
    page.check("#task-failing")
    rows_are(page, "tasks", 2)
    assert sorted(names_shown(page)) == sorted(FAILING)
    page.fill("#task-filter", "no.such.task")
    rows_are(page, "tasks", 0)
    assert page.text_content("#tasks tbody") == "no task name matches"


def test_a_task_opens_its_charts_and_last_failures_and_both_follow_new_collections(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    fleet = seed(store, redis_client, agents=12, offline=0, cycles=60, tasks=NAMES)
    open_dashboard(page, live_api)
    rows_are(page, "tasks", NAMES + 1)
    page.click("#tasks tbody tr[data-name='shop.emails.send']")
    page.wait_for_selector("#task-detail:not([hidden]) #chart-task-runtime canvas", timeout=TIMEOUT_MS)
    assert page.text_content("#task-detail-name") == "shop.emails.send"
    assert "20.0 % failed over 5 min" in (page.text_content("#task-detail-summary") or "")
    for chart in ("task-rate", "task-failures", "task-runtime"):
        page.wait_for_selector(f"#chart-{chart} canvas", timeout=TIMEOUT_MS)
    assert page.get_attribute("#chart-task-runtime", "data-yticks").endswith(" s")  # type: ignore[union-attr]
    failures = page.locator("#task-failures .failure")
    assert failures.count() == 3
    exception, message = FAILURES["shop.emails.send"]
    assert f"{exception}: {message}" in (failures.first.text_content() or "")
    assert page.locator("#tasks tbody tr.selected").get_attribute("data-name") == "shop.emails.send"

    # a new failure and a new task name reach the open page with the next assessment, without a reload
    page.evaluate("window.sameDocument = true")
    newest = TaskFailure("shop.emails.send", str(uuid.uuid4()), fleet.workers[0], "smtplib.SMTPDataError",
                         "451 try again later", datetime.now(UTC))  # fmt: skip
    FailureBook(redis_client).record([newest])
    at = datetime.now(UTC) + timedelta(seconds=INTERVAL_S)
    worker = AgentReport(fleet.workers[0], AgentKind.CELERY_WORKER, "host-0",
                         {"task.shop.brand.new.succeeded_total": 1.0, "task.shop.brand.new.failed_total": 0.0},
                         queues=("orders",))  # fmt: skip
    collection = Collection(uuid.uuid4(), at, 8.0, (worker,))
    RealtimeWindow(redis_client, INTERVAL_S).write(collection)
    store.update_registry(collection)
    store_and_publish(store, redis_client, assessment(fleet))
    page.wait_for_selector("#tasks tbody tr[data-name='shop.brand.new']", timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.querySelectorAll('#task-failures .failure').length === 4",
                           timeout=TIMEOUT_MS)  # fmt: skip
    assert "smtplib.SMTPDataError: 451 try again later" in (failures.first.text_content() or "")
    assert page.evaluate("window.sameDocument") is True

    page.click("#task-detail-close")
    assert page.locator("#task-detail").is_hidden()
    assert page.locator("#tasks tbody tr.selected").count() == 0

    page.click("#tasks tbody tr[data-name='shop.webhooks.deliver']")  # its workers keep failures' arguments
    page.wait_for_function("() => document.querySelectorAll('#task-failures .failure .arguments').length === 3",
                           timeout=TIMEOUT_MS)  # fmt: skip
    assert page.locator("#task-failures .arguments").first.text_content() == WEBHOOK_ARGUMENTS


def test_the_queues_view_lists_each_queue_with_its_consumers_and_opens_its_charts(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    seed(store, redis_client, agents=20, offline=0, cycles=60)
    open_dashboard(page, live_api)
    rows_are(page, "queues", 4)
    api = {q["name"]: q for q in httpx.get(f"{live_api}/api/v1/queues", timeout=5).json()["queues"]}
    shown = [page.locator("#queues tbody tr").nth(i).get_attribute("data-name") for i in range(4)]
    assert shown == sorted(api, key=lambda n: (-api[n]["messages"], n))  # longest first
    consumers = dict(zip(shown, column(page, "queues", 3), strict=True))
    assert consumers == {"vsm.collect": "5", "vsm.analysis": "5", "orders": "5", "emails": "5"}  # 20 workers, 4 queues
    messages = dict(zip(shown, column(page, "queues", 2), strict=True))
    assert messages == {n: f"{q['messages']:.0f}" for n, q in api.items()}
    assert all(q["state"] in {"draining", "holding", "growing", "empty"} for q in api.values())
    drains = dict(zip(shown, column(page, "queues", 7), strict=True))
    for name, q in api.items():
        if q["state"] == "draining":
            assert drains[name].startswith("in "), name
        else:
            said = {"empty": "empty", "holding": "never: holds steady", "growing": "never: growing"}
            assert drains[name] == said[q["state"]], name
    assert page.locator("#queues tbody tr[data-name='vsm.collect'] .tag").text_content() == "vsmmon"
    assert page.locator("#queues tbody tr[data-name='orders'] .tag").count() == 0

    page.fill("#queue-filter", "vsm.")
    rows_are(page, "queues", 2)
    page.fill("#queue-filter", "")
    rows_are(page, "queues", 4)
    page.click("#queues th[data-sort='name']")
    assert [page.locator("#queues tbody tr").nth(i).get_attribute("data-name") for i in range(4)] == sorted(api)

    page.click("#queues tbody tr[data-name='emails']")
    for chart in ("queue-messages", "queue-age", "queue-consumers"):
        page.wait_for_selector(f"#queue-detail:not([hidden]) #chart-{chart} canvas", timeout=TIMEOUT_MS)
    assert page.text_content("#queue-detail-name") == "emails"
    summary = page.text_content("#queue-detail-summary") or ""
    assert "consumed by celery@worker-0003, celery@worker-0007, celery@worker-0011 and 2 more" in summary
    assert page.get_attribute("#chart-queue-messages", "data-yticks").endswith(" messages")  # type: ignore[union-attr]


def test_five_hundred_task_names_are_all_on_the_page(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis
) -> None:
    seed(store, redis_client, agents=200, offline=0, cycles=3, tasks=500)
    open_dashboard(page, live_api)
    rows_are(page, "tasks", 501)
    assert page.text_content("#tasks-more") == ""
    wanted = {n for n in task_names(500) if "batch_4" in n}  # batch_04x and batch_400 .. batch_487
    page.fill("#task-filter", "batch_4")
    rows_are(page, "tasks", len(wanted))
    assert set(names_shown(page)) == wanted
