"""ASGI middleware guarding every request: security headers, a trusted-host check, the token before the body.

- `SecurityHeaders` puts a Content-Security-Policy (`default-src 'self'`: the page runs only its own
  files, no inline script or style, no CDN; `frame-ancestors 'none'`: no other site frames it),
  `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer` on every
  response, the rejections of the middleware inside it included.
- `TrustedHosts` answers 400 to a request whose `Host` is not a name the service is known by (loopback
  names, HTTP_HOST, EXTERNAL_URL's host, HTTP_ALLOWED_HOSTS): a page of another site whose name was
  rebound to 127.0.0.1 (DNS rebinding) reads nothing. `/healthz` and `/readyz` answer any Host, for load
  balancers' probes that name the service by its address.
- `TokenFirst` checks the bearer token of every write that comes with a body (POST, PUT, PATCH, DELETE
  with a Content-Length or a chunked body) before anything reads the body, so a wrong token is a 401
  whatever the body is. Every route that takes a body is a write and needs the token; the writes without
  a body have it checked by their `auth.require_token` dependency, as all writes do.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vsmmon.config import Settings
from vsmmon.web.auth import refusal

CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityHeaders:
    """ASGI middleware adding `SECURITY_HEADERS` to every HTTP response (replacing any of the same name)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = {name for name, _ in SECURITY_HEADERS}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in ours]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_name(value: str) -> str:
    """A `Host` header's name: lower case, without its port or a trailing dot (`[::1]:8000` -> `[::1]`)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[: end + 1] if end > 0 else value
    else:
        name = value.rpartition(":")[0] if value.count(":") == 1 else value
    return name.rstrip(".")


def _as_host(configured: str) -> str:
    name = host_name(configured)
    return f"[{name}]" if ":" in name and not name.startswith("[") else name  # a bare IPv6 address


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The Host names the service answers; None when it answers any (`VSMMON_HTTP_ALLOWED_HOSTS=*`)."""
    if "*" in settings.allowed_hosts:
        return None
    configured = (settings.http_host, urlsplit(settings.external_url).hostname or "", *settings.allowed_hosts)
    return LOOPBACK_HOSTS | {_as_host(h) for h in configured if h.strip()}


class TrustedHosts:
    """ASGI middleware answering 400 to a request for a Host not in `allowed` (None: any Host)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.allowed is not None
            and scope["path"] not in ANY_HOST_PATHS
            and host_name(Headers(scope=scope).get("host", "")) not in self.allowed
        ):
            detail = "this Host is not a name of this service: add it to VSMMON_HTTP_ALLOWED_HOSTS"
            await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_body(headers: Headers) -> bool:
    """Whether a request says it sends a body: a chunked one, or a Content-Length other than 0."""
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in {"", "0"}


class TokenFirst:
    """ASGI middleware answering a write that comes with a body and without the token with its 401, unread.

    FastAPI reads and parses a JSON body before it runs a route's dependencies: without this, a wrong token
    with a malformed body got a 422, and one with a large body a 413, each telling something about the route.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            refused = refusal(self.settings, headers.get("authorization", "")) if _has_body(headers) else None
            if refused is not None:
                response = JSONResponse({"detail": refused.detail}, refused.status_code, headers=refused.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
