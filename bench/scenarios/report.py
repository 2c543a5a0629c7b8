"""The scenarios' console lines and the "Scenarios" section of BENCHMARKS.md (the rest of the file is kept).

A run of some scenarios replaces their rows and keeps the others' (each row carries its counts, so
precision and recall are recomputed over the whole table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.report import BENCHMARKS_MD, Machine
from bench.scenarios.pipeline import COMPRESSION
from bench.scenarios.scenario import Outcome
from bench.scenarios.truth import Verdict

SECTION = "## Scenarios"
COLUMNS = ("scenario", "what happens", "duration", "must fire: fired? (time to detect)", "false positives",
           "missed", "allowed, fired", "S3 actions", "checks", "counts", "result", "run (UTC)")  # fmt: skip
COUNTS = re.compile(r"TP (\d+) · FP (\d+) · must (\d+)/(\d+)")
ROW = re.compile(r"^\| `([a-z_]+)` \|")
EXPLAINED = "### Why each false positive fired"
DEFAULTS = {"VSMMON_COLLECT_INTERVAL_S": 5, "VSMMON_HEALTH_INTERVAL_S": 30, "VSMMON_AUDIT_INTERVAL_S": 120,
            "VSMMON_ALERT_PENDING_S": 30, "VSMMON_ALERT_RESOLVE_AFTER_S": 60, "VSMMON_ALERT_COOLDOWN_S": 300,
            "VSMMON_ALERT_ESCALATE_AFTER_S": 900, "VSMMON_CONTROL_PERSIST_S": 60,
            "VSMMON_CONTROL_VERIFY_AFTER_S": 300, "VSMMON_CONTROL_COOLDOWN_S": 300}  # fmt: skip

INTRO = f"""\
{SECTION}

`make scenarios` (`python -m bench.scenarios`, or `python -m bench.scenarios NAME …` for some, `--list`
to list them) runs each scenario on its own vsmmon pipeline (`vsmmon worker --role all --concurrency 2`,
`vsmmon beat`, and `vsmmon serve` when agents push) against the machine's PostgreSQL (a fresh database
each, migrated) and Redis (a db index of its own, flushed), drives a real fleet (Celery worker
subprocesses of `bench/scenarios/fleet_app.py` with the plugin; `vsmmon simulate` for pushed agents)
through a fault or a planned change, and judges every alert that fired (a `firing` event in the
pipeline's history) and every S3 action against the scenario's labelled truth (`bench/scenarios/`):

- **must**: an alert type, target and minimum severity that must fire within a deadline after the fault;
  the time to detect is from the fault's injection to the alert's `firing` event;
- **allowed**: may fire or not (e.g. viability during an outage): neither a true nor a false positive;
- anything else that fires is a **false positive**, severity `info` included, and so is every instance
  of a condition that fired, resolved and fired again at the same severity (a flap), whatever its label;
- S3: `must act` (e.g. exactly one `pool_grow`) and `must not act` (by default any applied action).

Precision = true positives / every alert raised that is not allowed; recall = musts detected within their
deadline / musts. The exit code is 1 when a scenario misses a must, has a false positive, takes an action
it must not or fails a check (2 when one could not run), so CI can use it; `make test` does not run it.

Time is compressed so the suite fits in about half an hour: every lifecycle period is scaled like the
health interval (1/3), collection 5 s -> 2 s. What is not compressed: the analysis (every 60 s, fixed in
`beat_schedule.py`), the health stage's 5 min windows (sustained saturation, rates) and 10 min
oscillation window, the learned capacity's 1 h time constant, the recommendations' 15 min lifetime.
The long idle scenario (and the two leaks) run on a second pipeline beside the others.

| setting | default | scenarios |
|---|---|---|
""" + "\n".join(f"| `{k}` | {DEFAULTS[k]:g} | {v:g} |" for k, v in COMPRESSION.items()) + "\n"  # fmt: skip


@dataclass(frozen=True, slots=True)
class Counts:
    tp: int
    fp: int
    detected: int
    musts: int


def counts(v: Verdict) -> Counts:
    return Counts(len(v.true_positives), len(v.false_positives), len(v.musts) - len(v.missed), len(v.musts))


def must_cell(v: Verdict) -> str:
    parts = []
    for m in v.musts:
        wish = f", wish <= {m.expect.wish_s:g} s" if m.expect.wish_s is not None else ""
        if m.detected_s is not None:
            got = f"yes, {m.detected_s:.0f} s{wish}"
        elif m.first_s is not None:
            got = f"late: {m.first_s:.0f} s > {m.expect.deadline_s:g} s"
        else:
            got = "no"
        parts.append(f"{m.expect.describe()} within {m.expect.deadline_s:g} s: **{got}**")
    return "; ".join(parts) or "none (no alert may fire)"


def actions_cell(v: Verdict, must_act: str, must_not: str) -> str:
    taken = [f"{a.action} {a.target} at {a.at:%H:%M:%S} ({label})" for a, label in v.actions]
    rules = f"must: {must_act or '-'}; must not: {must_not or '-'}"
    misses = f"; **missed: {', '.join(v.act_misses)}**" if v.act_misses else ""
    return f"{'; '.join(taken) or 'none'} [{rules}]{misses}"


def row(o: Outcome, when: datetime) -> str:
    s = o.scenario
    minutes = f"{o.duration_s / 60:.1f} min"
    if o.verdict is None:
        cells = [f"`{s.name}`", s.what, minutes, f"**error**: {o.error}", "", "", "", "", "", "", "**ERROR**",
                 f"{when:%Y-%m-%d %H:%M}"]  # fmt: skip
        return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"
    v, c = o.verdict, counts(o.verdict)
    fps = "; ".join(f"{x.alert.describe()}{' (flap)' if x.label == 'flap' else ''} at {fault_time(x.after_fault_s)}"
                    for x in v.false_positives) or "none"  # fmt: skip
    missed = "; ".join(m.expect.describe() for m in v.missed) or "none"
    allowed = "; ".join(x.alert.describe() for x in v.labelled if x.label == "allowed") or "none"
    checks = "; ".join(f"{ch.name}: {'ok' if ch.passed else '**failed**'} ({ch.detail})" for ch in v.checks)
    cpu = f"; pipeline CPU {o.pipeline_cpu_s / o.duration_s:.2f} cores, machine {o.machine_busy_cores:.2f}"
    cells = [
        f"`{s.name}`", f"{s.what}; at the fault: {o.fault}" if o.fault else s.what, minutes, must_cell(v), fps,
        missed, allowed,
        actions_cell(v, ", ".join(x.describe() for x in s.must_act),
                     ", ".join(x.describe() for x in s.must_not_act)),
        (checks or "-") + cpu, f"TP {c.tp} · FP {c.fp} · must {c.detected}/{c.musts}",
        f"**{'PASS' if o.passed else 'FAIL'}**", f"{when:%Y-%m-%d %H:%M}",
    ]  # fmt: skip
    return "| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |"


def fault_time(after_s: float | None) -> str:
    return "start" if after_s is None else f"{after_s:+.0f} s from the fault"


def console_lines(o: Outcome) -> list[str]:
    name = o.scenario.name
    if o.verdict is None:
        return [f"== {name}: ERROR after {o.duration_s:.0f} s: {o.error}"]
    v, c = o.verdict, counts(o.verdict)
    lines = [f"== {name}: {'PASS' if o.passed else 'FAIL'} in {o.duration_s:.0f} s; TP {c.tp}, FP {c.fp}, "
             f"musts {c.detected}/{c.musts}; pipeline CPU {o.pipeline_cpu_s / o.duration_s:.2f} cores, "
             f"machine busy {o.machine_busy_cores:.2f} cores"]  # fmt: skip
    lines += [f"   must   {m.expect.describe()}: {m.detected_s if m.detected_s is not None else 'MISSED'}"
              f" (first {m.first_s})" for m in v.musts]  # fmt: skip
    lines += [f"   {x.label:<7} {x.alert.describe()} at {fault_time(x.after_fault_s)}" for x in v.labelled]
    lines += [f"   S3     {a.action} {a.target} ({label})" for a, label in v.actions]
    lines += [f"   miss   {m}" for m in v.act_misses]
    lines += [f"   check  {ch.name}: {'ok' if ch.passed else 'FAILED'} ({ch.detail})" for ch in v.checks]
    lines += [f"   note   {n}" for n in o.notes]
    return lines


def summary(rows: list[str]) -> str:
    total = Counts(0, 0, 0, 0)
    for line in rows:
        if m := COUNTS.search(line):
            tp, fp, det, musts = (int(g) for g in m.groups())
            total = Counts(total.tp + tp, total.fp + fp, total.detected + det, total.musts + musts)
    raised = total.tp + total.fp
    precision = f"{total.tp / raised:.2f}" if raised else "n/a"
    recall = f"{total.detected / total.musts:.2f}" if total.musts else "n/a"
    return (f"**Over the suite: alert precision {precision}** ({total.tp} true positives of {raised} alerts raised "
            f"that were not allowed), **recall {recall}** ({total.detected} of {total.musts} expected alerts "
            "fired within their deadline).")  # fmt: skip


def rewrite(outcomes: list[Outcome], machine: Machine, when: datetime, wall_s: float, *, complete: bool,
            path: Path = BENCHMARKS_MD) -> None:  # fmt: skip
    """Replace the Scenarios section (before the Soak section, which `make soak` keeps last), or insert it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    before, old = split(text)
    kept = {} if complete else {m.group(1): line for line in old.splitlines() if (m := ROW.match(line))}
    kept.update({o.scenario.name: row(o, when) for o in outcomes})
    explained = {} if complete else old_explanations(old)
    explained.update({o.scenario.name: list(o.explanations) for o in outcomes})
    order = [name for name in kept if name not in {o.scenario.name for o in outcomes}] + [
        o.scenario.name for o in outcomes
    ]
    rows = [kept[n] for n in order]
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
    run = "every scenario" if complete else "some scenarios (the other rows are kept from earlier runs)"
    lines = [INTRO, f"Last run: {when:%Y-%m-%d %H:%M} UTC, {run}, {wall_s / 60:.1f} min wall time, on "
             f"{machine.describe()} (shared with other work).", "", header, *rows, "", summary(rows), "",
             EXPLAINED, ""]  # fmt: skip
    bullets = [f"- `{n}`: {e}" for n in order for e in explained.get(n, [])]
    lines += bullets or ["None."]
    section = "\n".join(lines).rstrip() + "\n"
    path.write_text(f"{before.rstrip()}\n\n{section}{after_section(text)}")


def split(text: str) -> tuple[str, str]:
    """(the file before the Scenarios section, the section's old text); before the Soak section when new."""
    start = text.find(f"\n{SECTION}\n")
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION) + 2)
        return text[:start], text[start : end if end >= 0 else len(text)]
    soak = text.find("\n## Soak\n")
    return (text[:soak], "") if soak >= 0 else (text, "")


def after_section(text: str) -> str:
    """What follows the Scenarios section (the Soak section), or follows where it goes."""
    start = text.find(f"\n{SECTION}\n")
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION) + 2)
        return "" if end < 0 else text[end:]
    soak = text.find("\n## Soak\n")
    return "" if soak < 0 else text[soak:]


def old_explanations(old: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in old.split(EXPLAINED, 1)[-1].splitlines() if EXPLAINED in old else []:
        if m := re.match(r"^- `([a-z_]+)`: (.*)$", line):
            found.setdefault(m.group(1), []).append(m.group(2))
    return found
