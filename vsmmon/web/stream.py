"""The dashboard's event stream, `GET /api/v1/events`, the tickets that open it, and its bounds.

EventSource cannot send headers, and a token in a URL ends up in access logs, proxies' logs and the
browser's history. So when reads need the token (VSMMON_READS_NEED_TOKEN) the page first asks
`POST /api/v1/stream-ticket`, with the bearer token in its Authorization header, for a ticket, and
opens `GET /api/v1/events?ticket=...`. A ticket is 32 random bytes, valid for 60 s and for one event
stream: opening a stream deletes it, and no other route takes it (it reads nothing else, writes nothing).
It is kept in Redis under its SHA-256, so every HTTP process behind a load balancer knows it. Clients
that can send headers may open the stream with the bearer token in Authorization instead.

Each process holds at most HTTP_STREAMS_PER_CLIENT streams per client address (429 beyond) and
HTTP_MAX_STREAMS in all (503 beyond), below HTTP_MAX_CONNECTIONS, so streams cannot take every connection.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from vsmmon import names
from vsmmon.config import Settings
from vsmmon.web.auth import refusal, require_token
from vsmmon.web.events import EventHub, Subscriber
from vsmmon.web.resources import Resources, resources

TICKET_TTL_S = 60
TICKET_MAX_CHARS = 128
LISTEN_TIMEOUT_S = 5.0

router = APIRouter(prefix="/api/v1", tags=["dashboard"])
Res = Annotated[Resources, Depends(resources)]


@dataclass
class StreamSlots:
    """The open event streams of this process, per client address; used from the event loop only."""

    per_client: int
    total: int
    _open: Counter[str] = field(default_factory=Counter)

    @property
    def opened(self) -> int:
        return self._open.total()

    def take(self, client: str) -> HTTPException | None:
        """Count one more stream of `client`; the 429 or 503 to answer instead when a cap is reached."""
        if self._open[client] >= self.per_client:
            detail = f"at most {self.per_client} event streams per client address (VSMMON_HTTP_STREAMS_PER_CLIENT)"
            return HTTPException(429, detail, headers={"Retry-After": "10"})
        if self.opened >= self.total:
            detail = f"at most {self.total} event streams in all (VSMMON_HTTP_MAX_STREAMS)"
            return HTTPException(503, detail, headers={"Retry-After": "10"})
        self._open[client] += 1
        return None

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


class EventStream(StreamingResponse):
    """The SSE response: hands its subscription and its slot back however it ends, once."""

    def __init__(self, hub: EventHub, sub: Subscriber, release: Callable[[], None]) -> None:
        super().__init__(
            hub.stream(sub),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._hub, self._sub, self._release = hub, sub, release
        self._ended = False

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._hub.unsubscribe(self._sub)
            self._release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.end()


def hub_of(request: Request, res: Resources) -> EventHub:
    hub: EventHub | None = getattr(request.app.state, "events", None)
    if hub is None:
        hub = request.app.state.events = EventHub(res.settings.require("redis_url"))
    return hub


def slots_of(request: Request, settings: Settings) -> StreamSlots:
    slots: StreamSlots | None = getattr(request.app.state, "stream_slots", None)
    if slots is None:
        slots = StreamSlots(settings.http_streams_per_client, settings.http_max_streams)
        request.app.state.stream_slots = slots
    return slots


def _ticket_key(ticket: str) -> str:
    return names.STREAM_TICKET_KEY.format(digest=hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest())


@router.post("/stream-ticket", dependencies=[Depends(require_token)])
def stream_ticket(res: Res) -> dict[str, str | int]:
    """A ticket that opens one event stream within 60 s, as `GET /api/v1/events?ticket=`, and nothing else."""
    ticket = secrets.token_urlsafe(32)
    try:
        res.redis.set(_ticket_key(ticket), "events", ex=TICKET_TTL_S)
    except redis.RedisError as e:
        raise HTTPException(503, f"cannot issue a ticket: Redis is unavailable ({type(e).__name__})") from e
    return {"ticket": ticket, "expires_in_s": TICKET_TTL_S}


def redeem(res: Resources, ticket: str) -> bool:
    """Whether `ticket` was issued and has neither expired nor been used; it is used from now on."""
    if not ticket or len(ticket) > TICKET_MAX_CHARS:
        return False
    try:
        return bool(res.redis.delete(_ticket_key(ticket)))
    except redis.RedisError:
        return False


async def _may_read(request: Request, res: Resources, ticket: str | None) -> bool:
    if not res.settings.reads_need_token:
        return True
    authorization = request.headers.get("authorization")
    if authorization is not None and refusal(res.settings, authorization) is None:
        return True
    return ticket is not None and await run_in_threadpool(redeem, res, ticket)


@router.get("/events", response_class=StreamingResponse)
async def events(
    request: Request,
    res: Res,
    ticket: Annotated[str | None, Query(description="from POST /api/v1/stream-ticket, when reads need a token")] = None,
) -> StreamingResponse:
    """Server-sent events: `health` (each assessment), `alert`, `control_action`, `policy_decision`.

    With VSMMON_READS_NEED_TOKEN: a `?ticket=` (single use, 60 s) or the bearer token in Authorization.
    """
    if not await _may_read(request, res, ticket):
        raise HTTPException(
            401,
            "an event stream needs a ticket (POST /api/v1/stream-ticket) or the bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    hub = hub_of(request, res)
    client = request.client.host if request.client else "?"
    slots = slots_of(request, res.settings)
    refused = slots.take(client)
    if refused is not None:
        raise refused
    stream = EventStream(hub, hub.subscribe(request.headers.get("last-event-id")), lambda: slots.give_back(client))
    try:
        if not await hub.listening(LISTEN_TIMEOUT_S):
            raise HTTPException(503, "the event stream cannot subscribe to Redis")
    except BaseException:  # also a client gone while waiting (cancelled): the slot must come back
        stream.end()
        raise
    return stream
