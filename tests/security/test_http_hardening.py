# ruff: noqa: F811 - fixtures imported from the integration tier are used as parameters of the same name
"""The HTTP service under hostile clients (issue #20, items 3 and 6), on the real app and real services.

The token never goes into a URL: the dashboard opens its event stream with a single-use ticket, and the
access log of `vsmmon serve` hides `token=` and `ticket=` values. Connections, header waits and event
streams are bounded; every response carries the security headers; a Host that is not ours is a 400;
`/docs` is off; a `Last-Event-ID` out of range is ignored; a wrong token is a 401 before the body is read.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.browser.seed import assessment, seed, store_and_publish
from tests.integration.conftest import (  # noqa: F401 - the real services these tests use
    clean_services,
    in_thread,
    migrated_database,
    poll,
    service_urls,
    settings,
    store,
)
from vsmmon import names
from vsmmon.config import Settings, load_settings
from vsmmon.errors import ConfigError
from vsmmon.local.embedded import free_port
from vsmmon.store.postgres import PostgresStore
from vsmmon.web import create_app
from vsmmon.web.serving import server_config

TOKEN = "hardening-token-4c1e9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[2] / "vsmmon" / "web" / "static"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

pytestmark = pytest.mark.integration


@pytest.fixture
def secured(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN)})


@pytest.fixture
def client(secured: Settings, clean_services: None) -> Iterator[TestClient]:
    with TestClient(create_app(secured, report_self=False)) as c:
        yield c


@contextmanager
def served(base: Settings, **changes: Any) -> Iterator[str]:
    """The app under uvicorn, configured as `vsmmon serve` does (`serving.server_config`), in a thread."""
    changed = base.model_copy(update={"http_host": "127.0.0.1", "http_port": free_port(), "log_level": "WARNING",
                                      **changes})  # fmt: skip
    server = uvicorn.Server(server_config(create_app(changed, report_self=False), changed))
    with in_thread(server, changed.http_port) as url:
        yield url


def redis_of(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.require("redis_url"))


# ---------- the token stays out of URLs ----------


def test_the_dashboard_opens_its_stream_with_a_ticket_and_never_puts_the_token_in_a_url(
    secured: Settings, store: PostgresStore
) -> None:
    """Driven in Chromium with reads needing the token: every URL the page requests is free of the token,
    the stream opens with `?ticket=`, the page goes live, and nothing on it violates the CSP."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    client = redis_of(secured)
    summary = store_and_publish(store, client, assessment(seed(store, client, agents=4, offline=0, cycles=3)))
    with served(secured, reads_need_token=True) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context()
            context.add_init_script(
                f"localStorage.setItem('vsmmon.token', {json.dumps(TOKEN)});"
                "window.cspViolations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"
            )
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(url + "/")
            page.wait_for_selector("body[data-live='1']", timeout=15_000)
            page.wait_for_selector(f"#viability[data-at='{summary['at']}']", timeout=15_000)
            widths = page.eval_on_selector_all(".system .bar > i", "bars => bars.map((i) => i.style.width)")
            violations = page.evaluate("window.cspViolations")
        finally:
            browser.close()
    client.close()
    assert [u for u in requested if TOKEN in u] == []
    streams = [u for u in requested if "/api/v1/events" in u]
    assert streams, requested
    assert all(re.search(r"/api/v1/events\?ticket=[\w-]{40,}$", u) for u in streams), streams
    assert violations == []
    assert len(widths) == 5  # the score bars of S1-S5, sized through the CSSOM
    assert all(w.endswith("%") for w in widths), widths


def test_the_access_log_shows_no_token_and_no_ticket(secured: Settings, clean_services: None, tmp_path: Path) -> None:
    """`vsmmon serve` as `vsmmon up` runs it (its output is logs/http.log): a token or a ticket in a query
    string is logged as `***`, however its name is spelled."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update({
        "VSMMON_BROKER_URL": secured.require("broker_url"), "VSMMON_DATABASE_URL": secured.sqlalchemy_url(),
        "VSMMON_API_TOKEN": TOKEN, "VSMMON_HTTP_PORT": str(port), "VSMMON_DATA_DIR": str(tmp_path / "data"),
        "VSMMON_LOG_LEVEL": "INFO", "VSMMON_READS_NEED_TOKEN": "true",
    })  # fmt: skip
    log = tmp_path / "http.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "vsmmon", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            poll(lambda: _answers(base + "/healthz"), deadline_s=30, what="`vsmmon serve` to answer")
            with httpx.Client(base_url=base, timeout=10) as http:
                http.get("/api/v1/agents", params={"token": "secret-in-a-url"})
                http.get("/api/v1/agents?a=1&TOKEN=secret-upper;ticket=secret-ticket&%74oken=secret-encoded")
                ticket = http.post("/api/v1/stream-ticket", headers=AUTH).json()["ticket"]
                with http.stream("GET", "/api/v1/events", params={"ticket": ticket}) as stream:
                    assert stream.status_code == 200
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=15)
    text = log.read_text()
    assert '"GET /api/v1/agents?token=*** HTTP/1.1" 401' in text, text
    assert "GET /api/v1/events?ticket=*** HTTP/1.1" in text, text
    assert "a=1&TOKEN=***;ticket=***&%74oken=***" in text, text
    for secret in ("secret", ticket, TOKEN):
        assert secret not in text, secret


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_ticket_opens_one_stream_within_a_minute_and_nothing_else(secured: Settings, clean_services: None) -> None:
    with served(secured, reads_need_token=True) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/api/v1/events").status_code == 401
        assert http.get("/api/v1/events", params={"token": TOKEN}).status_code == 401  # a token in a URL opens nothing
        assert http.post("/api/v1/stream-ticket").status_code == 401
        answer = http.post("/api/v1/stream-ticket", headers=AUTH)
        assert answer.status_code == 200
        ticket = answer.json()["ticket"]
        assert answer.json()["expires_in_s"] == 60
        [key] = redis_of(secured).keys(names.STREAM_TICKET_KEY.format(digest="*"))
        assert ticket.encode() not in key  # kept by its digest
        assert 0 < redis_of(secured).ttl(key) <= 60
        # a ticket is no token: no other read, no write
        bearer = {"Authorization": f"Bearer {ticket}"}
        assert http.get("/api/v1/agents", params={"ticket": ticket}).status_code == 401
        assert http.get("/api/v1/agents", headers=bearer).status_code == 401
        silence = {"matchers": {"target": "w1"}, "duration_s": 60, "created_by": "x"}
        assert http.post("/api/v1/silences", json=silence, headers=bearer).status_code == 401
        with http.stream("GET", "/api/v1/events", params={"ticket": ticket}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        assert http.get("/api/v1/events", params={"ticket": ticket}).status_code == 401  # used
        with http.stream("GET", "/api/v1/events", headers=AUTH) as stream:  # a client that sends headers
            assert stream.status_code == 200


# ---------- bounds ----------


def test_event_streams_are_capped_per_client_address_and_in_all(secured: Settings, clean_services: None) -> None:
    with served(secured, http_max_streams=10) as url, ExitStack() as streams:
        one = streams.enter_context(httpx.Client(base_url=url, timeout=10))
        other = streams.enter_context(
            httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        )
        opened = [streams.enter_context(one.stream("GET", "/api/v1/events")) for _ in range(8)]
        assert [s.status_code for s in opened] == [200] * 8
        refused = one.get("/api/v1/events")
        assert refused.status_code == 429
        assert "at most 8 event streams per client address (VSMMON_HTTP_STREAMS_PER_CLIENT)" in refused.json()["detail"]
        # another address has its own 8, up to the 10 of the process
        more = [streams.enter_context(other.stream("GET", "/api/v1/events")) for _ in range(2)]
        assert [s.status_code for s in more] == [200, 200]
        full = other.get("/api/v1/events")
        assert full.status_code == 503
        assert "at most 10 event streams in all (VSMMON_HTTP_MAX_STREAMS)" in full.json()["detail"]
        opened[0].close()  # a closed stream gives its slot back

        def reopened() -> httpx.Response | None:
            response = streams.enter_context(other.stream("GET", "/api/v1/events"))
            return response if response.status_code == 200 else None

        poll(reopened, deadline_s=10, what="a closed stream's slot to be given back")


def test_a_client_that_never_finishes_its_headers_is_cut_off(secured: Settings, clean_services: None) -> None:
    with served(secured, http_header_timeout_s=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        with (
            socket.create_connection(("127.0.0.1", port)) as slow,
            socket.create_connection(("127.0.0.1", port)) as mute,
        ):
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            started = time.monotonic()
            for conn in (slow, mute):
                conn.settimeout(8)
                assert conn.recv(1024) == b""  # closed, without an answer
            assert time.monotonic() - started < 5
        assert httpx.get(url + "/healthz").status_code == 200  # a whole request within the time is served


def test_connections_beyond_the_limit_get_a_503(secured: Settings, clean_services: None) -> None:
    with served(secured, http_max_connections=16, http_max_streams=8) as url, ExitStack() as held:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(16):
            held.enter_context(socket.create_connection(("127.0.0.1", port)))
        poll(lambda: httpx.get(url + "/healthz").status_code == 503, deadline_s=10, what="a 503 past 16 connections")
        held.close()
        poll(lambda: httpx.get(url + "/healthz").status_code == 200, deadline_s=10, what="a 200 once they closed")


def test_event_streams_cannot_take_every_connection() -> None:
    with pytest.raises(ConfigError, match="VSMMON_HTTP_MAX_STREAMS: must be below HTTP_MAX_CONNECTIONS"):
        load_settings({"VSMMON_HTTP_MAX_CONNECTIONS": "100", "VSMMON_HTTP_MAX_STREAMS": "100"})


@pytest.mark.parametrize("sequence", ["9" * 5000, "\u00b2"])  # `int` refuses both: they were a 500
def test_a_last_event_id_out_of_range_is_ignored(secured: Settings, clean_services: None, sequence: str) -> None:
    """Even with this process's epoch (read from a real event), a sequence number that is not 1 to 20 ASCII
    digits replays nothing and is no 500; a good one still replays what was missed."""
    with served(secured) as url, httpx.Client(base_url=url, timeout=10) as http:
        with http.stream("GET", "/api/v1/events") as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            redis_of(secured).publish(names.HEALTH_CHANNEL, '{"at": "x"}')
            event_id = next(line for line in lines if line.startswith("id: "))[4:]
        epoch = event_id.partition("-")[0]
        header = f"{epoch}-".encode() + sequence.encode("latin-1")
        with http.stream("GET", "/api/v1/events", headers={"Last-Event-ID": header}) as stream:
            assert stream.status_code == 200
        with http.stream("GET", "/api/v1/events", headers={"Last-Event-ID": f"{epoch}-0"}) as stream:
            assert f"id: {event_id}" in [line for line, _ in zip(stream.iter_lines(), range(4), strict=False)]


# ---------- headers, hosts, docs ----------


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    answers = [
        client.get("/"),
        client.get("/static/app.js"),
        client.get("/favicon.ico"),
        client.get("/api/v1/agents"),
        client.get("/api/v1/nothing-here"),
        client.get("/openapi.json"),
        client.post("/api/v1/metrics", json={}),  # 401
        client.get("/", headers={"Host": "elsewhere.example"}),  # 400
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 200, 401, 400]
    assert answers[2].headers["content-type"] == "image/svg+xml"  # the page's icon, no 404 in every tab
    for answer in answers:
        csp = [d.strip() for d in answer.headers["content-security-policy"].split(";")]
        assert {"default-src 'self'", "frame-ancestors 'none'"} <= set(csp), (answer.url, csp)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value, (answer.url, name)


def test_the_dashboard_runs_no_inline_script_or_style() -> None:
    """What `default-src 'self'` refuses: inline scripts, style elements and style attributes."""
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page
    assert " style=" not in page
    assert re.findall(r"style=", (STATIC / "app.js").read_text()) == []  # no style attribute built in markup


def test_a_host_that_is_not_ours_is_refused(secured: Settings, clean_services: None) -> None:
    with TestClient(create_app(secured, report_self=False)) as c:
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST."):
            assert c.get("/", headers={"Host": host}).status_code == 200, host
        for host in ("rebound.attacker.example", "rebound.attacker.example:8000", "127.0.0.1.nip.io", ""):
            refused = c.get("/api/v1/agents", headers={"Host": host})
            assert refused.status_code == 400, host
            assert "VSMMON_HTTP_ALLOWED_HOSTS" in refused.json()["detail"]
        assert c.get("/", headers={"Host": "rebound.attacker.example"}).status_code == 400
        assert c.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200  # load balancers' probes
    named = secured.model_copy(update={"external_url": "https://mon.example.org/vsmmon",
                                       "http_allowed_hosts": "ops.example.net, [fd00::5]"})  # fmt: skip
    with TestClient(create_app(named, report_self=False)) as c:
        for host in ("mon.example.org", "ops.example.net:8443", "[fd00::5]:80"):
            assert c.get("/api/v1/agents", headers={"Host": host}).status_code == 200, host
        assert c.get("/api/v1/agents", headers={"Host": "testserver"}).status_code == 400
    anything = secured.model_copy(update={"http_allowed_hosts": "*"})
    with TestClient(create_app(anything, report_self=False)) as c:
        assert c.get("/", headers={"Host": "whatever.example"}).status_code == 200


def test_the_docs_are_off_by_default_and_on_come_from_this_server_only(client: TestClient, secured: Settings) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert "/api/v1/metrics" in client.get("/openapi.json").json()["paths"]
    with TestClient(create_app(secured.model_copy(update={"http_docs": True}), report_self=False)) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert "/static/docs.js" in sources
        assert all(s.startswith("/") for s in sources), sources  # this server's files only: no CDN
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", docs.text) == []
        assert c.get("/static/docs.js").status_code == 200
        assert c.get("/redoc").status_code == 404


# ---------- the token before the body ----------


def mutating_routes(client: TestClient) -> list[str]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        f"{method.upper()} {path}".replace("{agent_id}", "a1").replace("{ref}", "r1").replace("{silence_id}", "s1")
        for path, ops in paths.items()
        for method in ops
        if method not in {"get", "head"}
    ]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_a_write_with_a_wrong_token_is_refused_before_its_body_is_read(
    client: TestClient, headers: dict[str, str]
) -> None:
    routes = mutating_routes(client)
    assert "POST /api/v1/agents/a1/metrics" in routes
    bodies: list[Any] = [b"{not json", b'{"type": "x", "metrics": {"m": NaN}}', b"x" * (2 * 2**20)]
    for route in routes:
        method, path = route.split(" ", 1)
        for body in [*bodies, iter([b"{", b"chunked"])]:
            answer = client.request(method, path, content=body, headers={**headers, "Content-Type": "application/json"})
            assert answer.status_code == 401, (route, answer.status_code, answer.text[:200])
            assert answer.headers["www-authenticate"] == "Bearer"
    # with the token the body is still read and judged
    json_type = {"Content-Type": "application/json"}
    good = client.post("/api/v1/agents/a1/metrics", content=b"{not json", headers={**AUTH, **json_type})
    assert good.status_code == 422
