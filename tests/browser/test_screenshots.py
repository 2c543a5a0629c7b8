"""The README's screenshots: the dashboard over a seeded fleet, taken as a person would see it.

`make screenshots` sets VSMMON_SCREENSHOTS_DIR=docs/screenshots; otherwise they go to a temporary
folder, so `make test` proves they can still be taken.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import redis

from tests.browser.seed import assessment, raise_alert, seed, store_and_publish
from tests.browser.test_dashboard import TIMEOUT_MS, open_dashboard, shown_at
from tests.integration.conftest import poll
from vsmmon.config import Settings
from vsmmon.store.postgres import PostgresStore


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_screenshots(
    page: Any, live_api: str, store: PostgresStore, redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    target = Path(os.environ.get("VSMMON_SCREENSHOTS_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    fleet = seed(store, redis_client, agents=120, offline=6, cycles=60)
    open_dashboard(page, live_api)
    raise_alert(store, redis_client, settings, fleet.workers[0])
    summary = store_and_publish(store, redis_client, assessment(fleet, degraded=True))
    shown_at(page, summary["at"])
    page.wait_for_selector("#alerts .alert", timeout=TIMEOUT_MS)
    for chart in ("cpu", "memory", "throughput", "latency", "queue"):
        page.wait_for_selector(f"#chart-{chart} canvas", timeout=TIMEOUT_MS)
    note = page.locator("#chart-memory .note")
    poll(lambda: "forecast" in (note.text_content() or ""), deadline_s=15, what="the memory forecast")
    page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 124", timeout=TIMEOUT_MS)

    def top_of(selector: str, height: int) -> Any:
        box = page.locator(selector).bounding_box()
        clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": min(height, box["height"])}
        return lambda p: page.screenshot(path=p, full_page=True, clip=clip)

    shots = {
        "dashboard.png": lambda p: page.screenshot(path=p, full_page=False),
        "panels.png": lambda p: page.locator("#middle").screenshot(path=p),
        "charts.png": lambda p: page.locator("#charts-card").screenshot(path=p),
        "agents.png": top_of("#agents-card", 520),
    }
    page.click("#tasks tbody tr[data-name='shop.emails.send']")
    page.wait_for_selector("#task-detail:not([hidden]) #chart-task-runtime canvas", timeout=TIMEOUT_MS)
    page.wait_for_selector("#task-failures .failure", timeout=TIMEOUT_MS)
    page.click("#queues tbody tr[data-name='orders']")
    page.wait_for_selector("#queue-detail:not([hidden]) #chart-queue-messages canvas", timeout=TIMEOUT_MS)
    shots |= {
        "tasks.png": lambda p: page.locator("#tasks-card").screenshot(path=p),
        "queues.png": lambda p: page.locator("#queues-card").screenshot(path=p),
    }
    for name, take in shots.items():
        take(str(target / name))
        width, height = png_size(target / name)
        assert width >= 800, (name, width)
        assert height >= 150, (name, height)
