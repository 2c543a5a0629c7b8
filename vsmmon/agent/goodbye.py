"""A worker's goodbye: on a clean stop the plugin says so, so a planned scale-in does not read as an outage.

It is said as the stop begins: Celery's signal handler (SIGTERM, SIGINT, SIGQUIT: someone stops the worker
on purpose) sends `worker_shutting_down` before the worker stops answering, and a warm shutdown may then
wait minutes for its tasks; said only at `worker_shutdown`, the silence in between would read as lost. A
stop that did not come from a signal (the `shutdown` remote-control command) says it at `worker_shutdown`.

Celery's own `worker-offline` event goes out on the event exchange, which on Redis is pub/sub: only a
receiver subscribed at that very moment hears it, and the collector polls. So the plugin also leaves a
goodbye, one small JSON message on a plain queue of the fleet's broker (`names.GOODBYE_QUEUE`), which the
collector drains each cycle. A worker killed (SIGKILL, OOM) sends none, and neither does one that stops
with a non-zero exit code (an unrecoverable error): both read as lost, as they should. Whoever can write to
the broker can forge a goodbye, as they could forge any task or remote-control command: the broker is
the fleet's trust boundary (README, Security).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kombu.exceptions import ContentDisallowed, DecodeError

from vsmmon.names import GOODBYE_QUEUE

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection

log = logging.getLogger(__name__)
GOODBYE_TTL_S = 3600  # a goodbye nobody collected within the hour is of no use any more
DRAIN_LIMIT = 1000  # per cycle: a fleet stopping all at once is read over a few cycles, never unbounded


@dataclass(frozen=True, slots=True)
class Goodbye:
    hostname: str
    at: float  # the worker's clock, epoch seconds
    exitcode: int


SAY_WAIT_S = 5.0  # at `worker_shutdown`, how long a goodbye said at the stop's start may still take


class _Said:
    """The goodbye said from the signal handler, per worker hostname: sending, or sent."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.sent: set[str] = set()


_said = _Said()


def leaving(hostname: str) -> bool:
    """Whether the worker `hostname` of this process is stopping on a signal: its `vsm_metrics` reply says so, so
    a reply it still gives during a warm shutdown, after its goodbye was collected, does not read as its return."""
    return hostname in _said.threads


def on_worker_shutting_down(app: Celery, sender: Any = None, **_: Any) -> None:
    """`worker_shutting_down` handler (bind `app` first): a signal stops the worker; say goodbye now, from a
    thread, since this runs inside the signal handler and the broker may be slow."""
    hostname = str(sender)
    if not sender or hostname in _said.threads:
        return  # a second signal (Ctrl+C twice) says nothing new

    def say() -> None:
        if _try_send(lambda: app, hostname):
            _said.sent.add(hostname)

    thread = threading.Thread(target=say, name="vsmmon-goodbye")  # not a daemon: the exit waits for it
    _said.threads[hostname] = thread
    thread.start()


def on_worker_shutdown(sender: Any, **_: Any) -> None:
    """`worker_shutdown` handler: unless a goodbye was said as the stop began, a worker stopping with exit code 0
    (the `shutdown` command) says it now; one that fails (non-zero exit code) stays silent, read as lost."""
    hostname = str(getattr(sender, "hostname", ""))
    try:
        if (thread := _said.threads.get(hostname)) is not None:
            thread.join(timeout=SAY_WAIT_S)
            if hostname in _said.sent:
                return
        exitcode = getattr(sender, "exitcode", None) or 0
        if exitcode != 0 and thread is None:
            return
        _try_send(lambda: sender.app, hostname)
    finally:  # stopped: a worker started again in this process (embedded, tests) is not leaving
        _said.threads.pop(hostname, None)
        _said.sent.discard(hostname)


def _try_send(app: Callable[[], Celery], hostname: str) -> bool:
    try:
        send(app(), hostname)
    except Exception as e:  # the worker is stopping either way; without a goodbye it reads as lost
        log.warning("vsmmon: could not leave a goodbye for %s: %r", hostname or "?", e)
        return False
    return True


def send(app: Celery, hostname: str, clock: Callable[[], float] = time.time) -> None:
    """Leave the goodbye on `app`'s broker, on a connection of its own (the worker's own may be closing)."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=2, interval_start=0, interval_step=1)
        queue = conn.SimpleQueue(GOODBYE_QUEUE, serializer="json", accept=["json"])
        try:
            queue.put({"hostname": hostname, "at": clock(), "exitcode": 0}, expiration=GOODBYE_TTL_S)
        finally:
            queue.close()


def drain(conn: Connection, limit: int = DRAIN_LIMIT) -> list[Goodbye]:
    """The goodbyes waiting on `conn`'s broker, taken off the queue; malformed or pickled ones dropped, logged."""
    queue = conn.SimpleQueue(GOODBYE_QUEUE, serializer="json", accept=["json"])
    found: list[Goodbye] = []
    try:
        for _ in range(limit):
            try:
                message = queue.get_nowait()
            except queue.Empty:
                break
            try:
                found.append(parse(message.payload))
            except (ContentDisallowed, DecodeError, ValueError) as e:
                log.warning("vsmmon: dropped a goodbye that is not one: %r", e)
            finally:
                message.ack()
    finally:
        queue.close()
    return found


def parse(raw: Any) -> Goodbye:
    """A goodbye from its JSON form; ValueError naming what is wrong otherwise."""
    if not isinstance(raw, dict):
        raise ValueError(f"goodbye: expected an object, got {type(raw).__name__}")
    hostname, at = raw.get("hostname"), raw.get("at")
    if not isinstance(hostname, str) or not hostname or len(hostname) > 255 or not hostname.isprintable():
        raise ValueError("goodbye.hostname: expected a printable worker name of at most 255 characters")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError("goodbye.at: expected a finite number of seconds")
    return Goodbye(hostname, float(at), 0)
