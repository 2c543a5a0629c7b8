"""Server-sent events for the dashboard: one Redis pub/sub subscription per process, fanned out to every browser.

The hub subscribes when the first browser connects and keeps the last `replay` events, so a browser that
reconnects with `Last-Event-ID` (EventSource does it by itself) gets what it missed. A browser that falls
`queue_size` events behind is dropped rather than buffered without bound; it reconnects and catches up
from the replay buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis
import redis.asyncio as aioredis

from vsmmon import names

log = logging.getLogger(__name__)

ALERT_EVENT_TYPES = frozenset({"alert", "control_action", "policy_decision"})
HEARTBEAT_S = 15.0
RETRY_MS = 2000
MAX_ID_DIGITS = 20  # a `Last-Event-ID` with a longer sequence number is none of ours: nothing is replayed


@dataclass(frozen=True, slots=True)
class Event:
    """One message as the browser sees it: an id to resume from, an event name, a JSON body."""

    id: str
    name: str
    data: str

    def encode(self) -> bytes:
        lines = "".join(f"data: {line}\n" for line in self.data.splitlines() or [""])
        return f"id: {self.id}\nevent: {self.name}\n{lines}\n".encode()


def event_name(channel: str, data: str) -> str:
    """`health` for assessments; the message's own `type` for the alert channel (`alert` when it has none)."""
    if channel != names.ALERTS_CHANNEL:
        return "health"
    try:
        kind = json.loads(data).get("type")
    except (ValueError, AttributeError):
        return "alert"
    return kind if kind in ALERT_EVENT_TYPES else "alert"


@dataclass(eq=False)
class Subscriber:
    """One browser's queue; `None` in it ends the stream (dropped or shutting down)."""

    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    dropped: bool = False


class EventHub:
    """Fans the messages of one Redis subscription out to any number of browsers of this process."""

    def __init__(
        self,
        url: str,
        channels: tuple[str, ...] = (names.HEALTH_CHANNEL, names.ALERTS_CHANNEL),
        *,
        queue_size: int = 256,
        replay: int = 100,
    ) -> None:
        self.url = url
        self.channels = channels
        self.queue_size = queue_size
        self._epoch = secrets.token_hex(4)  # ids from another process (or an earlier run) replay nothing
        self._sequence = 0
        self._recent: deque[Event] = deque(maxlen=replay)
        self._subscribers: set[Subscriber] = set()
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self, last_event_id: str | None = None) -> Subscriber:
        """A new browser: start listening if nobody was, queue what it missed since `last_event_id`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="vsmmon-events")
        sub = Subscriber(asyncio.Queue(maxsize=self.queue_size))
        for event in self._missed(last_event_id):
            self._offer(sub, event)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    async def listening(self, timeout_s: float) -> bool:
        """Wait until the Redis subscription is active (messages published from then on are delivered)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout_s)
        return self._listening.is_set()

    async def stream(self, sub: Subscriber, heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[bytes]:
        """The SSE body: a retry hint, then events as they come, a comment line when idle."""
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if event is None:
                    return
                yield event.encode()
        finally:
            self.unsubscribe(sub)

    async def close(self) -> None:
        """Stop listening and end every stream."""
        for sub in list(self._subscribers):
            self._end(sub)
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish(self, channel: str, data: str) -> Event:
        """Hand one message to every browser (what the Redis listener does with each message)."""
        self._sequence += 1
        event = Event(f"{self._epoch}-{self._sequence}", event_name(channel, data), data)
        self._recent.append(event)
        for sub in list(self._subscribers):
            self._offer(sub, event)
        return event

    def _missed(self, last_event_id: str | None) -> list[Event]:
        if not last_event_id:
            return []
        epoch, _, number = last_event_id.partition("-")
        # a header of a client: ASCII digits only (`int` refuses '²'), and few (`int` refuses 5,000 of them)
        if epoch != self._epoch or not (number.isascii() and number.isdigit()) or len(number) > MAX_ID_DIGITS:
            return []
        return [e for e in self._recent if int(e.id.partition("-")[2]) > int(number)]

    def _offer(self, sub: Subscriber, event: Event) -> None:
        if sub.dropped:
            return
        try:
            sub.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("dashboard client fell %d events behind; dropped (it reconnects)", self.queue_size)
            self._subscribers.discard(sub)
            self._end(sub)

    @staticmethod
    def _end(sub: Subscriber) -> None:
        sub.dropped = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    async def _listen(self) -> None:
        """Subscribe and relay; on a Redis error, resubscribe after a pause (streams stay open meanwhile)."""
        pause_s = 0.5
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*self.channels)
                confirmed = 0
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":  # the server confirmed: from now on nothing is missed
                        confirmed += 1
                        if confirmed == len(self.channels):
                            self._listening.set()
                            pause_s = 0.5
                    elif message["type"] == "message":
                        channel, data = message["channel"], message["data"]
                        self.publish(channel.decode(), data.decode() if isinstance(data, bytes) else str(data))
            except (redis.RedisError, OSError) as e:
                log.warning("dashboard events: Redis subscription lost (%s); retrying in %.1f s", e, pause_s)
            finally:
                self._listening.clear()
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
                await client.aclose()
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, 10.0)
