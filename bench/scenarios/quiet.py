"""Scenarios in which nothing is wrong: any alert is a false positive and S3 must not act.

Idle install, steady load well under capacity, a planned scale-in, a scale-out and a rolling restart.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from bench.scenarios.context import Run
from bench.scenarios.scenario import Scenario

WARM_UP_S = 45.0  # the learned capacity, the first analysis and a few health checks before the change
TRICKLE_PER_S = 2.0  # short tasks a second: 4 pool slots drain ~100/s, so well under capacity
IDLE_S = float(os.environ.get("VSMMON_SCENARIO_IDLE_S", "900"))


def statuses(run: Run, names: list[str]) -> dict[str, str]:
    """The registry's status of each fleet worker."""
    hosts = {run.workers[n].hostname: n for n in names}
    return {hosts[a.agent_id]: str(a.status) for a in run.observer.agents() if a.agent_id in hosts}


def expect_statuses(run: Run, wanted: dict[str, str]) -> None:
    seen = statuses(run, list(wanted))
    detail = ", ".join(f"{n} {seen.get(n, 'absent')}" for n in wanted)
    if seen != wanted:  # how each wrong one got there, so a failure can be read without the run's logs
        store, fault_at = run.observer.store, run.fault_at or datetime.now(UTC)
        detail += "; " + "; ".join(
            f"{n}: " + " / ".join(f"{(t.at - fault_at).total_seconds():+.0f} s from the fault: {t.from_status}->"
                                  f"{t.to_status} ({t.reason})"
                                  for t in store.transitions(run.workers[n].hostname))
            + "".join(f" / log: {line.strip()}" for line in run.workers[n].log_tail(20000).splitlines()
                      if "vsmmon" in line)
            for n in wanted if seen.get(n) != wanted[n]
        )  # fmt: skip
    run.check("registry", seen == wanted, detail)


def idle(run: Run) -> None:
    run.wait(IDLE_S, "idle: the pipeline alone")


def steady(run: Run) -> None:
    run.start_workers(["w1", "w2"])
    with run.trickle(TRICKLE_PER_S):
        run.inject(f"steady load: {TRICKLE_PER_S:g} short tasks/s on 2 workers x 2 slots")
        run.wait(180, "steady load")
    expect_statuses(run, {"w1": "online", "w2": "online"})


def scale_in(run: Run) -> None:
    run.start_workers(["w1", "w2", "w3", "w4"])
    with run.trickle(TRICKLE_PER_S):
        run.wait(WARM_UP_S + 15)
        run.inject("SIGTERM to w3 and w4 (main process): a planned scale-in")
        codes = {n: run.sigterm(n) for n in ("w3", "w4")}
        run.check("clean exit", all(c == 0 for c in codes.values()), f"exit codes {codes}")
        run.wait(90, "after the scale-in")
    expect_statuses(run, {"w1": "online", "w2": "online", "w3": "stopped", "w4": "stopped"})


def scale_out(run: Run) -> None:
    run.start_workers(["w1", "w2"])
    with run.trickle(TRICKLE_PER_S):
        run.wait(WARM_UP_S + 15)
        run.inject("start w3 and w4: a scale-out")
        run.start_workers(["w3", "w4"])
        run.wait(90, "after the scale-out")
    expect_statuses(run, dict.fromkeys(("w1", "w2", "w3", "w4"), "online"))


def rolling_restart(run: Run) -> None:
    names = ["w1", "w2", "w3"]
    run.start_workers(names)
    with run.trickle(TRICKLE_PER_S):
        run.wait(WARM_UP_S)
        run.inject("rolling restart: SIGTERM and start again, one worker at a time")
        codes = {}
        for name in names:
            codes[name] = run.sigterm(name)
            run.restart(name)
            run.wait(20, f"restarted {name}")
        run.check("clean exits", all(c == 0 for c in codes.values()), f"exit codes {codes}")
        run.wait(60, "after the rolling restart")
    expect_statuses(run, dict.fromkeys(names, "online"))
    went = {n: any(t.to_status == "stopped" for t in run.observer.store.transitions(run.workers[n].hostname))
            for n in names}  # fmt: skip
    run.check("each stop read as stopped", all(went.values()), f"went through stopped: {went}")


SCENARIOS = (
    Scenario("idle", "idle install: the pipeline alone, nothing monitored", idle, IDLE_S + 20, lane="parallel",
             queue=""),
    Scenario("steady", "2 plugin workers (2 slots each), 2 short tasks/s for 3 min", steady, 200),
    Scenario("scale_in", "4 workers; SIGTERM 2 of them (main pid): planned scale-in", scale_in, 175),
    Scenario("scale_out", "2 workers; start 2 more", scale_out, 175),
    Scenario("rolling_restart", "3 workers; SIGTERM + restart each in turn", rolling_restart, 190),
)  # fmt: skip
