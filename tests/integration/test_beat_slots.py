"""Two `vsmmon beat` processes: each run is sent once; when one is SIGKILLed the other's next run leaves
no gap longer than one interval; restarted, it sends no duplicate."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import poll
from vsmmon import names
from vsmmon.config import Settings

RUN_S = float(os.environ.get("VSMMON_TEST_BEAT_S", "12"))
INTERVAL_S = 2.0
SLACK_S = 0.6  # a beat wakes at the slot's start; its send and Redis add a little


def start_beat(settings: Settings, name: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSMMON_")}
    env.update(
        VSMMON_BROKER_URL=settings.require("broker_url"), VSMMON_DATABASE_URL=settings.sqlalchemy_url(),
        VSMMON_DATA_DIR=str(tmp_path / name), VSMMON_COLLECT_INTERVAL_S=str(INTERVAL_S),
    )  # fmt: skip
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vsmmon", "beat"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    return proc, log


def arrivals(client: redis.Redis, span_s: float) -> list[float]:
    """Monotonic times at which a collection was queued on vsm.collect, watched for `span_s`."""
    seen, times = client.llen(names.COLLECT_QUEUE), []
    end = time.monotonic() + span_s
    while time.monotonic() < end:
        now = client.llen(names.COLLECT_QUEUE)
        times += [time.monotonic()] * (now - seen)
        seen = now
        time.sleep(0.02)
    return times


@pytest.mark.timeout(RUN_S * 3 + 120)
def test_two_beats_send_each_run_once_and_a_killed_one_leaves_no_gap(
    settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    beats = {name: start_beat(settings, name, tmp_path) for name in ("beat-a", "beat-b")}
    try:
        poll(lambda: client.llen(names.COLLECT_QUEUE) > 0, deadline_s=30, what="a first scheduled collection")
        both = arrivals(client, RUN_S)  # both beats tick on the same grid; each slot is claimed by one
        gaps = [b - a for a, b in itertools.pairwise(both)]
        assert len(both) == pytest.approx(RUN_S / INTERVAL_S, abs=1.5), both  # doubled would be ~2x
        assert min(gaps) > INTERVAL_S / 2, gaps  # never two in one slot
        proc, _ = beats["beat-a"]
        # killed mid-slot, as a crash almost always is: `both` ends on a slot's start (it began at an arrival and
        # lasts whole intervals), where a kill could land between a claim and its send and lose that one run
        time.sleep(max(0.0, both[-1] + INTERVAL_S / 2 - time.monotonic()))
        os.killpg(proc.pid, signal.SIGKILL)  # no goodbye
        proc.wait(timeout=10)
        killed_at = time.monotonic()
        alone = arrivals(client, RUN_S)
        gaps = [b - a for a, b in itertools.pairwise([both[-1], *alone])]
        assert max(gaps) <= INTERVAL_S + SLACK_S, gaps  # no gap longer than one interval
        assert min(gaps) > INTERVAL_S / 2, gaps
        assert alone[0] - killed_at <= INTERVAL_S + SLACK_S
        beats["beat-a"] = start_beat(settings, "beat-a", tmp_path)  # restarted: no duplicate, no gap
        again = arrivals(client, RUN_S)
        gaps = [b - a for a, b in itertools.pairwise([alone[-1], *again])]
        assert min(gaps) > INTERVAL_S / 2
        assert max(gaps) <= INTERVAL_S + SLACK_S, gaps
    finally:
        for proc, _ in beats.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
        client.close()
