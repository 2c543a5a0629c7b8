"""P6: from an assessment published on Redis to the dashboard's DOM showing it, in headless Chromium.

The real HTTP service (`vsmmon serve`: uvicorn, PostgreSQL, Redis, its own process) serves the dashboard
over a seeded fleet of 1,000 agents running 500 task names (all in the tasks view); its event stream relays
`vsm:health` through the process's one subscription (`EventHub`). The bench publishes an assessment summary
exactly as the health task does, and the time ends when the page has rendered it: a MutationObserver sees
`#viability[data-at]` change, which `renderHealth` sets last, after the gauge and S1-S5. Every publish is
1.5 s after the previous one (assessments come every 30 s in production), so the page's own refresh after
each assessment (1,000 agents, five charts, 500 task names and the queues) has run in between, as it would.

Baseline, on the same publishes at the same time: a bare page in the same browser whose minimal SSE
endpoint (uvicorn, its own process) holds its own Redis subscription and writes the message's `at` into
the DOM. The difference is what the dashboard costs over delivering the message at all. A second bare page
on the same server (its own subscription) sees the same publishes too: the A/A, the method's own noise.
Browser and bench share the machine's clock; the offset between `performance.timeOrigin + performance.now()`
and `time.time()` is measured (best of 20 round trips) per page and taken off. A repetition is 100
publishes and its figure their p99 (nearest rank: the 99th, so not simply the slowest one; on a shared
2-core machine a process now and then waits 100 ms or more for a core); the ratio is the median of the
repetitions' dashboard-to-bare p99 ratios, the A/A the median of their second-bare-to-bare ones.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.common import Result, Stats, Target, stop
from bench.services import database_url, flushed_redis, redis_url, throwaway_database
from tests.browser.seed import HEALTH_CHANNEL, assessment, seed
from vsmmon.health.codec import assessment_to_dict
from vsmmon.local.embedded import free_port
from vsmmon.store import migrations
from vsmmon.store.postgres import PostgresStore, create_engine

ID = "P6"
TARGET = Target(max_figure=50.0)
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
AGENTS = 1000
TASK_NAMES = 500
SPACING_S = 1.5
WAIT_MS = 5000

OBSERVE = """(selector) => {
  window.__seen = [];
  const target = document.querySelector(selector);
  new MutationObserver(() => { window.__seen.push([target.dataset.at, performance.timeOrigin + performance.now()]); })
    .observe(target, { attributes: true, attributeFilter: ["data-at"] });
}"""
BARE_PAGE = """<!doctype html><html><body><div id="v" data-at=""></div><script>
const source = new EventSource("/sse");
source.onopen = () => { document.body.dataset.live = "1"; };
source.onmessage = (e) => {
  const h = JSON.parse(e.data), v = document.getElementById("v");
  v.textContent = h.viability.toFixed(2);
  v.dataset.at = h.at;
};
</script></body></html>"""


@dataclass(frozen=True, slots=True)
class Shape:
    repetitions: int
    samples: int
    warmup: int


FULL = Shape(repetitions=3, samples=100, warmup=5)
QUICK = Shape(repetitions=1, samples=20, warmup=2)
SIDES = ("dashboard", "bare", "bare again")  # the measured page, the baseline, the baseline's A/A twin


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bare_app(url: str) -> Starlette:
    """The baseline: one Redis subscription per browser, each message written as it came."""

    async def page(request: Request) -> Response:
        return HTMLResponse(BARE_PAGE)

    async def sse(request: Request) -> Response:
        client = aioredis.Redis.from_url(url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(HEALTH_CHANNEL)

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n"
                async for message in pubsub.listen():
                    yield b"data: " + message["data"] + b"\n\n"
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await client.aclose()

        return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return Starlette(routes=[Route("/", page), Route("/sse", sse)])


@contextmanager
def serving(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """A server process listening on `port`; yields its base URL, stops it on exit."""
    with log.open("wb") as out:
        child = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {child.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not answer within {READY_TIMEOUT_S} s")
            time.sleep(0.2)
        yield base
    finally:
        stop(child, timeout_s=15)


def clock_offset_ms(page: Any) -> float:
    """Browser clock minus this process's `time.time()`, from the round trip with the smallest span."""
    best: tuple[float, float] | None = None
    for _ in range(20):
        before = time.time() * 1000
        browser = page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, browser - (before + after) / 2)
    assert best is not None
    return best[1]


def start_servers(stack: ExitStack, url: str, db: str) -> dict[str, str]:
    """`vsmmon serve` and the bare pages' server, each in its own process, by side."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vsmmon-p6-")))
    port, bare_port = free_port(), free_port()
    env = {
        "VSMMON_BROKER_URL": url, "VSMMON_DATABASE_URL": db, "VSMMON_API_TOKEN": "bench",
        "VSMMON_HTTP_PORT": str(port), "VSMMON_DATA_DIR": str(tmp / "data"), "VSMMON_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    vsmmon = str(Path(sys.executable).with_name("vsmmon"))
    bare = [sys.executable, "-m", "bench.p6_dashboard_latency", str(bare_port), url]
    bare_base = stack.enter_context(serving(bare, bare_port, {}, tmp / "bare.log"))
    return {
        "dashboard": stack.enter_context(serving([vsmmon, "serve"], port, env, tmp / "serve.log")),
        "bare": bare_base,
        "bare again": bare_base,
    }


def open_page(stack: ExitStack, browser: Any, base: str, selector: str) -> Any:
    """A page on `base`, live, observing `selector[data-at]`; closed before its server stops."""
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    stack.callback(context.close)
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_selector("body[data-live='1']", state="attached", timeout=WAIT_MS * 3)
    page.evaluate(OBSERVE, selector)
    return page


def run(quick: bool) -> Result:
    """Seed a fleet, open the dashboard and the bare page, publish assessments, time each to both DOMs."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    shape = QUICK if quick else FULL
    url = redis_url()
    with ExitStack() as stack:
        client = stack.enter_context(flushed_redis(url))
        db = stack.enter_context(throwaway_database(database_url()))
        migrations.upgrade(db)
        engine = create_engine(db, pool_size=2)
        stack.callback(engine.dispose)
        store = PostgresStore(engine)
        fleet = seed(store, client, agents=AGENTS, offline=10, cycles=2, tasks=TASK_NAMES)
        urls = start_servers(stack, url, db)
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        pages = {side: open_page(stack, browser, base, "#viability" if side == "dashboard" else "#v")
                 for side, base in urls.items()}  # fmt: skip
        pages["dashboard"].wait_for_function(
            f"() => document.querySelectorAll('#tiles i').length === {AGENTS + 4}",  # a function: the CSP refuses eval
            timeout=WAIT_MS * 3,
        )
        pages["dashboard"].wait_for_function(  # every task name on the page, and vsmmon.collect.run
            f"() => document.querySelectorAll('#tasks tbody tr').length === {TASK_NAMES + 1}", timeout=WAIT_MS * 3
        )
        [(_, subscribers)] = client.pubsub_numsub(HEALTH_CHANNEL)
        if subscribers != len(SIDES):
            raise RuntimeError(
                f"expected the dashboard's hub and two bare pages on {HEALTH_CHANNEL}, saw {subscribers}"
            )
        offsets = {side: clock_offset_ms(page) for side, page in pages.items()}
        summary = assessment_to_dict(assessment(fleet), agents=False)

        def publish_and_wait() -> dict[str, float]:
            at = datetime.now(UTC).isoformat()
            message = json.dumps({**summary, "at": at})
            published = time.time() * 1000
            client.publish(HEALTH_CHANNEL, message)
            latencies = {}
            for side, page in pages.items():
                seen = page.wait_for_function(
                    "(at) => window.__seen.find((s) => s[0] === at)", arg=at, timeout=WAIT_MS
                ).json_value()
                latencies[side] = seen[1] - offsets[side] - published
            time.sleep(SPACING_S)
            return latencies

        for _ in range(shape.warmup):
            publish_and_wait()
        reps = [[publish_and_wait() for _ in range(shape.samples)] for _ in range(shape.repetitions)]
    p99 = {side: [nearest_rank([r[side] for r in runs], 0.99) for runs in reps] for side in SIDES}
    ordered = sorted(r["dashboard"] for runs in reps for r in runs)
    return Result(
        id=ID,
        what=(
            f"dashboard update latency: p99 ms from an assessment summary published on Redis `{HEALTH_CHANNEL}` to "
            f"the dashboard's DOM showing it (headless Chromium, {AGENTS:,} agents and {TASK_NAMES} task names on "
            f"the page, uvicorn, one "
            f"publish per {SPACING_S:g} s), p99 of {shape.samples} publishes per repetition"
        ),
        unit="ms",
        baseline_name="the same publishes to a bare page with its own Redis subscription and SSE endpoint",
        figure_name="vsmmon dashboard: EventHub fan-out, SSE, renderHealth (gauge, S1-S5)",
        baseline=Stats.of(p99["bare"]),
        figure=Stats.of(p99["dashboard"]),
        ratios=Stats.of([d / b for d, b in zip(p99["dashboard"], p99["bare"], strict=True)]),
        aa_ratios=Stats.of([a / b for a, b in zip(p99["bare again"], p99["bare"], strict=True)]),
        target=TARGET,
        digits=1,
        figure_detail=f"p50 {nearest_rank(ordered, 0.5):.1f} ms, slowest {ordered[-1]:.1f} ms",
        notes=("clock offset browser - bench: " + ", ".join(f"{offsets[s]:+.2f} ms ({s})" for s in SIDES),),
    )


if __name__ == "__main__":  # the baseline's server: python -m bench.p6_dashboard_latency PORT REDIS_URL
    uvicorn.run(bare_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
