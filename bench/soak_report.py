"""The soak's judgement and its section of BENCHMARKS.md (pure: figures in, verdict and text out)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import mean, median
from typing import Any

from bench.report import BENCHMARKS_MD, current_commit

RSS_LIMIT_MB = 150.0  # P7
P95_LIMIT_S = 2.5  # end-to-end, start to aggregated (#23)
CPU_LIMIT_CORES = 1.0  # every pipeline process together
FLAT_MB = 5.0  # growth allowed after warm-up, or 5 % of the process's size when that is more
SECTION = "## Soak"
POOL = " (pool child"
POOL_ALL = "pool processes (the largest at each sample)"
Cycle = tuple[datetime, float, datetime | None, datetime]
"""A stored cycle: started, its collection's duration (ms), aggregated (None: not yet), persisted; of a sharded
cycle (`vsmmon.collect.shards`), the longest collection and the last shard's times (`cycles_of`)."""
Part = tuple[datetime, float, datetime | None, datetime, int, int]
"""A stored collection: a `Cycle`'s fields, then its shard and the cycle's shard count."""


def cycles_of(parts: list[Part]) -> list[Cycle]:
    """One `Cycle` per start: aggregated when every shard of it is stored and aggregated, at the last one."""
    by_start: dict[datetime, list[Part]] = {}
    for part in parts:
        by_start.setdefault(part[0], []).append(part)
    cycles: list[Cycle] = []
    for start, group in sorted(by_start.items()):
        shards = max(p[5] for p in group)
        whole = len({p[4] for p in group}) >= shards and all(p[2] is not None for p in group)
        aggregated = max(p[2] for p in group if p[2] is not None) if whole else None
        cycles.append((start, max(p[1] for p in group), aggregated, max(p[3] for p in group)))
    return cycles


@dataclass(frozen=True)
class Sample:
    t_s: float
    rss_mb: dict[str, float]
    backlog: int  # messages waiting in the pipeline's queues
    unacked: int  # delivered, being worked on
    cpu_s: float  # the pipeline processes' CPU so far
    sim_cpu_s: float  # the simulator's
    load1: float
    machine: Any  # psutil.cpu_times()
    waiting: dict[str, int] = field(default_factory=dict)  # the backlog by queue


@dataclass
class Verdict:
    passed: bool
    lines: list[str] = field(default_factory=list)


def _pool_as_one(rss_mb: dict[str, float]) -> dict[str, float]:
    """Pool processes come and go (recycled): judged as one series, the largest of them at each sample."""
    merged = {k: v for k, v in rss_mb.items() if POOL not in k}
    pools: dict[str, list[float]] = {}
    for k, v in rss_mb.items():
        if POOL in k:
            pools.setdefault(k.partition(POOL)[0], []).append(v)  # per worker: "worker all", "worker collector"
    for worker, values in pools.items():
        merged[f"{worker}: {POOL_ALL}"] = max(values)
    return merged


def _busy(t: Any) -> float:
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def judge(
    samples: list[Sample],
    done: list[Cycle],
    *,
    since: datetime,
    total_s: float,
    interval_s: float,
    agents: int,
    simulator_said: str,
    simulator_ok: bool = True,
) -> Verdict:
    checks: list[tuple[str, bool]] = []
    lines = [
        f"Run {since:%Y-%m-%d %H:%M} UTC, {total_s:.0f} s, {agents} simulated agents (`mixed`), collection every "
        f"{interval_s:g} s, `vsmmon up` (workers for the collection's path, the analysis queue and control, prefork "
        f"concurrency 2 each; beat; HTTP service), {os.cpu_count()} cores. "
        f"Simulator: {simulator_said or 'no summary'}.",
        "",
        "| check | figure | result |",
        "|---|---|---|",
    ]

    ends = [(a - s).total_seconds() for s, _, a, _ in done if a is not None]
    unfinished = sum(1 for _, _, a, _ in done if a is None)
    starts = [s for s, *_ in done]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    skipped = sum(round(g / interval_s) - 1 for g in gaps if g > 1.5 * interval_s)
    late = sum(1 for e in ends if e > interval_s)
    ok = bool(done) and late == 0 and unfinished == 0 and skipped == 0
    checks.append(("cycles", ok))
    p95 = sorted(ends)[int(0.95 * (len(ends) - 1))] if ends else 0.0
    lines.append(
        f"| every cycle collected, stored and aggregated within its {interval_s:g} s interval, none skipped | "
        f"{len(done)} cycles (expected ~{total_s / interval_s:.0f}); end-to-end (start to aggregated) median "
        f"{median(ends) if ends else 0:.2f} s, p95 {p95:.2f} s, max {max(ends, default=0):.2f} s; over the interval: "
        f"{late}; not aggregated: {unfinished}; skipped ticks: {skipped}; longest gap between starts "
        f"{max(gaps, default=0):.2f} s{_where(starts, gaps, since, interval_s)} | {'PASS' if ok else '**FAIL**'} |"
    )

    fast, line = _stages(done, p95)
    checks.append(("p95", fast))
    lines.append(line)
    checks.append(("simulator", simulator_ok))
    lines.append(
        f"| every simulated agent's reports admitted (the simulator exited 0) | {simulator_said or 'no summary'} | "
        f"{'PASS' if simulator_ok else '**FAIL**'} |"
    )

    steady_backlog, line = _backlog(samples)
    checks.append(("backlog", steady_backlog))
    lines.append(line)

    warm_s = min(60.0, total_s / 5)
    pools = {k for s in samples for k in s.rss_mb if POOL in k}
    rss = [_pool_as_one(s.rss_mb) for s in samples]
    steady = [r for s, r in zip(samples, rss, strict=True) if s.t_s >= warm_s]
    for name in sorted({k for r in rss for k in r}):
        series = [r[name] for r in steady if name in r]
        every = [r[name] for r in rss if name in r]
        if len(series) < 4:
            continue
        k = max(2, len(series) // 10)
        start, end = median(series[:k]), median(series[-k:])
        growth = end - start
        flat = growth <= max(FLAT_MB, 0.05 * start)
        under = max(every) < RSS_LIMIT_MB
        checks.append((name, flat and under))
        worker = name.removesuffix(f": {POOL_ALL}")
        count = sum(1 for k in pools if k.startswith(worker + POOL))
        seen = f" ({count} pool processes over the run)" if name.endswith(POOL_ALL) else ""
        lines.append(
            f"| RSS of {name}{seen} flat and under {RSS_LIMIT_MB:.0f} MB | after {warm_s:.0f} s warm-up "
            f"{start:.1f} MB -> {end:.1f} MB at the end ({growth:+.1f} MB); max {max(every):.1f} MB | "
            f"{'PASS' if flat and under else '**FAIL**'} |"
        )

    span = samples[-1].t_s - samples[0].t_s if len(samples) > 1 else 1.0
    machine = _busy(samples[-1].machine) - _busy(samples[0].machine)
    ours = samples[-1].cpu_s - samples[0].cpu_s
    sim = samples[-1].sim_cpu_s - samples[0].sim_cpu_s
    cores = ours / span
    checks.append(("cpu", cores < CPU_LIMIT_CORES))
    lines.append(
        f"| the pipeline under {CPU_LIMIT_CORES:g} core | every pipeline process together (pool processes included) "
        f"{cores:.2f} cores | {'PASS' if cores < CPU_LIMIT_CORES else '**FAIL**'} |"
    )
    lines += [
        "",
        f"Machine load during the run (shared with other work): load average {mean(s.load1 for s in samples):.1f} "
        f"(max {max(s.load1 for s in samples):.1f}) on {os.cpu_count()} cores; CPU busy {machine / span:.2f} cores, "
        f"of which the pipeline processes {ours / span:.2f}, the simulator {sim / span:.2f}, everything else "
        f"{max(0.0, machine - ours - sim) / span:.2f}.",
    ]
    passed = all(ok for _, ok in checks)
    return Verdict(passed, lines)


def _backlog(samples: list[Sample]) -> tuple[bool, str]:
    """The backlog's check: no more waiting in the run's last third than in its first, and where the most waited."""
    third = max(1, len(samples) // 3)
    first, last = [s.backlog for s in samples[:third]], [s.backlog for s in samples[-third:]]
    grew = mean(last) > mean(first) + 1.0
    peak = max(samples, key=lambda s: s.backlog)
    held = ", ".join(f"{q} {n}" for q, n in sorted(peak.waiting.items(), key=lambda kv: -kv[1]) if n)
    return not grew, (
        f"| queue backlog did not grow | waiting messages (all pipeline queues): mean {mean(first):.2f} in the first "
        f"third, {mean(last):.2f} in the last; max {peak.backlog}{f' ({held})' if held else ''} at "
        f"{peak.t_s:.0f} s; being worked on (unacked) max "
        f"{max(s.unacked for s in samples)} | {'PASS' if not grew else '**FAIL**'} |"
    )


def _stages(done: list[Cycle], p95: float) -> tuple[bool, str]:
    """The end-to-end p95 bound, with each stage's p95 to say where the time went."""
    fast = bool(done) and p95 < P95_LIMIT_S
    collect = _p95([d / 1000 for _, d, _, _ in done])
    persist = _p95([(p - s).total_seconds() - d / 1000 for s, d, _, p in done])
    aggregate = _p95([(a - p).total_seconds() for _, _, a, p in done if a is not None])
    return fast, (
        f"| end-to-end p95 under {P95_LIMIT_S:g} s | p95 {p95:.2f} s; per stage, p95: collection {collect:.2f} s, "
        f"then stored {persist:.2f} s, then aggregated {aggregate:.2f} s | {'PASS' if fast else '**FAIL**'} |"
    )


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))] if values else 0.0


def _where(starts: list[datetime], gaps: list[float], since: datetime, interval_s: float) -> str:
    """When the skipped ticks were, in seconds from the start of the run."""
    at = [f"{(starts[i] - since).total_seconds():.0f} s" for i, g in enumerate(gaps) if g > 1.5 * interval_s]
    return f" (after the cycle started at {', '.join(at[:5])})" if at else ""


def subsection(agents: int) -> str:
    return f"### {agents:,} agents"


def write_section(verdict: Verdict, agents: int, path: Any = BENCHMARKS_MD, commit: str | None = None) -> None:
    """Replace (or add) the run's part of the Soak section (one per fleet size), which stays the last section of
    BENCHMARKS.md; the other sizes' parts are kept."""
    commit = current_commit() if commit is None else commit
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    head, _, old = text.partition(f"\n{SECTION}\n")
    parts = _parts(old)
    parts[agents] = "\n".join(
        [
            subsection(agents),
            "",
            f"Written by the last full run at this size ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}).",
            "",
            *verdict.lines,
            "",
            f"Result: **{'PASS' if verdict.passed else 'FAIL'}**.",
        ]
    )
    intro = (
        "`make soak` runs `vsmmon up` and `vsmmon simulate --profile mixed` against it for 10 minutes "
        "(`SOAK_AGENTS`, default 1,000; `SOAK_SECONDS`, default 600), samples every 5 s, and checks the issues' "
        "criteria; exit code 0 when all pass. Each fleet size below is the last full run's, written by it."
    )
    body = "\n\n".join([SECTION, intro, *(parts[n] for n in sorted(parts))])
    path.write_text(f"{head.rstrip(chr(10))}\n\n{body}\n")


def _parts(section: str) -> dict[int, str]:
    """The per-size parts of an existing Soak section, by agent count (a section of the older, single-run form
    is dropped: its run is retaken)."""
    parts: dict[int, str] = {}
    for chunk in section.split("\n### ")[1:]:
        title, _, rest = chunk.partition("\n")
        count = title.removesuffix(" agents").replace(",", "")
        if count.isdigit():
            parts[int(count)] = f"### {title}\n{rest}".rstrip("\n")
    return parts
