"""`make soak` (`python -m bench.soak`): 1,000 simulated agents (`mixed`) for 10 minutes against `vsmmon up`.

It runs the pipeline as a person does (`vsmmon up`: its two workers, beat, the HTTP service)
and `vsmmon simulate --agents 1000 --profile mixed` pushing to it, samples every 5 s, prints progress,
and judges: every cycle finished (collected, stored, aggregated) within its interval and none was
skipped; the queue backlog did not grow; the RSS of each pipeline process stayed flat and under 150 MB
(P7). The result goes to BENCHMARKS.md ("Soak"); the exit code is 0 when every check passed.

Environment: `SOAK_SECONDS` (600), `SOAK_AGENTS` (1000); `VSMMON_SOAK_DATABASE_URL` and
`VSMMON_SOAK_REDIS_URL` name the machine's services (the Redis db index is flushed first), else `vsmmon up`
starts its embedded PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import redis
import sqlalchemy as sa

from bench import readme
from bench.report import current_commit
from bench.soak_report import Cycle, Sample, Verdict, cycles_of, judge, write_section
from vsmmon import names
from vsmmon.local import runfile
from vsmmon.local.embedded import free_port

INTERVAL_S = 5.0
SAMPLE_EVERY_S = 5.0
PROGRESS_EVERY_S = 30.0
MB = 1024 * 1024
FULL_S = 600.0  # only a full run (10 min) rewrites BENCHMARKS.md, its fleet size's part


def role_of(argv: list[str]) -> str | None:
    """The pipeline role a `python -m vsmmon …` command line runs; None for anything else."""
    if "-m" not in argv or "vsmmon" not in argv:
        return None
    at = argv.index("vsmmon") + 1
    command = argv[at] if at < len(argv) else ""
    if command == "worker" and "--role" in argv[at:-1]:
        return f"worker {argv[argv.index('--role') + 1]} (main)"
    return {"worker": "worker (main)", "beat": "beat", "serve": "http", "up": "up (supervisor)"}.get(command)


def pipeline_processes(up_pid: int) -> dict[int, str]:
    """Every pipeline process under `vsmmon up` by pid (the embedded servers are not pipeline processes)."""
    found = {up_pid: "up (supervisor)"}
    for child in psutil.Process(up_pid).children(recursive=True):
        try:
            role, parent = role_of(child.cmdline()), child.ppid()
        except psutil.Error:
            continue
        if role is not None and role.endswith("(main)") and found.get(parent) == role:
            role = role.replace("(main)", "(pool child)")  # prefork children keep their parent's command line
        if role is not None:
            found[child.pid] = role
    return found


def sample(up_pid: int, broker: redis.Redis, t_s: float, simulator: psutil.Process) -> Sample:
    rss: dict[str, float] = {}
    cpu_s = 0.0
    for pid, role in pipeline_processes(up_pid).items():
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                mem, times = proc.memory_info().rss / MB, proc.cpu_times()
        except psutil.Error:
            continue
        key = role.replace("(pool child)", f"(pool child {pid})")
        rss[key] = mem
        cpu_s += times.user + times.system
        if role.endswith("(main)") and role.startswith("worker"):  # recycled pool processes' CPU so far
            cpu_s += times.children_user + times.children_system
    pipe = broker.pipeline(transaction=False)
    for name in names.QUEUES:
        pipe.llen(name)
    pipe.hlen("unacked")
    lengths = pipe.execute()
    try:
        sim = simulator.cpu_times()
        sim_cpu_s = sim.user + sim.system
    except psutil.Error:
        sim_cpu_s = 0.0
    waiting = dict(zip(names.QUEUES, lengths[:-1], strict=True))
    return Sample(t_s, rss, sum(lengths[:-1]), lengths[-1], cpu_s, sim_cpu_s, os.getloadavg()[0],
                  psutil.cpu_times(), waiting)  # fmt: skip


def cycles(database_url: str, since: datetime, until: datetime | None = None) -> list[Cycle]:
    """Every cycle started since `since` (and by `until`), its shards' collections as one (`soak_report.cycles_of`)."""
    engine = sa.create_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT started_at, duration_ms, aggregated_at, persisted_at, shard, shards FROM collections "
                        "WHERE started_at >= :t AND started_at <= :u ORDER BY started_at"),
                {"t": since, "u": until or datetime.now(UTC)},
            )  # fmt: skip
            return cycles_of([(r[0], float(r[1]), r[2], r[3], r[4], r[5]) for r in rows])
    finally:
        engine.dispose()


def progress(t_s: float, total_s: float, samples: list[Sample], done: list[Cycle]) -> str:
    last = samples[-1]
    ends = [(a - s).total_seconds() for s, _, a, _ in done if a is not None]
    worst = max(ends, default=0.0)
    biggest = {k: round(v) for k, v in sorted(last.rss_mb.items()) if "pool child" not in k}
    pool = [v for k, v in last.rss_mb.items() if "pool child" in k]
    return (
        f"soak {t_s:5.0f}/{total_s:.0f} s | cycles {len(done)} (worst end-to-end {worst:.2f} s) | "
        f"backlog {last.backlog} (+{last.unacked} unacked) | RSS MB {biggest} pool {[round(p) for p in pool]} | "
        f"load {last.load1:.1f}"
    )


def run(total_s: float, agents: int) -> Verdict:
    data_dir = Path(tempfile.mkdtemp(prefix="vsmmon-soak-"))
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update(VSMMON_DATA_DIR=str(data_dir), VSMMON_HTTP_PORT=str(port), VSMMON_API_TOKEN=token,
               VSMMON_LOG_LEVEL="WARNING", VSMMON_COLLECT_INTERVAL_S=str(INTERVAL_S),
               VSMMON_PUSH_NEW_AGENTS_PER_MIN=str(max(1000, agents)))  # fmt: skip
    # an operator registering a fleet this size raises the new-ids budget (`vsmmon.collect.admission`) as this
    # does; left at 1,000 a minute, 10,000 agents would take 10 minutes to be admitted and the run measure fewer
    if os.environ.get("VSMMON_SOAK_DATABASE_URL"):
        env["VSMMON_DATABASE_URL"] = os.environ["VSMMON_SOAK_DATABASE_URL"]
    if os.environ.get("VSMMON_SOAK_REDIS_URL"):
        env["VSMMON_BROKER_URL"] = os.environ["VSMMON_SOAK_REDIS_URL"]
        redis.Redis.from_url(env["VSMMON_BROKER_URL"]).flushdb()
    me = [sys.executable, "-m", "vsmmon"]
    up_log, sim_log = (data_dir / "up.log").open("wb"), (data_dir / "simulate.log").open("wb")
    up = subprocess.Popen([*me, "up"], env=env, stdout=up_log, stderr=subprocess.STDOUT, start_new_session=True)
    simulate = None
    try:
        info = wait_until_up(data_dir, up, f"http://127.0.0.1:{port}")
        print(f"soak: pipeline up (data in {data_dir}); {agents} agents, mixed, for {total_s:.0f} s", flush=True)
        broker = redis.Redis.from_url(info.broker_url)
        since = datetime.now(UTC)
        simulate = subprocess.Popen(
            [*me, "simulate", "--agents", str(agents), "--profile", "mixed", "--interval", str(INTERVAL_S),
             "--duration", str(total_s), "--url", info.http_url],
            env={**env, "VSMMON_API_TOKEN": token}, stdout=sim_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        samples: list[Sample] = []
        start = next_print = time.monotonic()
        while (t_s := time.monotonic() - start) < total_s:
            samples.append(sample(up.pid, broker, t_s, psutil.Process(simulate.pid)))
            if time.monotonic() >= next_print:
                print(progress(t_s, total_s, samples, cycles(info.database_url, since)), flush=True)
                next_print += PROGRESS_EVERY_S
            time.sleep(max(0.0, start + len(samples) * SAMPLE_EVERY_S - time.monotonic()))
        time.sleep(2 * INTERVAL_S)  # the last cycles finish
        # a cycle started within the last interval may still be on its way (it has the interval to finish): not judged
        done = cycles(info.database_url, since, datetime.now(UTC) - timedelta(seconds=INTERVAL_S))
        simulated = simulate.wait(timeout=60)
        pushed = (data_dir / "simulate.log").read_text(errors="replace").strip().splitlines()[-1:]
        said = pushed[0] if pushed else ""
        return judge(samples, done, since=since, total_s=total_s, interval_s=INTERVAL_S, agents=agents,
                     simulator_said=said, simulator_ok=simulated == 0)  # fmt: skip
    finally:
        for proc in (simulate, up):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        up_log.close()
        sim_log.close()


def wait_until_up(data_dir: Path, up: subprocess.Popen[bytes], http_url: str) -> runfile.RunInfo:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise SystemExit(f"soak: vsmmon up exited with {up.returncode}; see {data_dir / 'up.log'}")
        info = runfile.read(data_dir)
        if info is not None:
            try:
                if httpx.get(f"{http_url}/readyz", timeout=2).status_code == 200:
                    return info
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise SystemExit(f"soak: the pipeline was not ready within 120 s; see {data_dir / 'up.log'}")


def main() -> int:
    total_s = float(os.environ.get("SOAK_SECONDS", "600"))
    agents = int(os.environ.get("SOAK_AGENTS", "1000"))
    commit = current_commit()  # the code the run measures, whatever is committed while it runs
    verdict = run(total_s, agents)
    for line in verdict.lines:
        print(line)
    if total_s >= FULL_S:
        write_section(verdict, agents, commit=commit)
        try:
            readme.refresh()
            print("soak: BENCHMARKS.md (Soak) and the README's soak table rewritten")
        except readme.ReadmeError as error:
            print(f"soak: BENCHMARKS.md (Soak) rewritten; the README was not: {error}")
            return 2
    print(f"soak: {'PASS' if verdict.passed else 'FAIL'}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
