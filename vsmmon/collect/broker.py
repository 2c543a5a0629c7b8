"""Broker queue probes: ready messages, consumers and oldest-message age of named queues.

Redis (kombu's layout): a queue is a list per priority step, `name` for step 0 and `name<sep><step>`
for the others, all under the transport's `global_keyprefix`; kombu LPUSHes and BRPOPs, so the oldest
message of a list is at index -1. A queue nobody consumes is just keys, and is counted like any other.
AMQP: a passive `queue.declare` answers the ready-message and consumer counts; ages are unknown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import redis
from kombu import Connection
from kombu.exceptions import KombuError
from redis.backoff import NoBackoff
from redis.retry import Retry

from vsmmon.errors import InvalidInput
from vsmmon.names import SENT_AT_HEADER
from vsmmon.redact import redact_url

TIMEOUT_S = 2.0
"""Connect and socket timeout of every probe: a broker that hangs costs at most this per round trip."""
PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
"""kombu's default Redis `priority_steps`."""
SEPARATOR = "\x06\x16"
"""kombu's default Redis `sep` between a queue name and its priority step."""
"""Message header vsmmon's plugin stamps at publish: epoch seconds."""
REDIS_SCHEMES = frozenset({"redis", "rediss"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What a broker says about one queue at one moment."""

    name: str
    messages: int
    consumers: int | None
    oldest_age_s: float | None
    by_priority: Mapping[int, int] = field(default_factory=dict)


class QueueProbe(Protocol):
    """Reads the state of named queues from one broker."""

    def read(self, queues: Sequence[str], now_epoch_s: float) -> tuple[list[QueueStats], dict[str, str]]:
        """Stats of each queue that could be read, and an error per queue that could not; never raises."""
        ...

    def server(self) -> tuple[dict[str, float], dict[str, str]]:
        """The broker's own figures (connections, memory, throughput); empty where it does not tell."""
        ...

    @property
    def address(self) -> str:
        """Where the broker is, without credentials: names its report."""
        ...

    def close(self) -> None:
        """Release the broker connection."""
        ...


def queue_probe(broker_url: str, transport_options: Mapping[str, Any] | None = None) -> QueueProbe:
    """The probe for `broker_url`'s scheme (redis/rediss or amqp/amqps/pyamqp).

    Raises:
        InvalidInput: the scheme is not supported or the URL is malformed.
    """
    scheme = urlsplit(broker_url).scheme.lower()
    if scheme in REDIS_SCHEMES:
        return RedisQueueProbe.from_url(broker_url, transport_options)
    if scheme in AMQP_SCHEMES:
        return AmqpQueueProbe.from_url(broker_url)
    raise InvalidInput(
        "broker_url",
        f"{redact_url(broker_url)}: scheme {scheme!r} is not one of {sorted(REDIS_SCHEMES | AMQP_SCHEMES)}",
    )


def priority_keys(
    name: str,
    key_prefix: str = "",
    priority_steps: Iterable[int] = PRIORITY_STEPS,
    separator: str = SEPARATOR,
) -> list[tuple[int, str]]:
    """The Redis lists kombu keeps queue `name` in, as (priority step, key); the plain key is step 0."""
    keys = {0: f"{key_prefix}{name}"}
    for step in sorted(set(priority_steps)):
        keys.setdefault(step, f"{key_prefix}{name}{separator}{step}")
    return list(keys.items())


def oldest_sent_at(raw_message: bytes | str) -> float | None:
    """The finite `vsm_sent_at` header of a kombu Redis message envelope, else None (never raises)."""
    try:
        envelope = json.loads(raw_message)
    except (TypeError, ValueError, RecursionError):
        return None
    headers = envelope.get("headers") if isinstance(envelope, dict) else None
    value = headers.get(SENT_AT_HEADER) if isinstance(headers, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        sent_at = float(value)
    except OverflowError:
        return None
    return sent_at if math.isfinite(sent_at) else None


def _scrub(text: str, password: str | None) -> str:
    """`text` with URL passwords and any literal `password` replaced by `***`."""
    text = redact_url(text)
    for secret in {password, unquote(password)} if password else ():
        text = text.replace(secret, "***")
    return text


def _describe(error: BaseException, password: str | None) -> str:
    """`error` as one readable line, scrubbed of passwords."""
    return _scrub(f"{type(error).__name__}: {error}", password)


def _unreachable(
    names: Iterable[str], error: BaseException, password: str | None, what: str = "broker unreachable"
) -> dict[str, str]:
    """The same error, `what: error`, for every queue in `names`."""
    return dict.fromkeys(names, f"{what}: {_describe(error, password)}")


_REDIS_INFO = {
    "connected_clients": "connected_clients",
    "blocked_clients": "blocked_clients",
    "used_memory_bytes": "used_memory",
    "ops_per_s": "instantaneous_ops_per_sec",
    "rejected_connections_total": "rejected_connections",
    "evicted_keys_total": "evicted_keys",
    "uptime_s": "uptime_in_seconds",
}


class RedisQueueProbe:
    """Queue lengths per priority step and oldest-message ages from kombu's Redis lists, in one round trip."""

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str = "",
        priority_steps: Sequence[int] = PRIORITY_STEPS,
        separator: str = SEPARATOR,
        *,
        password: str | None = None,
    ) -> None:
        self._client = client
        self._key_prefix = key_prefix
        self._steps = tuple(priority_steps)
        self._separator = separator
        self._password = password

    @classmethod
    def from_url(cls, url: str, transport_options: Mapping[str, Any] | None = None) -> RedisQueueProbe:
        """A probe on its own client, honouring kombu's `global_keyprefix`, `priority_steps` and `sep`.

        Raises:
            InvalidInput: the URL or a transport option is malformed.
        """
        options = transport_options or {}
        try:
            # one attempt per command: redis-py's default retries would multiply the time bound
            client = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, retry=Retry(NoBackoff(), 0)
            )
        except ValueError as e:
            raise InvalidInput("broker_url", f"{redact_url(url)}: {e}") from e
        return cls(
            client,
            key_prefix=_str_option(options, "global_keyprefix", ""),
            priority_steps=_steps_option(options),
            separator=_str_option(options, "sep", SEPARATOR),
            password=urlsplit(url).password,
        )

    def read(self, queues: Sequence[str], now_epoch_s: float) -> tuple[list[QueueStats], dict[str, str]]:
        """LLEN and LINDEX -1 of every list of every queue in one pipeline; never raises."""
        plan = {name: priority_keys(name, self._key_prefix, self._steps, self._separator) for name in queues}
        try:
            replies = self._round_trip([key for keys in plan.values() for _, key in keys])
        except (redis.RedisError, OSError) as e:
            return [], _unreachable(plan, e, self._password)
        stats: list[QueueStats] = []
        errors: dict[str, str] = {}
        offset = 0
        for name, keys in plan.items():
            mine = replies[offset : offset + 2 * len(keys)]
            offset += len(mine)
            try:
                stats.append(_redis_stats(name, [step for step, _ in keys], mine, now_epoch_s))
            except _ReplyError as e:
                errors[name] = _scrub(str(e), self._password)
        return stats, errors

    def server(self) -> tuple[dict[str, float], dict[str, str]]:
        """Redis INFO: clients, memory, operations and refusals; never raises."""
        try:
            info = self._client.info()
        except (redis.RedisError, OSError) as e:
            return {}, {"broker": f"broker unreachable: {_describe(e, self._password)}"}
        figures = {name: info.get(key) for name, key in _REDIS_INFO.items()}
        return {name: float(v) for name, v in figures.items() if isinstance(v, int | float)}, {}

    def _round_trip(self, keys: Sequence[str]) -> list[Any]:
        """LLEN and LINDEX -1 of each key, in order, with error replies in place of values."""
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
                pipe.lindex(key, -1)
            return pipe.execute(raise_on_error=False)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    @property
    def address(self) -> str:
        kwargs = self._client.connection_pool.connection_kwargs
        return f"redis:{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class _ReplyError(Exception):
    """Redis answered one command of a queue with an error (a key of the wrong type, say)."""


def _redis_stats(name: str, steps: Sequence[int], replies: Sequence[Any], now_epoch_s: float) -> QueueStats:
    """Fold one queue's (LLEN, LINDEX -1) reply pairs, one per priority step, into its stats."""
    by_priority: dict[int, int] = {}
    sent_ats: list[float] = []
    for step, length, oldest in zip(steps, replies[0::2], replies[1::2], strict=True):
        for reply in (length, oldest):
            if isinstance(reply, Exception):
                raise _ReplyError(f"redis refused to read queue {name!r} priority {step}: {reply}")
        if length:
            by_priority[step] = int(length)
            sent_at = oldest_sent_at(oldest) if isinstance(oldest, bytes | str) else None
            if sent_at is not None:
                sent_ats.append(sent_at)
    age_s = max(0.0, now_epoch_s - min(sent_ats)) if sent_ats else None
    return QueueStats(name, sum(by_priority.values()), None, age_s, by_priority)


def _str_option(options: Mapping[str, Any], name: str, default: str) -> str:
    """A string transport option, or `default` when it is absent."""
    value = options.get(name, default)
    if not isinstance(value, str):
        raise InvalidInput(f"transport_options.{name}", f"expected a string, got {value!r}")
    return value


def _steps_option(options: Mapping[str, Any]) -> tuple[int, ...]:
    """The `priority_steps` transport option: a non-empty sequence of non-negative integers."""
    value = options.get("priority_steps", PRIORITY_STEPS)
    steps = tuple(value) if isinstance(value, list | tuple) else ()
    if not steps or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
        raise InvalidInput("transport_options.priority_steps", f"expected non-negative integers, got {value!r}")
    return steps


class AmqpQueueProbe:
    """Ready-message and consumer counts from passive `queue.declare`s on one kept AMQP connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._channel: Any = None
        password = connection.password
        self._password = password if isinstance(password, str) else None
        self._connection_errors: tuple[type[BaseException], ...] = (
            *connection.connection_errors,
            KombuError,
            OSError,
        )
        self._channel_errors: tuple[type[BaseException], ...] = tuple(connection.channel_errors)

    @classmethod
    def from_url(cls, url: str) -> AmqpQueueProbe:
        """A probe on its own connection (not opened until the first `read`).

        Raises:
            InvalidInput: the URL is malformed.
        """
        timeouts = {"read_timeout": TIMEOUT_S, "write_timeout": TIMEOUT_S}
        try:
            connection = Connection(url, connect_timeout=TIMEOUT_S, heartbeat=0, transport_options=timeouts)
        except (ValueError, KombuError) as e:
            raise InvalidInput("broker_url", f"{redact_url(url)}: {e}") from e
        return cls(connection)

    def read(self, queues: Sequence[str], now_epoch_s: float) -> tuple[list[QueueStats], dict[str, str]]:
        """One passive declare per queue; a missing queue is the error "not declared"; never raises."""
        names = list(dict.fromkeys(queues))
        kept = bool(self._connection.connected)
        stats, errors, broken_at = self._declare_all(names)
        if kept and broken_at == 0:
            # the broker dropped the kept connection since the last read (a restart, say): one fresh try
            stats, errors, _ = self._declare_all(names)
        return stats, errors

    def server(self) -> tuple[dict[str, float], dict[str, str]]:
        """AMQP tells no server figures without the management plugin: nothing, and no error."""
        return {}, {}

    @property
    def address(self) -> str:
        return f"amqp:{self._connection.hostname}:{self._connection.port}{self._connection.virtual_host}"

    def close(self) -> None:
        """Close the channel and the connection."""
        self._channel = None
        try:
            self._connection.release()
        except (*self._connection_errors, *self._channel_errors):
            self._connection.collect()

    def _open_channel(self) -> Any:
        """The kept channel, connecting (one attempt, no retry) and opening it when needed."""
        if self._channel is None:
            self._connection.ensure_connection(max_retries=0)
            self._channel = self._connection.channel()
        return self._channel

    def _declare_all(self, names: list[str]) -> tuple[list[QueueStats], dict[str, str], int | None]:
        """Stats and errors of `names`, and the index of the queue at which the connection broke."""
        stats: list[QueueStats] = []
        errors: dict[str, str] = {}
        for index, name in enumerate(names):
            try:
                stats.append(self._declare(name))
            except self._connection_errors as e:
                self._discard_connection()
                errors.update(_unreachable(names[index:], e, self._password))
                return stats, errors, index
            except self._channel_errors as e:
                if self._channel is None:  # refused at login or channel open (bad credentials, say)
                    self._discard_connection()
                    errors.update(_unreachable(names[index:], e, self._password, "broker refused the connection"))
                    return stats, errors, index
                self._channel = None  # the broker closed the channel: the next queue gets a fresh one
                errors[name] = _declare_error(e, self._password)
        return stats, errors, None

    def _declare(self, name: str) -> QueueStats:
        """Stats of one queue from a passive declare."""
        ok = self._open_channel().queue_declare(queue=name, passive=True)
        return QueueStats(name, int(ok.message_count), int(ok.consumer_count), None, {})

    def _discard_connection(self) -> None:
        """Forget a broken connection without network I/O; the next `read` reconnects."""
        self._channel = None
        self._connection.collect()


def _declare_error(error: BaseException, password: str | None) -> str:
    """The error entry of a refused passive declare: "not declared" for a 404."""
    if getattr(error, "code", None) == 404:
        return "not declared"
    return f"broker refused the declare: {_describe(error, password)}"
