"""What S3 sees of the fleet: candidates from the registry and inspect `stats` read as worker views."""

from datetime import UTC, datetime
from uuid import uuid4

from vsmmon.control.views import candidates, last_actions, saturation, shown, worker_view, worker_views
from vsmmon.models import AgentInfo, AgentKind, AgentStatus
from vsmmon.store.alert_records import ControlAction

T = datetime(2026, 12, 3, 12, tzinfo=UTC)


def agent(agent_id: str, *, kind: str = "celery_worker", status: str = "online", queues: tuple[str, ...] = ("q",),
          active: float = 0.0, concurrency: float = 4.0) -> AgentInfo:  # fmt: skip
    metrics = {"active": active, "concurrency": concurrency}
    return AgentInfo(agent_id, kind, "h", "v", status, T, T, T, 5.0, "", queues, metrics, {})  # type: ignore[arg-type]


def test_a_stored_agents_text_becomes_the_enums() -> None:
    a = agent("w1")
    assert a.kind is AgentKind.CELERY_WORKER
    assert a.status is AgentStatus.ONLINE
    assert a.live
    assert not agent("w2", status="offline").live


def test_candidates_are_live_workers_of_the_target_busiest_first() -> None:
    fleet = [
        agent("idle", active=0), agent("busy", active=4), agent("half", active=2),
        agent("gone", status="offline", active=4), agent("api", kind="api", active=4),
        agent("other", queues=("emails",), active=3),
    ]  # fmt: skip
    assert [c[0] for c in candidates(fleet, "queue q")] == ["busy", "half", "idle"]
    assert candidates(fleet, "half") == [("half", ("q",), 0.5, None)]  # no queue read: its backlog unknown
    assert [c[0] for c in candidates(fleet, "S3")] == ["busy", "other", "half", "idle"]  # a system: every live one
    assert candidates(fleet, "queue nobody-consumes") == []
    queues = [AgentInfo("queue:q", "queue", "", "", "online", T, T, T, 5.0, "", (), {"messages": 7.0}, {}),  # type: ignore[arg-type]
              AgentInfo("queue:emails", "queue", "", "", "online", T, T, T, 5.0, "", (), {"messages": 0.0}, {})]  # type: ignore[arg-type]  # fmt: skip
    assert {c[0]: c[3] for c in candidates([*fleet, *queues], "S3")} == {"busy": 7.0, "other": 0.0, "half": 7.0,
                                                                          "idle": 7.0}  # fmt: skip


def test_saturation_without_a_concurrency_is_zero() -> None:
    assert saturation({"active": 3.0}) == 0.0
    assert saturation({"active": 3.0, "concurrency": 4.0}) == 0.75


def test_stats_replies_read_as_views() -> None:
    prefork = {"pool": {"implementation": "celery.concurrency.prefork:TaskPool", "processes": [1, 2, 3]}}
    scaled = {"pool": {"implementation": "celery.concurrency.prefork:TaskPool", "processes": [1]},
              "autoscaler": {"max": 8, "min": 1}}  # fmt: skip
    threads = {"pool": {"implementation": "celery.concurrency.thread:TaskPool", "max-concurrency": 5}}
    assert worker_view("w", prefork, ("q",), 0.5).processes == 3
    assert worker_view("w", scaled, (), None).autoscale == (8, 1)
    view = worker_view("w", threads, (), None)
    assert (view.pool, view.processes) == ("thread", 5)
    known = [("a", ("q",), 0.1, 3.0), ("b", ("q",), 0.2, None), ("c", (), None, None)]
    assert [(v.hostname, v.backlog) for v in worker_views(known, {"a": prefork, "b": "garbage"})] == [("a", 3.0)]
    assert shown(None) == {}
    assert shown(worker_view("w", scaled, (), None)) == {"processes": 1, "pool": "prefork", "autoscale": [8, 1]}


def test_the_cooldown_counts_only_applied_actions_newest_first() -> None:
    later, earlier = datetime(2026, 12, 3, 12, 5, tzinfo=UTC), T

    def done(target: str, at: datetime, action: str = "pool_grow", dry_run: bool = False) -> ControlAction:
        return ControlAction(uuid4(), at, target, action, {"n": 1}, "why", None, dry_run)

    actions = [done("w1", later), done("w1", earlier), done("w2", later, dry_run=True), done("w3", later, "none")]
    assert last_actions(actions) == {"w1": later}
