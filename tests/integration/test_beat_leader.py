"""Two `vsmmon beat` processes: exactly one schedules; when it dies the other takes over within 30 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import poll
from vsmmon import queues
from vsmmon.config import Settings

RUN_S = float(os.environ.get("VSMMON_TEST_BEAT_S", "120"))
INTERVAL_S = 2.0


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


@pytest.mark.timeout(RUN_S + 120)
def test_two_beats_schedule_once_per_interval_and_the_standby_takes_over(
    settings: Settings, clean_services: None, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    beats = [start_beat(settings, name, tmp_path) for name in ("beat-a", "beat-b")]
    try:
        poll(lambda: client.llen(queues.COLLECT) > 0, deadline_s=30, what="a first scheduled collection")
        start, first = time.monotonic(), client.llen(queues.COLLECT)
        time.sleep(RUN_S)  # the measured span: both beats run, one schedules
        scheduled = client.llen(queues.COLLECT) - first
        elapsed = time.monotonic() - start
        expected = elapsed / INTERVAL_S
        assert expected - 2 <= scheduled <= expected + 2, (scheduled, expected)  # doubled would be ~2x

        leaders = [(p, log) for p, log in beats if b"now leads" in log.read_bytes()]
        assert len(leaders) == 1, [log.read_text()[-500:] for _, log in beats]
        leader, _ = leaders[0]
        os.killpg(leader.pid, signal.SIGKILL)  # no chance to release the lock
        leader.wait(timeout=10)
        killed_at, before = time.monotonic(), client.llen(queues.COLLECT)
        poll(lambda: client.llen(queues.COLLECT) > before, deadline_s=30, what="the standby to schedule")
        assert time.monotonic() - killed_at <= 30
    finally:
        for proc, _ in beats:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
        client.close()
