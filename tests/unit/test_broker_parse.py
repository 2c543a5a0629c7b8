"""The pure parts of the broker probes: message envelopes, kombu's Redis key naming, URL dispatch."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kombu.transport.redis import PRIORITY_STEPS as KOMBU_PRIORITY_STEPS
from kombu.transport.redis import Channel as KombuRedisChannel

from vsmmon.collect.broker import (
    PRIORITY_STEPS,
    SENT_AT_HEADER,
    SEPARATOR,
    AmqpQueueProbe,
    RedisQueueProbe,
    oldest_sent_at,
    priority_keys,
    queue_probe,
)
from vsmmon.errors import InvalidInput


def envelope(headers: Any) -> bytes:
    """A message as kombu's Redis transport stores it."""
    return json.dumps(
        {
            "body": "eyJwIjogMH0=",
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {"priority": 0, "body_encoding": "base64", "delivery_tag": "t"},
        }
    ).encode()


def kombu_key(name: str, priority: int, steps: list[int], sep: str) -> str:
    """The key kombu's own Redis channel code picks for a message of `priority` (the reference)."""
    channel = SimpleNamespace(priority_steps=steps, sep=sep)
    channel.priority = lambda n: KombuRedisChannel.priority(channel, n)
    key: str = KombuRedisChannel._q_for_pri(channel, name, priority)
    return key


def test_a_valid_envelope_gives_its_sent_at_header() -> None:
    assert oldest_sent_at(envelope({"vsm_sent_at": 1795720000.25, "id": "x"})) == 1795720000.25
    assert oldest_sent_at(envelope({"vsm_sent_at": 1795720000})) == 1795720000.0
    assert oldest_sent_at(envelope({"vsm_sent_at": 1.5}).decode()) == 1.5


@pytest.mark.parametrize(
    "headers",
    [{}, {"other": 1.0}, None, [], "vsm_sent_at", {"vsm_sent_at": None}, {"vsm_sent_at": [1.0]}],
)
def test_an_envelope_without_a_numeric_header_gives_none(headers: Any) -> None:
    assert oldest_sent_at(envelope(headers)) is None


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), "1795720000.0", True, pytest.param(10**400, id="1e400")]
)
def test_a_non_finite_or_non_numeric_header_gives_none(value: Any) -> None:
    # json.dumps writes NaN / Infinity literals, which json.loads reads back as floats
    assert oldest_sent_at(envelope({"vsm_sent_at": value})) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage\x80",
        b'{"headers": {"vsm_sent_at": 1.0}',
        b"[1, 2, 3]",
        b'"a string"',
        b"42",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"headers": "vsm_sent_at"}',
    ],
)
def test_malformed_input_gives_none_and_never_raises(raw: bytes) -> None:
    assert oldest_sent_at(raw) is None


def test_the_defaults_are_kombus() -> None:
    assert list(PRIORITY_STEPS) == KOMBU_PRIORITY_STEPS
    assert SEPARATOR == KombuRedisChannel.sep == "\x06\x16"


def test_the_header_read_is_the_one_the_plugin_stamps() -> None:
    from vsmmon.agent.plugin import SENT_AT_HEADER as STAMPED

    assert SENT_AT_HEADER == STAMPED


def test_priority_keys_without_a_prefix() -> None:
    assert priority_keys("vsm.collect") == [
        (0, "vsm.collect"),
        (3, "vsm.collect\x06\x163"),
        (6, "vsm.collect\x06\x166"),
        (9, "vsm.collect\x06\x169"),
    ]


def test_priority_keys_with_a_prefix_prefix_every_key() -> None:
    assert priority_keys("vsm.collect", key_prefix="tenant-a:") == [
        (0, "tenant-a:vsm.collect"),
        (3, "tenant-a:vsm.collect\x06\x163"),
        (6, "tenant-a:vsm.collect\x06\x166"),
        (9, "tenant-a:vsm.collect\x06\x169"),
    ]


@pytest.mark.parametrize(("steps", "sep"), [([0, 3, 6, 9], "\x06\x16"), (list(range(10)), ":"), ([0, 5], "|")])
def test_every_key_kombu_writes_to_is_one_the_probe_reads(steps: list[int], sep: str) -> None:
    keys = dict(priority_keys("q", priority_steps=steps, separator=sep))
    assert set(keys) == set(steps)
    for priority in range(11):
        kombu = kombu_key("q", priority, steps, sep)
        step = max(s for s in steps if s <= priority)
        assert keys[step] == kombu, (priority, kombu)


def test_the_plain_key_is_read_even_without_a_step_zero() -> None:
    assert priority_keys("q", priority_steps=[4, 1], separator=":") == [(0, "q"), (1, "q:1"), (4, "q:4")]


def test_queue_probe_picks_the_probe_by_scheme_without_connecting() -> None:
    redis_probe = queue_probe("redis://127.0.0.1:1/0")
    rediss_probe = queue_probe("rediss://127.0.0.1:1/0")
    amqp_probes = [queue_probe(f"{s}://guest:guest@127.0.0.1:1//") for s in ("amqp", "amqps", "pyamqp")]
    assert isinstance(redis_probe, RedisQueueProbe)
    assert isinstance(rediss_probe, RedisQueueProbe)
    assert all(isinstance(p, AmqpQueueProbe) for p in amqp_probes)
    for probe in [redis_probe, rediss_probe, *amqp_probes]:
        probe.close()


@pytest.mark.parametrize("url", ["sqs://key:hunter22@host/", "memory://", "http://user:hunter22@host/"])
def test_an_unsupported_scheme_is_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(InvalidInput, match="is not one of") as caught:
        queue_probe(url)
    assert "hunter22" not in str(caught.value)


def test_a_malformed_redis_url_is_refused_without_showing_the_password() -> None:
    with pytest.raises(InvalidInput, match="Port") as caught:
        RedisQueueProbe.from_url("redis://user:hunter22@host:notaport/0")
    assert "hunter22" not in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [{"priority_steps": []}, {"priority_steps": [0, -1]}, {"priority_steps": "0,3"}, {"sep": 3}],
)
def test_malformed_transport_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="transport_options"):
        RedisQueueProbe.from_url("redis://127.0.0.1:1/0", options)
