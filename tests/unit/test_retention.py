from datetime import UTC, datetime, timedelta

from vsmmon.config import load_settings
from vsmmon.store.retention import Partition, Policy, floor_to, partition_name, plan, policies

NOW = datetime(2026, 11, 26, 12, 34, 56, tzinfo=UTC)
H = timedelta(hours=1)
SAMPLES = Policy("metric_samples", "ts", H, "hour")


def hourly(start: datetime) -> Partition:
    return Partition("metric_samples", partition_name("metric_samples", start, "hour"), start, start + H)


def test_partitions_are_created_from_the_current_one_through_the_horizon() -> None:
    todo = plan([SAMPLES], [], NOW, ahead=3 * H)
    starts = [p.start for p in todo.create]
    assert starts == [floor_to(NOW, "hour") + i * H for i in range(4)]
    assert todo.create[0].name == "metric_samples_p2026112612"
    assert todo.drop == ()


def test_existing_partitions_are_not_created_again() -> None:
    current = floor_to(NOW, "hour")
    todo = plan([SAMPLES], [hourly(current), hourly(current + H)], NOW, ahead=3 * H)
    assert [p.start for p in todo.create] == [current + 2 * H, current + 3 * H]


def test_only_partitions_wholly_past_retention_are_dropped() -> None:
    current = floor_to(NOW, "hour")
    old, edge, young = hourly(current - 3 * H), hourly(current - 2 * H), hourly(current - H)
    todo = plan([SAMPLES], [old, edge, young], NOW, ahead=H)
    # cutoff 11:34:56: [09:00, 10:00) and [10:00, 11:00) end before it; [11:00, 12:00) still holds young rows
    assert todo.drop == (old, edge)


def test_a_hold_keeps_partitions_past_retention_from_its_time_on() -> None:
    current = floor_to(NOW, "hour")
    old, held, young = hourly(current - 3 * H), hourly(current - 2 * H), hourly(current - H)
    # a collection of 10:20 is still to be rolled up: its samples' partition stays, the one before it goes
    todo = plan([SAMPLES], [old, held, young], NOW, ahead=H, holds={"metric_samples": current - 2 * H + H / 3})
    assert todo.drop == (old,)
    assert todo.delete_before == ((SAMPLES, current - 2 * H + H / 3),)
    assert plan([SAMPLES], [old, held], NOW, ahead=H, holds={"other": current - 3 * H}).drop == (old, held)


def test_small_tables_and_default_partitions_get_a_cutoff() -> None:
    alerts = Policy("alerts", "resolved_at", timedelta(days=30), condition="status = 'resolved'")
    todo = plan([SAMPLES, alerts], [], NOW, ahead=H)
    assert todo.delete_before == ((SAMPLES, NOW - H), (alerts, NOW - timedelta(days=30)))


def test_seed_retention_defaults() -> None:
    keep = {p.table: p.keep for p in policies(load_settings({}))}
    assert keep["metric_samples"] == timedelta(hours=1)
    assert keep["metric_rollups"] == timedelta(hours=24)
    assert keep["health_assessments"] == timedelta(days=7)
    assert keep["alerts"] == keep["alert_events"] == keep["control_actions"] == timedelta(days=30)
    assert keep["policy_decisions"] == timedelta(days=30)
    assert keep["agents"] == keep["agent_transitions"] == timedelta(days=7)


def test_daily_names_and_floors() -> None:
    assert floor_to(NOW, "day") == datetime(2026, 11, 26, tzinfo=UTC)
    assert partition_name("health_assessments", floor_to(NOW, "day"), "day") == "health_assessments_p20261126"
