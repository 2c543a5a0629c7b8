"""The worker-side plugin: inspect commands that answer from inside each Celery worker.

`vsm_metrics` replies with psutil readings of the worker's main process and its pool children,
concurrency, active and reserved counts, per-task-name counters with runtime percentiles, queue wait
(publication to start), the queues it consumes, and its software version and configuration hash.
Every probe is bounded and an error becomes a field of the reply: nothing raises inside the worker.

Counting happens in the worker's main process, whatever the pool: Celery builds a request class per
task from that task's `Request`; ours hooks the result callbacks, which the pool calls in the main
process (task signals would fire in prefork children, out of the inspect command's reach). When the
worker starts (`worker_init`), every registered task's request class is extended with the counting
hooks, whatever the task's class (`base=`, `app.Task` subclasses, `shared_task`): a class of the user's
own is subclassed, never replaced, so its hooks still run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import celery
from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]
from celery import Celery
from celery.exceptions import Ignore, Reject, Retry, Terminated
from celery.signals import before_task_publish, worker_init, worker_shutdown, worker_shutting_down
from celery.utils.imports import symbol_by_name
from celery.worker import state as worker_state
from celery.worker.control import inspect_command
from celery.worker.request import Request

from vsmmon import __version__
from vsmmon.agent import goodbye
from vsmmon.agent.counters import MAX_MESSAGE, Failure, TaskCounters
from vsmmon.agent.host import HostProbe
from vsmmon.agent.hostlock import HostReporterLock
from vsmmon.agent.process import ProcessProbe, runtime_metrics
from vsmmon.names import CANARY_TASK, PROBE_TASKS, SENT_AT_HEADER

log = logging.getLogger(__name__)
_NOT_FAILURES = (Retry, Reject, Ignore, Terminated)
_NUMBERS = (float, int)
FAILURES_SPAN_S = 120.0
"""A reply carries the failures of the last two minutes (at most `counters.MAX_FAILURES`): enough for a collector
that missed a cycle or two (it keeps each once, by task id), and nothing at all from a worker that is not failing."""


class _PluginState:
    """What one worker process keeps between `vsm_metrics` calls."""

    def __init__(self) -> None:
        self.counters = TaskCounters(not_load=PROBE_TASKS)  # the observer's probes wait on broadcasts
        self.started = time.monotonic()
        self.version = f"vsmmon {__version__}; celery {celery.__version__}"
        self.app: Celery | None = None
        self.failure_arguments = False  # `install(app, failure_arguments=True)`
        self._config_hash = ""
        self._probe: ProcessProbe | None = None
        self._probe_pid = 0
        self.host_lock: HostReporterLock | None = None
        self._host_probe: HostProbe | None = None

    # Read at the first `vsm_metrics`, not in `install`: reading `app.tasks` there would finalize the app
    # before the worker configures it, which made every task cost more in the worker's main process (P1).
    def config_hash(self) -> str:
        if not self._config_hash and self.app is not None:
            self._config_hash = config_hash(self.app)
        return self._config_hash

    def host_metrics(self) -> dict[str, Any] | None:
        """The host's metrics when this worker is its reporter, else None."""
        if self.host_lock is None:
            broker_url = str(self.app.conf.broker_url or "") if self.app is not None else ""
            self.host_lock = HostReporterLock.for_broker(broker_url)
        if not self.host_lock.held():
            return None
        if self._host_probe is None:
            self._host_probe = HostProbe()
        report = self._host_probe.read()
        return {"metrics": dict(report.metrics), "errors": dict(report.errors)}

    def probe(self) -> ProcessProbe:
        if self._probe is None or self._probe_pid != os.getpid():  # kept: cpu_percent needs history
            self._probe, self._probe_pid = ProcessProbe(os.getpid()), os.getpid()
        return self._probe


_state = _PluginState()


def _queue_wait_s(request: Request) -> float | None:
    """Publication to start: Celery's own `time_start` (wall clock, set when the pool accepted the task)."""
    sent_at, started = request.request_dict.get(SENT_AT_HEADER), request.time_start
    if sent_at.__class__ in _NUMBERS and started.__class__ is float:
        return started - sent_at
    return None


def _count_success(request: Request, failed__retval__runtime: Any) -> None:
    """The hot path, once per task: two atomic deque appends, no lock, no clock read."""
    if not failed__retval__runtime[0]:
        _state.counters.succeeded(request.name, failed__retval__runtime[2], _queue_wait_s(request))


if TYPE_CHECKING:  # a Request to the type checker; at run time a mixin in front of whichever class it extends
    _Mixin = Request
else:
    _Mixin = object


class Counting(_Mixin):
    """The counting hooks, a mixin in front of any Celery request class (`monitored`); they count the outcome
    in the worker's main process, then call the class behind them."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Celery subclasses the request class per task and overrides on_success there: wrap it.
        super().__init_subclass__(**kwargs)
        inner = cls.__dict__.get("on_success")
        if inner is not None:

            def on_success(self: Request, failed__retval__runtime: Any, **kw: Any) -> Any:
                _count_success(self, failed__retval__runtime)
                return inner(self, failed__retval__runtime, **kw)

            cls.on_success = on_success  # type: ignore[method-assign]

    def on_success(self, failed__retval__runtime: Any, **kwargs: Any) -> Any:
        _count_success(self, failed__retval__runtime)
        return super().on_success(failed__retval__runtime, **kwargs)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if not isinstance(exc, _NOT_FAILURES):
            started = self.time_start  # wall clock (Celery converts the pool's monotonic acceptance time)
            now = time.time()
            runtime = max(0.0, now - started) if isinstance(started, float) else None
            _state.counters.failed(
                self.task_name, runtime, _queue_wait_s(self), failure(self, exc, now, _state.failure_arguments)
            )
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def on_retry(self, exc_info: Any) -> Any:
        _state.counters.retried(self.task_name)
        return super().on_retry(exc_info)

    def reject(self, requeue: bool = False) -> Any:
        _state.counters.rejected(self.task_name)
        return super().reject(requeue=requeue)


def failure(request: Request, exc: BaseException, at: float, arguments: bool = False) -> Failure:
    """What a failure keeps: the exception's class and text; the task's arguments (they can hold secrets) only
    with `arguments`, and then as the sender's `argsrepr` and `kwargsrepr` (Celery's own reprs, which a sender
    can set to hide a value: `apply_async(argsrepr=...)`), never the values themselves."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    try:
        message = str(exc)[:MAX_MESSAGE]
    except Exception as e:  # a user's __str__ that raises must not fail the worker's failure handling
        message = f"(the exception's text could not be read: {type(e).__name__})"
    shown = None
    if arguments:
        sent = request.request_dict
        shown = f"args={sent.get('argsrepr') or '()'} kwargs={sent.get('kwargsrepr') or '{}'}"[:MAX_MESSAGE]
    return Failure(request.task_name, str(request.id), name, message, at, shown)


class MonitoredRequest(Counting, Request):
    """Celery's own request class, counted."""


_MONITORED: dict[type, type] = {Request: MonitoredRequest}


def monitored(request_cls: Any) -> type | None:
    """`request_cls` (a class or a dotted path) with the counting hooks in front: ours for Celery's own, else
    a subclass of the user's class, whose own hooks still run; None when it is no Celery `Request`."""
    cls = symbol_by_name(request_cls)
    if isinstance(cls, type) and issubclass(cls, Counting):
        return cls
    if not (isinstance(cls, type) and issubclass(cls, Request)):
        return None
    if cls not in _MONITORED:
        _MONITORED[cls] = type(f"Monitored{cls.__name__}", (Counting, cls), {"__module__": __name__})
    return _MONITORED[cls]


def monitor_tasks(app: Celery) -> list[str]:
    """Give every registered task of `app` a counting request class; the names that could not get one."""
    refused = []
    for name, task in app.tasks.items():
        wrapped = monitored(task.Request)
        if wrapped is None:
            refused.append(name)
        elif wrapped is not symbol_by_name(task.Request):
            task.Request = wrapped  # type: ignore[assignment]  # the instance's: what the worker's strategy reads
    if refused:
        log.warning("vsmmon: tasks %s have a request class that is no celery Request; they are not counted",
                    sorted(refused))  # fmt: skip
    return refused


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None and app is _state.app:
        monitor_tasks(_state.app)


def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


def install(app: Celery, version: str | None = None, *, failure_arguments: bool = False) -> None:
    """Count every task of `app` and stamp its published messages; add the S3* audit's canary; idempotent.

    With `failure_arguments` each kept failure carries the task's arguments as their senders' reprs (off by
    default: arguments can hold secrets, and the failures reach vsmmon's Redis, API and dashboard).

    The audit sends its canary (`vsmmon.audit.canary`) to one chosen worker through that worker's direct
    queue (Celery's `<hostname>.dq2`), which it has the worker consume (`add_consumer`) only while it
    probes: a queue consumed all the time would cost every task a longer fetch (P1). The audit's lines are
    kept out of the worker's log (`quiet_audit_lines`).
    """
    wrapped = monitored(app.Task.Request)  # tasks made later from `app.Task` count too; the user's class stays
    if wrapped is not None:
        app.Task.Request = wrapped  # type: ignore[assignment]  # a class is accepted as well as a path
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid="vsmmon.monitor_tasks")
    # registered lazily, like the app's own tasks; a second registration of the name keeps the first
    app.task(name=CANARY_TASK, bind=True, shared=False, ignore_result=True)(canary)
    before_task_publish.connect(_stamp_sent_at, weak=False, dispatch_uid="vsmmon.sent_at")
    worker_shutting_down.connect(
        functools.partial(goodbye.on_worker_shutting_down, app), weak=False, dispatch_uid="vsmmon.goodbye.early"
    )
    worker_shutdown.connect(goodbye.on_worker_shutdown, weak=False, dispatch_uid="vsmmon.goodbye")
    quiet_audit_lines()
    if version:
        _state.version = f"{version}; vsmmon {__version__}"
    _state.failure_arguments = failure_arguments
    _state.app = app


AUDIT_LOGGERS = ("celery.worker.consumer.consumer", "celery.worker.control", "celery.worker.strategy",
                 "celery.app.trace")  # fmt: skip
"""Where Celery logs a consumer added or cancelled, and a task received or done, at info level."""


class AuditLines(logging.Filter):
    """Moves the info lines an audit makes in the user's worker log (its direct queue consumed and cancelled,
    its canary received and done) to debug: a worker at `--loglevel=DEBUG` still shows them, one at INFO does
    not. Warnings and errors about them stay as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or record.levelno <= logging.DEBUG:
            return True
        message = record.getMessage()
        if CANARY_TASK not in message and ".dq2" not in message:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_audit_lines() -> None:
    """Keep the audit out of the user's worker log below debug level (idempotent; prefork children inherit it)."""
    for name in AUDIT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, AuditLines) for f in logger.filters):
            logger.addFilter(AuditLines())


def canary(task: Any, nonce: str) -> dict[str, Any]:
    """The S3* audit's canary: proves the worker runs what reaches its direct queue."""
    return {"nonce": str(nonce)[:64], "hostname": task.request.hostname, "pid": os.getpid(), "received_at": time.time()}


def config_hash(app: Celery) -> str:
    """A short hash of the settings that must agree across a fleet (identity coherence, S5)."""
    conf = app.conf
    keys = (
        "task_serializer", "accept_content", "task_acks_late", "task_reject_on_worker_lost",
        "worker_prefetch_multiplier", "task_default_queue", "task_time_limit", "task_soft_time_limit",
    )  # fmt: skip
    relevant = {key: conf.get(key) for key in keys}
    relevant["tasks"] = sorted(name for name in app.tasks if not name.startswith("celery."))
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@inspect_command(name="vsm_metrics")
def vsm_metrics(state: Any, **_: Any) -> dict[str, Any]:
    """CPU, memory, threads, fds and task figures of this worker, read now."""
    metrics: dict[str, float] = {}
    errors: dict[str, str] = {}
    children: list[int] = []
    queues: list[str] = []
    direct_consumed = stopping = False
    try:
        consumer = state.consumer
        stopping = goodbye.leaving(str(getattr(consumer, "hostname", "")))
        info = getattr(consumer.pool, "info", None) or {}
        # the solo pool lists the worker's own process as its one "child": counted once, as the main process
        children = [int(pid) for pid in info.get("processes", []) if isinstance(pid, int) and pid != os.getpid()]
        # the pool's size now (pool_grow / pool_shrink / autoscale change it), else the configured one
        size = getattr(consumer.pool, "num_processes", None) or getattr(consumer.controller, "concurrency", 0)
        metrics["concurrency"] = float(size or 0)
        direct = f"{getattr(consumer, 'hostname', '')}.dq2"  # its direct queue (audits) is not a fleet queue
        consumed = consumer.task_consumer.queues if consumer.task_consumer else []
        queues = sorted(q.name for q in consumed if q.name != direct)
        # the worker's own direct-queue consumer (`worker_direct`): the audit leaves it alone
        direct_consumed = bool(getattr(getattr(getattr(consumer, "app", None), "conf", None), "worker_direct", False))
    except Exception as e:
        errors["pool"] = repr(e)
    try:
        readings, probe_errors = _state.probe().read(children)
        metrics.update(readings)
        errors.update(probe_errors)
    except Exception as e:
        errors["psutil"] = repr(e)
    totals, per_task = _state.counters.snapshot()
    metrics.update(totals)
    # the observer's own probes wait on the fleet's replies: running one is not load (names.PROBE_TASKS)
    probes = sum(1 for r in worker_state.active_requests if r.name in PROBE_TASKS)
    metrics["active"] = float(len(worker_state.active_requests) - probes)
    metrics["probes_active"] = float(probes)
    metrics["reserved"] = float(len(worker_state.reserved_requests))
    metrics["tasks_received_total"] = float(sum(worker_state.total_count.values()))
    metrics["uptime_s"] = time.monotonic() - _state.started
    metrics.update(runtime_metrics())
    try:
        host = _state.host_metrics()
    except Exception as e:
        host, errors["host"] = None, repr(e)
    return {
        "host_metrics": host,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": _state.version,
        "config_hash": _state.config_hash(),
        "queues": queues,
        "worker_direct": direct_consumed,
        "stopping": stopping,  # a warm shutdown began: what it still answers is not a return (`goodbye.leaving`)
        "metrics": metrics,
        "tasks": per_task,
        "failures": _state.counters.recent_failures(time.time() - FAILURES_SPAN_S),
        "errors": errors,
    }


@inspect_command(name="vsm_health")
def vsm_health(state: Any, **_: Any) -> dict[str, Any]:
    """A cheap liveness answer from the worker's consumer loop."""
    uptime_s = time.monotonic() - _state.started
    return {"ok": True, "pid": os.getpid(), "version": _state.version, "uptime_s": uptime_s}
