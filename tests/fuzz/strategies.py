"""Hypothesis strategies for bad input: numbers that are not, ids that attack, bodies that are too much.

Composite values are built by plain Python from a seed that hypothesis draws (`seeded`): a structure
drawn field by field costs hypothesis ~10 ms a case on this machine, a seeded one ~1 ms, and the tier
must run over 10,000 cases in about a minute. A failing case is printed whole by the test's assertion.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")
HUGE_INTS = (10**309, -(10**309), 2**1024, -(2**1024), 10**4000)  # past the float range
EDGE_INTS = (2**53 + 1, 2**63, -(2**63) - 1, 2**64, 0, -1)  # odd, but numbers a float holds
NOT_FINITE = (float("nan"), float("inf"), float("-inf"))
SQL_LIKE = (
    "1' OR '1'='1", "x'; DROP TABLE agents;--", "a\"; DELETE FROM collections; --", "' UNION SELECT * FROM alerts --",
    "%27%20OR%201=1", "$1", "a;b", "robert'); DROP TABLE metric_samples;--", "\\x00", "a\x00b", "*", "%", "_",
)  # fmt: skip
ODD_TEXT = (
    "", " ", "\u202e\u2066evil", "\ud800", "\udfff", "😀" * 10, "ǅ", "\u0000", "\n", "../../etc/passwd", "a/b", "a?b=c",
    "x" * 121, "x" * 5000, "ünïcödé", "日本語", "null", "true", "NaN", "-1", "1e999", "{}", "[]", "\t\r", "\x7f",
)  # fmt: skip
UNICODE_POOL = "aZ09_-.:@ äöüßçñ日本語中文한국어😀🔥\u202e\u200b\u0301\ufeff\ud800\udfff'\";%$\\/<>{}[]\x00\x1f\x7f"
AGENT_KINDS = ("llm_worker", "worker", "sensor", "api")
NOT_PUSHED_KINDS = ("celery_worker", "host", "queue", "broker", "pipeline", "LLM_WORKER", "toaster", "", " api")
ID_FIRST = string.ascii_letters + string.digits
ID_REST = ID_FIRST + "_.:@-"
NAME_FIRST = string.ascii_letters + "_"
NAME_REST = string.ascii_letters + string.digits + "_.:-"


def seeded(build: Callable[[random.Random], T]) -> st.SearchStrategy[T]:
    """Values built by `build` from a random generator seeded by hypothesis."""
    return st.integers(0, 2**32 - 1).map(lambda seed: build(random.Random(seed)))


def valid_id(rng: random.Random, first: str = ID_FIRST, rest: str = ID_REST, longest: int = 120) -> str:
    size = rng.choice((0, 1, 5, 20, longest - 1))
    return rng.choice(first) + "".join(rng.choice(rest) for _ in range(size))


def valid_name(rng: random.Random) -> str:
    return valid_id(rng, NAME_FIRST, NAME_REST)


def odd(rng: random.Random) -> str:
    """Text a careless or hostile client sends: SQL, unicode (lone surrogates too), control characters."""
    pick = rng.random()
    if pick < 0.4:
        return rng.choice(SQL_LIKE + ODD_TEXT)
    if pick < 0.8:
        return "".join(rng.choice(UNICODE_POOL) for _ in range(rng.randint(1, 30)))
    return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 8)))


def number(rng: random.Random, bad: bool = False) -> float | int:
    """A number of any kind; `bad`: one no float holds (NaN, ±inf, past the float range)."""
    if bad:
        return rng.choice(NOT_FINITE + HUGE_INTS)
    return rng.choice(
        (
            rng.uniform(-1e12, 1e12), rng.randint(-(2**70), 2**70), rng.choice(EDGE_INTS), rng.choice(NOT_FINITE),
            rng.choice(HUGE_INTS), 5e-324, -0.0, 1.7976931348623157e308,
        )
    )  # fmt: skip


def wrong_type(rng: random.Random) -> Any:
    """Anything but a number: None, a boolean, text, a list, an object."""
    return rng.choice((None, True, False, odd(rng), [number(rng)], {odd(rng): number(rng)}, "12.5", []))


def any_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value (with NaN and huge integers), nested up to 4 deep."""
    pick = rng.random()
    if depth >= 4 or pick < 0.55:
        return number(rng) if pick < 0.3 else wrong_type(rng)
    if pick < 0.8:
        return [any_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {odd(rng): any_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def push_body(rng: random.Random) -> dict[str, Any]:
    """A push body that may be right, or wrong anywhere: each field valid, of a wrong type, or absent."""
    body: dict[str, Any] = {}
    if rng.random() < 0.9:
        body["type"] = rng.choice(AGENT_KINDS) if rng.random() < 0.6 else rng.choice((*NOT_PUSHED_KINDS, 7, None))
    if rng.random() < 0.9:
        names = [valid_name(rng) if rng.random() < 0.8 else odd(rng) for _ in range(rng.randint(0, 6))]
        finite_only = rng.random() < 0.5
        body["metrics"] = {n: rng.uniform(-1e12, 1e12) if finite_only else number(rng) for n in names}
        if rng.random() < 0.15:
            body["metrics"] = wrong_type(rng)
    optional: dict[str, Callable[[], Any]] = {
        "interval_s": lambda: rng.choice((number(rng), wrong_type(rng), 5.0, 0.5, 3600)),
        "host": lambda: rng.choice((odd(rng), wrong_type(rng), "gpu-3")),
        "version": lambda: rng.choice((odd(rng), wrong_type(rng), "2.1")),
        "timestamp": lambda: rng.choice((odd(rng), wrong_type(rng), timestamp(rng))),
    }
    for field, make in optional.items():
        if rng.random() < 0.25:
            body[field] = make()
    if rng.random() < 0.12:
        body[odd(rng)] = any_value(rng)
    return body


def timestamp(rng: random.Random) -> str:
    """An ISO timestamp: naive, aware, far past, future, or now."""
    now = datetime.now(UTC)
    moment = now + timedelta(seconds=rng.choice((-1e9, -3600, -5, 0, 30, 3600, 1e9)))
    text = moment.isoformat()
    return text.replace("+00:00", "") if rng.random() < 0.3 else text


valid_ids = seeded(valid_id)
valid_metric_names = seeded(valid_name)
odd_text = seeded(odd)
ids = seeded(lambda rng: valid_id(rng) if rng.random() < 0.4 else odd(rng))
bad_numbers = st.sampled_from(NOT_FINITE + HUGE_INTS)
numbers = seeded(number)
wrong_type_values = seeded(wrong_type)
json_values = seeded(any_value)
finite_metrics = seeded(lambda rng: {valid_name(rng): rng.uniform(-1e12, 1e12) for _ in range(rng.randint(0, 5))})


def push_bodies() -> st.SearchStrategy[dict[str, Any]]:
    return seeded(push_body)


def nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    """A JSON text nested `depth` deep."""
    return (opener * depth + closer * depth).encode()


def nested_objects(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def dumps(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity as bare tokens, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()
