"""`python -m bench.collector_loop EVERY_S HOSTNAME…`: vsmmon's collection cycle on a fixed period, alone.

What the pipeline's collect task does each cycle, minus staging and persisting: `FleetPoller.ask` for
`vsm_metrics` (ending on the last expected reply) and `vsmmon.collector.collect` over the replies. One
JSON line per cycle on stdout; it runs until it is stopped. P8 measures the CPU of this process.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from vsmmon.collect.collector import collect
from vsmmon.workers.fleet import FleetPoller, control_app

TIMEOUT_S = 1.5
"""The pipeline's default `VSMMON_COLLECT_TIMEOUT_S`."""
SHARD_SIZE = 200


def main(argv: Sequence[str]) -> None:
    every_s, expected = float(argv[0]), sorted(argv[1:])
    poller = FleetPoller(control_app(os.environ["VSMMON_BENCH_REDIS_URL"]), shard_size=SHARD_SIZE)
    due = time.monotonic()
    while True:
        started = time.monotonic()
        replies = poller.ask("vsm_metrics", expected, timeout_s=TIMEOUT_S, everyone=False)
        duration_ms = (time.monotonic() - started) * 1000
        collection = collect(
            collection_id=uuid.uuid4(),
            now=datetime.now(UTC),
            duration_ms=duration_ms,
            host_reports=[],
            worker_replies=replies,
            expected_workers=expected,
            interval_s=every_s,
        )
        line = {"answered": len(replies), "samples": collection.sample_count, "ms": round(duration_ms, 1)}
        print(json.dumps(line), flush=True)
        due += every_s
        time.sleep(max(0.0, due - time.monotonic()))


if __name__ == "__main__":
    main(sys.argv[1:])
