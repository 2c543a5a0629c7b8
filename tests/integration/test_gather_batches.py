"""The health and analysis inputs read the real-time window a batch of agents at a time (bounded memory):
the figures are the same whatever the batch size, on real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from vsmmon.analyse import inputs as analysis_inputs
from vsmmon.config import Settings
from vsmmon.health import inputs
from vsmmon.models import AgentInfo, AgentKind, AgentReport, AgentStatus, Collection
from vsmmon.store.realtime import RealtimeWindow

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
INTERVAL_S = 5.0
WORKERS, PUSHED = 7, 5


def info(agent_id: str, kind: AgentKind, queues: tuple[str, ...], metrics: dict[str, float]) -> AgentInfo:
    return AgentInfo(agent_id, kind, "h", "1", AgentStatus.ONLINE, T0, T0, T0 + timedelta(minutes=10), INTERVAL_S,
                     "", queues, metrics, {})  # fmt: skip


@pytest.fixture
def window(settings: Settings, clean_services: None) -> Iterator[RealtimeWindow]:
    client = redis.Redis.from_url(settings.require("redis_url"))
    window = RealtimeWindow(client, INTERVAL_S)
    for n in range(120):  # 10 min of a fleet whose workers differ in rate, pool and load
        reports = [
            AgentReport(f"celery@w{i}", AgentKind.CELERY_WORKER, "h", {
                "active": float((n + i) % 4), "concurrency": 4.0 + (i % 2) * (n > 60), "rss_bytes": 1e8 + n * i * 1e5,
                "tasks_succeeded_total": float(n * (i + 1)), "tasks_failed_total": float(n // (i + 2)),
                "task_runtime_p95_s": 0.1 * (i + 1), "cpu_percent": 10.0 + i, "uptime_s": 5.0 * n,
            }) for i in range(WORKERS)
        ] + [
            AgentReport(f"llm-{i}", AgentKind.LLM_WORKER, "h", {"active": 1.0, "rss_bytes": 2e8 + n * 1e6,
                                                                "tasks_succeeded_total": float(3 * n)})
            for i in range(PUSHED)
        ] + [AgentReport("queue:jobs", AgentKind.QUEUE, "", {"messages": float(200 - n)})]  # fmt: skip
        window.write(Collection(uuid.uuid4(), T0 + timedelta(seconds=n * INTERVAL_S), 1.0, tuple(reports)))
    yield window
    client.close()


def fleet() -> list[AgentInfo]:
    workers = [info(f"celery@w{i}", AgentKind.CELERY_WORKER, ("jobs",) if i % 3 else ("jobs", "other"),
                    {"active": 2.0, "concurrency": 4.0}) for i in range(WORKERS)]  # fmt: skip
    pushed = [info(f"llm-{i}", AgentKind.LLM_WORKER, (), {"active": 1.0}) for i in range(PUSHED)]
    return [*workers, *pushed, info("queue:jobs", AgentKind.QUEUE, (), {"messages": 81.0})]


def test_health_inputs_are_the_same_in_batches_of_any_size(
    window: RealtimeWindow, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = T0 + timedelta(seconds=119 * INTERVAL_S)
    whole = inputs.gather(fleet(), window, settings, now)
    assert len(whole.agents) == WORKERS + PUSHED
    [queue] = whole.queues
    assert queue.out_per_s is not None
    assert queue.out_per_s > 0
    assert set(whole.control.pool_series) == {f"celery@w{i}" for i in range(WORKERS)}
    assert all(a.succeeded_in_window for a in whole.agents)
    flows = inputs.queue_flows(fleet(), window, settings, now)
    assert flows == whole.queues
    for size in (1, 2, 5):
        monkeypatch.setattr(inputs, "BATCH_AGENTS", size)
        assert inputs.gather(fleet(), window, settings, now) == whole, size
        assert inputs.queue_flows(fleet(), window, settings, now) == flows, size


def test_analysis_inputs_are_the_same_in_batches_of_any_size(window: RealtimeWindow, settings: Settings) -> None:
    now = T0 + timedelta(seconds=119 * INTERVAL_S)
    operational = [a for a in fleet() if a.kind in inputs.OPERATIONAL]
    whole = analysis_inputs.read(operational, window.prefetch(analysis_inputs.wanted(operational)), INTERVAL_S,
                                 settings.memory_hard_bytes, now)  # fmt: skip
    assert len(whole.memory) == WORKERS + PUSHED
    assert all(len(m.series[1]) == 120 for m in whole.memory)
    for size in (1, 4):
        parts = [analysis_inputs.read(b, window.prefetch(analysis_inputs.wanted(b)), INTERVAL_S,
                                      settings.memory_hard_bytes, now)
                 for b in (operational[i : i + size] for i in range(0, len(operational), size))]  # fmt: skip
        assert [m for p in parts for m in p.memory] == whole.memory, size
        assert {k: v for p in parts for k, v in p.series.items()} == whole.series, size
