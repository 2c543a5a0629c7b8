"""A worker's goodbye on the wire: only a well-formed JSON object is one."""

import pytest

from vsmmon.agent.goodbye import Goodbye, on_worker_shutdown, parse


def test_a_goodbye_parses_and_anything_else_is_refused_naming_the_field() -> None:
    assert parse({"hostname": "w1@h", "at": 1.5, "exitcode": 0}) == Goodbye("w1@h", 1.5, 0)
    for raw, field in [
        ([], "expected an object"), ({"at": 1}, "goodbye.hostname"), ({"hostname": "w\x00", "at": 1}, "hostname"),
        ({"hostname": "x" * 256, "at": 1}, "hostname"), ({"hostname": "w", "at": "now"}, "goodbye.at"),
        ({"hostname": "w", "at": float("nan")}, "goodbye.at"), ({"hostname": "w", "at": True}, "goodbye.at"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=field):
            parse(raw)


class Stopping:
    hostname = "w1@h"

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode, self.asked = exitcode, 0

    @property
    def app(self) -> object:
        self.asked += 1  # the goodbye is sent through the worker's app; this one has no broker
        raise ConnectionError("no broker in this test")


def test_only_a_worker_stopping_cleanly_says_goodbye_and_a_failed_goodbye_never_raises() -> None:
    crashed, clean = Stopping(1), Stopping(0)
    on_worker_shutdown(crashed)
    on_worker_shutdown(clean)  # the send fails: logged, the worker's shutdown goes on
    assert (crashed.asked, clean.asked) == (0, 1)


def test_a_signal_says_goodbye_as_the_stop_begins_and_the_shutdown_does_not_say_it_again() -> None:
    from celery import Celery

    from vsmmon.agent.goodbye import drain, leaving, on_worker_shutting_down

    app = Celery("goodbye-test", broker="memory://", set_as_current=False)

    class Worker:
        hostname = "w9@h"
        exitcode = 1  # SIGINT's warm shutdown exits 1: still a stop on purpose

        def __init__(self) -> None:
            self.app = app

    assert not leaving("w9@h")
    on_worker_shutting_down(app, sender="w9@h", sig="SIGINT", how="Warm", exitcode=1)
    assert leaving("w9@h")  # its `vsm_metrics` replies say it is stopping from now on
    assert not leaving("w8@h")
    on_worker_shutting_down(app, sender="w9@h", sig="SIGINT", how="Cold", exitcode=1)  # Ctrl+C twice
    on_worker_shutdown(Worker())  # waits for the goodbye said at the start; does not send another
    with app.connection_for_read() as conn:
        said = drain(conn)
    assert [g.hostname for g in said] == ["w9@h"]


def test_a_worker_replies_stopping_from_its_stop_signal_until_it_has_stopped() -> None:
    from types import SimpleNamespace

    from celery import Celery

    from vsmmon.agent.goodbye import on_worker_shutting_down
    from vsmmon.agent.plugin import vsm_metrics

    app = Celery("stopping-test", broker="memory://", set_as_current=False)
    pool = SimpleNamespace(info={"processes": []}, num_processes=2)
    consumer = SimpleNamespace(hostname="w7@h", pool=pool, controller=None, task_consumer=None, app=app)
    state = SimpleNamespace(consumer=consumer)
    assert vsm_metrics(state)["stopping"] is False
    on_worker_shutting_down(app, sender="w7@h", sig="SIGTERM", how="Warm", exitcode=0)
    assert vsm_metrics(state)["stopping"] is True
    on_worker_shutdown(SimpleNamespace(hostname="w7@h", exitcode=0, app=app))
    assert vsm_metrics(state)["stopping"] is False  # the same hostname started again in this process
