"""How `vsmmon serve` runs the app under uvicorn: bounded connections and waits, an access log without secrets.

- At most HTTP_MAX_CONNECTIONS connections are served (uvicorn's `limit_concurrency`: a request beyond
  is a 503); dashboard event streams are held below that (`stream`).
- An idle keep-alive connection is closed after `KEEP_ALIVE_S`, and one whose request headers are not
  all in within HTTP_HEADER_TIMEOUT_S (uvicorn has no such timeout: a client sending a header line now
  and then held its connection forever) by `HeaderTimeoutProtocol`.
- The access log shows `token=***` and `ticket=***` for those query parameters (`RedactQuery`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from vsmmon.config import Settings

KEEP_ALIVE_S = 5
GRACEFUL_SHUTDOWN_S = 3  # open dashboard event streams would otherwise hold shutdown forever
SECRET_PARAMETERS = frozenset({"token", "ticket", "access_token", "api_token"})
_SEPARATORS = re.compile(r"([&;])")


def redact_query(target: str) -> str:
    """A request target with the value of every secret query parameter replaced by `***`."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in _SEPARATORS.split(query):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=***" if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS else part)
    return path + mark + "".join(parts)


class RedactQuery(logging.Filter):
    """On uvicorn's access logger: the request target of each line without its secret query values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact_query(record.msg)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with `RedactQuery` on its access logger."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQuery}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query"]
    return config


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not all in within a deadline."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's headers are in: it runs, or the connection ends
            self._stop_waiting()
        elif self._header_deadline is None:  # the first bytes of the next request on a kept-alive connection
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol(header_timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """`HeaderTimeoutProtocol` with its deadline set (uvicorn builds protocols from a class)."""

    class Bounded(HeaderTimeoutProtocol):
        pass

    Bounded.header_timeout_s = header_timeout_s
    return Bounded


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration of `vsmmon serve` for `app`."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        http=protocol(settings.http_header_timeout_s),
        log_level=settings.log_level.lower(),
        log_config=log_config(),
        limit_concurrency=settings.http_max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
