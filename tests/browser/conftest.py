"""Headless Chromium (Debian's `chromium`, from `make browser`) driven by Playwright, on the real HTTP service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.conftest import (  # noqa: F401 - the real services and HTTP service these tests use
    API_TOKEN,
    clean_services,
    live_api,
    migrated_database,
    service_urls,
    settings,
    store,
)
from vsmmon.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 1100}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API holds an event loop in this thread while it runs, which
    would break `asyncio.run` in the tests after it."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live_api: str) -> Iterator[Any]:  # noqa: F811
    """A fresh page, closed before the HTTP service stops (an open event stream would hold its shutdown);
    any uncaught JavaScript error fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == [], errors


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(settings.require("redis_url"))
    yield client
    client.close()
