"""Scenarios with a real fault or overload: what must fire, by when, and what S3 must (not) do.

Worker SIGKILL, a leaking pushed agent and a leaking plugin worker, an overloaded queue, flapping load,
and simulated agents that stop reporting.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bench.scenarios.context import Run
from bench.scenarios.fleet_app import LEAK_TASK, SLEEP_TASK
from bench.scenarios.pipeline import COLLECT_INTERVAL_S
from bench.scenarios.quiet import TRICKLE_PER_S, WARM_UP_S, expect_statuses
from bench.scenarios.scenario import Scenario
from bench.scenarios.truth import ActExpect, Expect

HOST = r"[^@]+@.+"
MEMORY = "factor=memory|command=restart_worker"  # what the product raises for memory: a bottleneck, the leak advice
OUTAGE_ALLOWED = (
    Expect("viability", why="an outage lowers viability"),
    Expect("algedonic", "viability", why="viability falling more than 0.1 between checks: what an outage does"),
)
WISH_S = 3 * COLLECT_INTERVAL_S  # the wish for an outage: detected within 3 collection intervals
LEAK_MIB_PER_S = 8.0
LEAK_FOR_S = 85.0  # ~680 MiB kept, then the leak stops (the machine is shared)
PLUGIN_BASE_MIB = 120.0  # a prefork worker with 2 pool processes, before the leak
HARD_MIB = 1024.0  # VSMMON_MEMORY_HARD_BYTES's default: where a plugin worker's memory health is 0
PUSHED_LIMIT_S = (512 - 100) / 1.0  # the simulator's leak: 100 MB + 1 MB/s, limit 512 MB


def registry(run: Run, agent_ids: list[str]) -> dict[str, str]:
    return {a.agent_id: str(a.status) for a in run.observer.agents() if a.agent_id in agent_ids}


def sigkill(run: Run) -> None:
    run.start_workers(["w1", "w2"])
    with run.trickle(TRICKLE_PER_S):
        run.wait(WARM_UP_S + 15)
        run.inject("SIGKILL to w2's process group (main and pool processes): a crash")
        run.sigkill("w2")
        run.wait(75, "after the kill")
    expect_statuses(run, {"w1": "online", "w2": "offline"})


def leak_pushed(run: Run) -> None:
    run.simulate(1, "leak")
    run.inject("pushed agent sim-leak-0 leaks 1 MB/s from 100 MB; reaches its 512 MB limit in 412 s")
    run.wait(340, "leaking")


def leak_plugin(run: Run) -> None:
    run.start_workers(["w1"])
    run.wait(30)
    run.inject(f"w1's task keeps {LEAK_MIB_PER_S:g} MiB/s in a module-level list (from ~{PLUGIN_BASE_MIB:.0f} MiB)")
    with run.load(lambda _t: LEAK_MIB_PER_S / 2, LEAK_TASK, (2.0,)):
        run.wait(LEAK_FOR_S, "leaking")
    run.wait(60, "leak stopped, memory kept")


OVERLOAD_TASKS = 45


def overload(run: Run) -> None:
    run.start_workers(["w1"], concurrency=1)
    run.wait(40)
    # S3 acts once the condition persisted and an analysis that has seen the burst advised growth: ~40 s in
    # here; the burst outlasts that (a shorter one drains by itself and rightly gets no action)
    run.inject(f"burst: {OVERLOAD_TASKS} tasks sleeping 2 s each on w1 (1 pool slot): {2 * OVERLOAD_TASKS} s of work")
    run.send(SLEEP_TASK, (2.0,), n=OVERLOAD_TASKS)
    run.wait(130, "draining the burst")
    judge_backlog(run)


def judge_backlog(run: Run) -> None:
    """Did the backlog fall after S3's pool_grow? Drain rates in the 20 s before and after it."""
    grown = [a for a in run.observer.actions() if a.action == "pool_grow"]
    peak = max((b for _, b in run.backlog), default=0)
    if not grown:
        run.extra["backlog"] = f"peak {peak}; no pool_grow"
        run.check("backlog fell after S3 acted", False, f"S3 did not grow the pool (backlog peak {peak})")
        return
    at_s = run.elapsed() - (datetime.now(UTC) - grown[0].at).total_seconds()

    def backlog_at(t: float) -> int:
        return min(run.backlog, key=lambda p: abs(p[0] - t))[1]

    emptied = next((t for t, b in run.backlog if t > at_s and b == 0), None)
    span = 20.0 if emptied is None else max(1.0, min(20.0, emptied - at_s))  # until it emptied, at most 20 s
    before, at, after = backlog_at(at_s - 20), backlog_at(at_s), backlog_at(at_s + span)
    empty = "never" if emptied is None else f"{emptied - at_s:.0f} s after"
    detail = (f"peak {peak}; at the pool_grow {at} waiting; drain {(before - at) / 20:.2f}/s in the 20 s before, "
              f"{(at - after) / span:.2f}/s in the {span:.0f} s after; empty {empty}")  # fmt: skip
    run.extra["backlog"] = detail
    run.check("backlog fell after S3 acted", at > 0 and after < at, detail)


def flapping(run: Run) -> None:
    run.start_workers(["w1"])
    run.wait(40)
    run.inject("load toggles every 20 s: 6 tasks/s of 0.5 s (1.5x what 2 slots drain), then none; for 3 min")
    t0 = run.elapsed()
    with run.load(lambda t: 6.0 if int((t - t0) // 20) % 2 == 0 else 0.0, SLEEP_TASK, (0.5,)):
        run.wait(180, "flapping load")
    run.wait(40, "quiet again")
    counts = Counter(a.fingerprint for a in run.observer.alerts())
    repeated = {a.describe(): counts[a.fingerprint] for a in run.observer.alerts() if counts[a.fingerprint] > 1}
    run.check("one alert instance per condition", not repeated, f"repeated: {repeated}" if repeated else "none")


def agents_stop(run: Run) -> None:
    simulator = run.simulate(4, "steady")
    run.wait(60)
    run.inject("SIGKILL to `vsmmon simulate`: its 4 steady agents stop reporting")
    simulator.proc.kill()
    simulator.proc.wait()
    run.wait(60, "agents silent")
    ids = [f"sim-steady-{i}" for i in range(4)]
    seen = registry(run, ids)
    run.check("registry", all(seen.get(i) == "offline" for i in ids), ", ".join(f"{i} {seen.get(i)}" for i in ids))


OVERLOAD_ALLOWED = (
    Expect(
        "resource_adjustment",
        HOST,
        label="command=pool_grow",
        why="the capacity plan advises growth: true, but the bottleneck is the must",
    ),
    Expect("system_health", "S2|S3", why="a queue that does not drain lowers coordination and control"),
    *OUTAGE_ALLOWED,
)


def leak_allowed(target: str) -> tuple[Expect, ...]:
    return (
        Expect("bottleneck|resource_adjustment", target, label=MEMORY, why="the other memory alert of the leak"),
        Expect("system_health", "S4", why="time to exhaustion is S4's factor"),
        *OUTAGE_ALLOWED,
    )


SCENARIOS = (
    Scenario("sigkill", "2 workers under a trickle; SIGKILL one (real outage)", sigkill, 150,
             must=(Expect("system_health", "S1", "warning", deadline_s=60, wish_s=WISH_S),),
             allowed=OUTAGE_ALLOWED),
    Scenario("leak_pushed", "pushed agent, `vsmmon simulate --profile leak` (1 MB/s toward 512 MB)", leak_pushed,
             355, http=True, queue="", lane="parallel",
             must=(Expect("resource_adjustment", "sim-leak-0", label="command=restart_worker",
                          deadline_s=PUSHED_LIMIT_S / 2, why="#19: advised before half the time to the limit"),
                   Expect("system_health|bottleneck", "S4|sim-leak-0", "warning", deadline_s=PUSHED_LIMIT_S / 2,
                          why="#19: a warning before half the time to the limit (S4 scores the time to exhaustion)")),
             allowed=leak_allowed("sim-leak-0")),
    Scenario("leak_plugin", f"plugin worker whose task leaks {LEAK_MIB_PER_S:g} MiB/s for {LEAK_FOR_S:.0f} s",
             leak_plugin, 190, lane="parallel",
             must=(Expect("bottleneck|resource_adjustment", "w1@.+", label=MEMORY,
                          deadline_s=(HARD_MIB - PLUGIN_BASE_MIB) / LEAK_MIB_PER_S),),
             allowed=leak_allowed("w1@.+"),
             must_not_act=(ActExpect("pool_grow"), ActExpect("autoscale"))),
    Scenario("overload", f"1 worker, 1 slot; burst of {OVERLOAD_TASKS} tasks x 2 s", overload, 185,
             must=(Expect("bottleneck", "queue scen.work|w1@.+", "warning", deadline_s=60),),
             allowed=OVERLOAD_ALLOWED,
             must_act=(ActExpect("pool_grow", "w1@.+", exactly=1),),
             must_not_act=(ActExpect("pool_shrink"), ActExpect("autoscale"))),
    Scenario("flapping", "1 worker, 2 slots; load on/off every 20 s for 3 min", flapping, 275,
             allowed=(Expect("bottleneck"), *OVERLOAD_ALLOWED),
             must_not_act=(ActExpect("pool_shrink"), ActExpect("autoscale"))),
    Scenario("agents_stop", "`vsmmon simulate` with 4 steady agents, then SIGKILL it", agents_stop, 135, http=True,
             queue="", must=(Expect("system_health", "S1", "warning", deadline_s=60, wish_s=WISH_S),),
             allowed=OUTAGE_ALLOWED),
)  # fmt: skip
