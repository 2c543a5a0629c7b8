"""The task table's arithmetic and the failures a reply carries, read as untrusted input."""

from __future__ import annotations

from vsmmon.tasks.failures import MAX_PER_REPLY, parse_failures
from vsmmon.tasks.table import increase, trend


def test_a_counter_increase_counts_a_restarts_new_value_and_needs_two_points() -> None:
    assert increase({10: 5.0, 11: 8.0, 12: 2.0, 13: 4.0}, 10, 13) == (3.0 + 2.0 + 2.0, 3)  # 8 -> 2: restarted
    assert increase({10: 5.0, 20: 9.0}, 11, 30) is None
    assert increase({}, 0, 10) is None


def test_trends_need_a_quarter_and_one_run_a_minute() -> None:
    assert trend(2.0, 1.0) == "up"
    assert trend(1.0, 2.0) == "down"
    assert trend(1.1, 1.0) == "flat"
    assert trend(0.01, 0.001) == "flat"  # ten times, but under a run a minute
    assert trend(None, 1.0) is None


def test_failures_of_a_reply_are_screened_cut_and_bounded() -> None:
    good = {"task": "app.pay", "task_id": "id-1", "exception": "app.Declined", "message": "line one\nline\x00two",
            "at": 1_764_000_000.0}  # fmt: skip
    bad = [None, 3, {**good, "at": "yesterday"}, {**good, "at": float("nan")}, {**good, "at": True},
           {**good, "task": 7}, {k: v for k, v in good.items() if k != "message"}]  # fmt: skip
    (found,) = parse_failures("celery@w1", [*bad, good])
    assert found.message == "line one line\ufffdtwo"
    assert found.worker == "celery@w1"
    assert found.at.timestamp() == 1_764_000_000.0
    long = {**good, "message": "x" * 10_000}
    assert len(parse_failures("w", [long])[0].message) == 300
    assert len(parse_failures("w", [good] * 50)) == MAX_PER_REPLY
    assert parse_failures("w", {"not": "a list"}) == []


def test_a_failures_arguments_are_kept_as_screened_text_or_not_at_all() -> None:
    good = {"task": "app.pay", "task_id": "id-1", "exception": "E", "message": "m", "at": 1_764_000_000.0}
    (plain,) = parse_failures("w", [good])
    assert plain.arguments is None
    (shown,) = parse_failures("w", [{**good, "arguments": "args=(1,)\nkwargs={'card': '\x00'}"}])
    assert shown.arguments == "args=(1,) kwargs={'card': '\ufffd'}"
    assert parse_failures("w", [{**good, "arguments": "x" * 5000}])[0].arguments == "x" * 300
    assert parse_failures("w", [{**good, "arguments": {"not": "text"}}])[0].arguments is None
