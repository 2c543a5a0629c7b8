"""`python -m bench.accuracy` (`make accuracy`): how right the numbers that drive action are, on data vsmmon never saw.

Pure simulation, no services (about a minute): memory series of 5 s samples with white or AR(1) noise, fed
to the analysis stage's own functions, judged against the truth the simulation knows. Writes the
"Accuracy" section of BENCHMARKS.md (before "Scenarios"; the rest of the file is kept).

- time to the limit: a leak toward 1 GiB from 300 MB, starting 2 or 5 min before the end of a stable hour at
  1 MB/s (fresh), or leaking 0.1 MB/s for the whole hour (old): the estimate's error against the truth, and
  how often it is trusted enough to warn (`vsmmon.analyse.growth`), beside a line over the whole hour (what the
  analysis did before);
- prediction intervals (`vsmmon.analyse.forecast.forecast`): how often the 95 % interval holds the value
  5 min and 1 h ahead, on white and AR(1) (phi 0.7) noise, 61 and 720 points;
- change points: how often noise alone raises one (false alarms, per window of 61 points = 5 min and of
  720 = 1 h), and how often a shift of 3 noise sigmas in the window's last quarter is found — for the
  memory regime's bend (`growth.last_bend`) and the trend stage's level shift (`trends.change_point`,
  `change_at`), and per series-hour as the analysis reads the trend stage's windows.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.report import BENCHMARKS_MD, read_machine
from vsmmon.analyse.forecast import forecast, time_to_limit
from vsmmon.analyse.growth import growth, last_bend
from vsmmon.analyse.trends import change_point

SECTION = "## Accuracy"
MB = 1024 * 1024
LIMIT = 1024 * MB
STEP_S = 5.0
NOISE = 2.0 * MB


def noise(rng: random.Random, n: int, phi: float, sigma: float = NOISE) -> list[float]:
    """AR(1) noise of marginal standard deviation `sigma` (white for phi = 0)."""
    out, e = [], rng.gauss(0.0, sigma)
    for _ in range(n):
        out.append(e)
        e = phi * e + math.sqrt(1.0 - phi * phi) * rng.gauss(0.0, sigma)
    return out


def leak_series(
    rng: random.Random, seconds_in: float, rate: float, phi: float
) -> tuple[list[float], list[float], float]:
    """The last hour of samples `seconds_in` after a leak of `rate` bytes/s from 300 MB started, and the truth:
    the seconds left to the limit. Stable memory before the leak (a leak older than the hour fills it)."""
    ts = [seconds_in - STEP_S * i for i in range(719, -1, -1)]
    e = noise(rng, len(ts), phi)
    vs = [300 * MB + max(0.0, t) * rate + e[i] for i, t in enumerate(ts)]
    return ts, vs, (LIMIT - 300 * MB - seconds_in * rate) / rate


LEAKS = (  # (what, rate, seconds into the leak)
    ("fresh: 1 MB/s from minute 58", 1.0 * MB, 120.0),
    ("fresh: 1 MB/s from minute 55", 1.0 * MB, 300.0),
    ("old: 0.1 MB/s for the whole hour", 0.1 * MB, 3600.0),
)


def time_to_limit_rows(trials: int) -> list[str]:
    rows = []
    for what, rate, seconds_in in LEAKS:
        for phi in (0.0, 0.7):
            rng = random.Random(int(seconds_in) + int(10 * phi))
            errors, old_errors, trusted = [], [], 0
            for _ in range(trials):
                ts, vs, truth = leak_series(rng, seconds_in, rate, phi)
                g = growth(ts, vs, LIMIT)
                if g is not None and g.estimate_s is not None:
                    errors.append(abs(g.estimate_s - truth) / truth)
                trusted += g is not None and g.time_to_limit_s is not None
                whole = time_to_limit(ts, vs, LIMIT)
                old_errors.append(math.inf if whole is None else abs(whole - truth) / truth)
            truth_s = (LIMIT - 300 * MB - seconds_in * rate) / rate
            rows.append(
                f"| {what} | {phi:g} | {truth_s:,.0f} s | {_pct(median(errors))} | {_pct(quantile(errors, 0.9))} "
                f"| {trusted / trials:.0%} | {_pct(median(old_errors))} |"
            )  # fmt: skip
    return rows


def coverage_rows(trials: int) -> list[str]:
    rows = []
    for n in (61, 720):
        for phi in (0.0, 0.7):
            cells = []
            for horizon_s in (300.0, 3600.0):
                rng = random.Random(n + int(horizon_s) + int(10 * phi))
                ahead, inside = int(horizon_s / STEP_S), 0
                for _ in range(trials):
                    e = noise(rng, n + ahead, phi, 1e5)
                    ts = [STEP_S * i for i in range(n + ahead)]
                    ys = [1e8 + 2e3 * t + e[i] for i, t in enumerate(ts)]
                    f = forecast(ts[:n], ys[:n], horizon_s)
                    inside += f is not None and f.lower <= ys[n - 1 + ahead] <= f.upper
                cells.append(f"{inside / trials:.1%}")
            target = "95 ± 3 %" if phi == 0.0 else ">= 85 %"
            rows.append(f"| {n} | {phi:g} | {cells[0]} | {cells[1]} | {target} |")
    return rows


def change_rows(trials: int) -> list[str]:
    detectors: dict[str, Callable[[Sequence[float], Sequence[float]], bool]] = {
        "memory regime bend (`growth.last_bend`)": lambda ts, vs: last_bend(ts, vs) > 0,
        "trend level shift (`trends.change_point`)": lambda ts, vs: change_point(vs) is not None,
    }
    rows = []
    for name, found in detectors.items():
        for n in (61, 720):
            cells = []
            for phi in (0.0, 0.7):
                rng = random.Random(n + int(10 * phi))
                ts = [STEP_S * i for i in range(n)]
                alarms = sum(found(ts, [3e8 + x for x in noise(rng, n, phi)]) for _ in range(trials))
                shift_at = n - n // 4
                shift = [3 * NOISE if i >= shift_at else 0.0 for i in range(n)]
                hits = sum(found(ts, [3e8 + x + d for x, d in zip(noise(rng, n, phi), shift, strict=True)])
                           for _ in range(trials))  # fmt: skip
                cells += [f"{alarms / trials:.1%}", f"{hits / trials:.0%}"]
            rows.append(f"| {name} | {n} | {' | '.join(cells)} |")
    return rows


def series_hour_rows(trials: int) -> list[str]:
    """False alarms of the trend stage's change point per series-hour: an hour of noise read as the analysis reads
    it (a 5 min window of 61 samples every minute: 60 overlapping windows); any change point is a false alarm."""
    cells = []
    for phi in (0.0, 0.7, 0.9):
        rng = random.Random(7000 + int(10 * phi))
        alarmed = 0
        for _ in range(trials):
            x = [3e8 + e for e in noise(rng, 780, phi)]
            alarmed += any(change_point(x[i : i + 61]) is not None for i in range(0, 720, 12))
        cells.append(f"{alarmed / trials:.1%}")
    return [f"| {' | '.join(cells)} | < 1 % (white and AR(1) 0.7) |"]


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pct(x: float) -> str:
    return "never" if math.isinf(x) else "n/a" if math.isnan(x) else f"{x:.0%}"


def section(trials: int) -> str:
    machine = read_machine()
    lines = [
        SECTION,
        "",
        "`make accuracy` (`python -m bench.accuracy`) checks the numbers that drive action against the truth of "
        "simulated series (5 s samples; white or AR(1) noise of 2 MB; `bench/accuracy.py`). Last run: "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {trials} series per cell, on {machine.describe()}.",
        "",
        "**Time to the limit** of a leak toward 1 GiB from 300 MB (error of the estimate against the truth; "
        "*trusted*: share of series where it is firm enough to warn and feed S4, i.e. the growth persists and the "
        "limit is within 4x the regime's span; last column: a line over the whole hour, as before):",
        "",
        "| leak | AR(1) phi | truth: time left | median error | 90th pct error | trusted | whole-hour line, median "
        "error |",
        "|---|---|---|---|---|---|---|",
        *time_to_limit_rows(trials),
        "",
        "**95 % prediction intervals**: share of series whose value 5 min / 1 h after the last sample falls inside:",
        "",
        "| points | AR(1) phi | 5 min ahead | 1 h ahead | target |",
        "|---|---|---|---|---|",
        *coverage_rows(trials),
        "",
        "**Change points**: false alarms on noise alone, and detection of a 3-sigma level shift in the window's "
        "last quarter, per window (61 points: 5 min; 720: 1 h):",
        "",
        "| detector | points | false alarms, white | found, white | false alarms, AR(1) 0.7 | found, AR(1) 0.7 |",
        "|---|---|---|---|---|---|",
        *change_rows(trials),
        "",
        "A bend only shortens the memory regime (less evidence, never a leak by itself). The trend stage's level "
        "shift is the CUSUM test with the long-run variance of AR(1) residuals and a critical value grown for few "
        "effective points (`trends.change_point`), stored as `trends.change_at`. On AR(1) 0.7 noise a 5 min window "
        "holds about 11 effective points: a 3-sigma shift in its last 75 s is within the noise there (the 720-point "
        "rows show what an hour of points finds).",
        "",
        "**Change points per series-hour** (the trend stage reads a 5 min window every minute: 60 overlapping "
        "windows an hour; an hour with any change point on noise alone is a false alarm):",
        "",
        "| white | AR(1) 0.7 | AR(1) 0.9 | target |",
        "|---|---|---|---|",
        *series_hour_rows(trials),
    ]
    return "\n".join(lines) + "\n"


def rewrite(text: str, body: str) -> str:
    """`text` with its Accuracy section replaced by `body`, or `body` put before Scenarios (or Soak, or last)."""
    start = text.find(f"\n{SECTION}\n")
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION) + 2)
        return text[: start + 1] + body + ("" if end < 0 else text[end:])
    for anchor in ("\n## Scenarios\n", "\n## Soak\n"):
        if (at := text.find(anchor)) >= 0:
            return text[: at + 1] + body + text[at:]
    return text.rstrip("\n") + "\n\n" + body


def main(argv: Sequence[str] = sys.argv[1:], path: Path = BENCHMARKS_MD) -> int:
    trials = 40 if "--quick" in argv else 300
    body = section(trials)
    print(body)
    if "--quick" not in argv:
        path.write_text(rewrite(path.read_text() if path.exists() else "# Benchmarks\n", body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
