"""A scenario (its body and its labelled truth) and running one on its own pipeline to a judged outcome."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.scenarios.context import Run, cpu_seconds
from bench.scenarios.pipeline import Observer, running_pipeline
from bench.scenarios.truth import ActExpect, Expect, FiredAlert, Verdict, judge

SETTLE_S = 3.0  # the last health check's alerts reach PostgreSQL
ANY_ACTION = (ActExpect("any"),)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    what: str
    body: Callable[[Run], None]
    planned_s: float
    must: tuple[Expect, ...] = ()
    allowed: tuple[Expect, ...] = ()
    must_act: tuple[ActExpect, ...] = ()
    must_not_act: tuple[ActExpect, ...] = ANY_ACTION
    http: bool = False
    queue: str = "scen.work"
    lane: str = "main"  # "parallel": runs beside the others, on its own pipeline and Redis db index


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: Scenario
    duration_s: float
    verdict: Verdict | None
    fault: str = ""
    notes: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()  # why each false positive fired, as the pipeline recorded it
    pipeline_cpu_s: float = 0.0
    machine_busy_cores: float = 0.0
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and self.verdict is not None and self.verdict.passed


def run_scenario(scenario: Scenario, broker_url: str) -> Outcome:
    """Start a fresh pipeline, run the body, judge what the pipeline recorded; stop and drop everything."""
    started = time.monotonic()
    machine_before = psutil.cpu_times()
    print(f"== {scenario.name}: {scenario.what} (planned {scenario.planned_s:.0f} s, {broker_url})", flush=True)
    run: Run | None = None
    try:
        with ExitStack() as stack:
            pipeline = stack.enter_context(
                running_pipeline(scenario.name, broker_url, http=scenario.http, watch=scenario.queue)
            )
            observer = Observer(pipeline)
            stack.callback(observer.close)
            run = Run(scenario.name, pipeline, observer, stack, scenario.queue)
            cpu_before = cpu_seconds(pipeline.pids())
            run.say(f"pipeline up (database {pipeline.database_url.rsplit('/', 1)[-1]})")
            scenario.body(run)
            time.sleep(SETTLE_S)
            cpu_used = cpu_seconds(pipeline.pids()) - cpu_before
            alerts, actions = observer.alerts(), observer.actions()
            verdict = judge(alerts, actions, fault_at=run.fault_at, must=scenario.must, allowed=scenario.allowed,
                            must_act=scenario.must_act, must_not_act=scenario.must_not_act,
                            checks=run.checks)  # fmt: skip
            said = {x.alert.id: explain(observer, x.alert) for x in verdict.labelled}
            for x in verdict.labelled:
                run.say(f"{x.label}: {said[x.alert.id]}")
            explanations = tuple(said[x.alert.id] for x in verdict.false_positives)
            for a in actions:
                run.say(f"S3 {a.action} on {a.target}: {a.reason[:200]}")
            duration = time.monotonic() - started
            return Outcome(scenario, duration, verdict, run.fault, tuple(run.notes), explanations,
                           cpu_used, busy_cores(machine_before, duration), extra=run.extra)  # fmt: skip
    except Exception:
        error = traceback.format_exc()
        print(error, flush=True)
        return Outcome(scenario, time.monotonic() - started, None, run.fault if run else "",
                       tuple(run.notes) if run else (), error=error.strip().splitlines()[-1])  # fmt: skip


def explain(observer: Observer, alert: FiredAlert) -> str:
    """An alert with its summary and, for a system's health, the factors of the score that raised it."""
    text = f"{alert.describe()} at {alert.fired_at:%H:%M:%S}: {alert.summary}"
    if alert.type == "system_health" and alert.target == "S1":
        text += f" [{observer.factors('S1', alert.fired_at)}; {observer.systems(alert.fired_at)}]"
    elif alert.type == "system_health":
        text += f" [{observer.factors(alert.target, alert.fired_at)}]"
    elif alert.type in ("viability", "algedonic"):
        text += f" [{observer.systems(alert.fired_at)}; {observer.factors('S1', alert.fired_at)}]"
    elif alert.type == "bottleneck" and not alert.target.startswith("queue "):
        text += f" [{observer.factors(alert.target, alert.fired_at, scope='agent')}]"
    return text


def busy_cores(before: Any, duration_s: float) -> float:
    """Cores the whole machine kept busy since `before` (everyone's work, not only this suite's)."""
    after = psutil.cpu_times()
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    total = sum(after) - sum(before)
    cores = psutil.cpu_count() or 1
    return cores * (1 - idle / total) if total > 0 else 0.0
