"""`vsmmon up`'s workers consume every pipeline queue, each queue in exactly one of them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from vsmmon import names
from vsmmon.config import load_settings
from vsmmon.local.up import _services


def test_up_runs_a_worker_for_every_queue_and_no_queue_in_two_workers(tmp_path: Path) -> None:
    settings = load_settings(
        {}, broker_url="redis://127.0.0.1:1/0", database_url="postgresql+psycopg://x@127.0.0.1:1/x"
    )
    workers = [c for c in _services(settings, tmp_path / "logs") if "worker" in c.argv]
    roles = [c.argv[list(c.argv).index("--role") + 1] for c in workers]
    consumed = Counter(q for role in roles for q in names.ROLES[role])
    assert sorted(consumed) == sorted(names.QUEUES)  # none left without a consumer
    assert [q for q, n in consumed.items() if n > 1] == []  # a task reserved by a busy pool waits for it
    assert set(roles) == {"collector", "analysis", "control"}  # no alert waits behind a window close
