"""The `Store` contract, run against the in-memory store (unit) and PostgreSQL (integration)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vsmmon.collect.registry import evaluate
from vsmmon.config import load_settings
from vsmmon.errors import NotFound
from vsmmon.models import AgentKind, AgentReport, AgentStatus, Collection, HealthRow, Sample
from vsmmon.store.aggregator import aggregate, fold, window_start
from vsmmon.store.base import AgentScore, Store
from vsmmon.store.retention import policies

T0 = datetime(2026, 11, 26, 12, 0, 3, tzinfo=UTC)


def make_collection(started_at: datetime = T0, cpu: float = 12.5, agents: int = 2) -> Collection:
    reports = tuple(
        AgentReport(
            f"celery@w{i}", AgentKind.CELERY_WORKER, "h1",
            {"cpu_percent": cpu + i, "rss_bytes": 1e8 + i}, version="1.0",
        )
        for i in range(agents)
    )  # fmt: skip
    return Collection(uuid.uuid4(), started_at, 12.0, reports, unreachable=("celery@gone",))


def aggregated(store: Store, collection: Collection, now: datetime) -> bool:
    """Aggregate a stored collection as the pipeline does: claim it, then close the windows that are due."""
    claimed = store.aggregate_collection(collection.id, now)
    due = store.close_due(collection.started_at)
    if due is not None:
        store.close_windows(due, now)
    return claimed


class StoreContract:
    """Subclasses provide a `store` fixture holding an empty store."""

    def test_saved_collection_is_the_latest_with_its_counts(self, store: Store) -> None:
        older, newer = make_collection(T0), make_collection(T0 + timedelta(seconds=5))
        assert store.save_collection(older, T0) is True
        assert store.save_collection(newer, T0) is True
        latest = store.latest_collection()
        assert latest is not None
        assert (latest.id, latest.agent_count, latest.sample_count) == (newer.id, 2, 4)
        assert latest.unreachable == ("celery@gone",)
        assert latest.aggregated_at is None

    def test_saving_a_collection_twice_stores_it_once(self, store: Store) -> None:
        collection = make_collection()
        assert store.save_collection(collection, T0) is True
        assert store.save_collection(collection, T0 + timedelta(seconds=1)) is False
        assert store.get_collection(collection.id).persisted_at == T0

    def test_unknown_collection_is_not_found(self, store: Store) -> None:
        assert store.latest_collection() is None
        with pytest.raises(NotFound):
            store.get_collection(uuid.uuid4())
        with pytest.raises(NotFound):
            store.aggregate_collection(uuid.uuid4(), T0)

    def test_rollups_merge_across_collections_and_only_once_each(self, store: Store) -> None:
        first = make_collection(T0, cpu=10.0, agents=1)
        second = make_collection(T0 + timedelta(seconds=5), cpu=30.0, agents=1)
        for c in (first, second):
            store.save_collection(c, T0)
            assert aggregated(store, c, T0) is True
        assert aggregated(store, second, T0) is False  # a retry
        [rollup] = store.rollups("celery@w0", "cpu_percent", 300)
        assert (rollup.count, rollup.min, rollup.max, rollup.sum, rollup.last) == (2, 10.0, 30.0, 40.0, 30.0)
        assert rollup.window_start == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        assert store.get_collection(second.id).aggregated_at == T0

    def test_ping_answers(self, store: Store) -> None:
        store.ping()

    def test_agents_are_registered_with_their_latest_report(self, store: Store) -> None:
        for started, cpu in ((T0, 10.0), (T0 + timedelta(seconds=5), 20.0), (T0 - timedelta(seconds=5), 99.0)):
            store.update_registry(make_collection(started, cpu=cpu))  # the last one: a late retry
        by_id = {a.agent_id: a for a in store.agents()}
        assert sorted(by_id) == ["celery@w0", "celery@w1"]
        w0 = by_id["celery@w0"]
        assert w0.metrics["cpu_percent"] == 20.0
        assert (w0.first_seen, w0.last_seen) == (T0, T0 + timedelta(seconds=5))
        assert (w0.kind, w0.host, w0.version, w0.status) == ("celery_worker", "h1", "1.0", "online")
        assert w0.interval_s == 5.0

    def test_the_registry_read_with_named_metrics_carries_only_those_and_everything_else(self, store: Store) -> None:
        store.update_registry(make_collection(T0, cpu=20.0))
        whole = store.agents()
        assert set(whole[0].metrics) == {"cpu_percent", "rss_bytes"}
        picked = store.agents(("cpu_percent", "not_reported"))
        assert [a.metrics for a in picked] == [{"cpu_percent": a.metrics["cpu_percent"]} for a in whole]
        assert [a.agent_id for a in picked] == [a.agent_id for a in whole]
        assert [(a.status, a.queues, a.last_seen) for a in picked] == [(a.status, a.queues, a.last_seen) for a in whole]
        assert all(a.metrics == {} for a in store.agents(()))

    def test_transitions_apply_once_and_only_from_the_expected_status(self, store: Store) -> None:
        store.update_registry(make_collection(T0, agents=1))
        store.update_registry(make_collection(T0, agents=1))  # twice: idempotent
        later = T0 + timedelta(seconds=13)  # past 2.5 intervals: offline
        transitions = evaluate(store.agent_records(), later)
        assert [(t.agent_id, t.from_status, t.to_status) for t in transitions] == [
            ("celery@w0", AgentStatus.ONLINE, AgentStatus.OFFLINE)
        ]
        assert store.apply_transitions(transitions) == 1
        assert store.apply_transitions(transitions) == 0  # a retried task changes nothing
        [agent] = store.agents()
        assert (agent.status, agent.status_since) == ("offline", later)
        assert [t.to_status for t in store.transitions("celery@w0")] == [AgentStatus.OFFLINE]

    def test_maintenance_forgets_agents_gone_past_their_retention_and_keeps_the_others(self, store: Store) -> None:
        def seen(at: datetime, *workers: int) -> None:
            reports = make_collection(at, agents=4).reports
            store.update_registry(Collection(uuid.uuid4(), at, 12.0, tuple(reports[i] for i in workers)))

        def judge(at: datetime, stopped: tuple[str, ...] = ()) -> None:
            store.apply_transitions(evaluate(store.agent_records(), at, stopped))

        minute, day = timedelta(minutes=1), timedelta(days=1)
        seen(T0, 0, 1, 2, 3)
        judge(T0 + minute, stopped=("celery@w3",))  # w0, w1, w2 offline, w3 stopped: 8 days before `now`
        seen(T0 + 6 * day, 1)
        judge(T0 + 6 * day)  # w1 back online...
        judge(T0 + 6 * day + minute)  # ...and offline again, 2 days before `now`
        seen(T0 + 8 * day - 10 * timedelta(seconds=1), 2)  # w2 is back, not yet judged: still "offline"
        now = T0 + 8 * day
        rules = [p for p in policies(load_settings({})) if p.table in ("agents", "agent_transitions")]
        assert {p.table: p.keep for p in rules} == {"agents": 7 * day, "agent_transitions": 7 * day}

        report = store.maintain(rules, now, timedelta(0))
        assert [a.agent_id for a in store.agents()] == ["celery@w1", "celery@w2"]
        assert report.deleted_rows == 2 + 4  # w0 and w3; the four transitions of T0 + 1 min (7 d of history)
        assert [t.to_status for t in store.transitions("celery@w1")] == [AgentStatus.ONLINE, AgentStatus.OFFLINE]
        assert store.transitions("celery@w0") == []
        assert store.maintain(rules, now, timedelta(0)).deleted_rows == 0  # idempotent

    def test_coarse_windows_read_right_across_window_closes_and_a_late_collection(self, store: Store) -> None:
        # 5 min windows close as collections move on, hours close at 13:00; a retried collection of 12:00:08
        # arrives after its window and hour were folded: every level must count each sample once, whether read
        # before its close (pending) or after
        start = datetime(2026, 11, 26, 12, 50, 3, tzinfo=UTC)
        times = [start + timedelta(seconds=20 * i) for i in range(60)]  # 12:50:03 .. 13:09:43
        late = make_collection(datetime(2026, 11, 26, 12, 0, 8, tzinfo=UTC), cpu=1000.0, agents=1)
        cpu = {t: float(i) for i, t in enumerate(times)}
        values: dict[datetime, float] = {}

        def expect(window_s: int) -> list[tuple[datetime, int, float, float, float]]:
            found: dict[datetime, list[float]] = {}
            for t, v in values.items():
                found.setdefault(window_start(t, window_s), []).append(v)
            return [(s, len(vs), min(vs), max(vs), sum(vs)) for s, vs in sorted(found.items())]

        def check(when: str) -> None:
            for window_s in (300, 3600, 86400):
                got = [(r.window_start, r.count, r.min, r.max, r.sum)
                       for r in store.rollups("celery@w0", "cpu_percent", window_s)]  # fmt: skip
                assert got == expect(window_s), (when, window_s)

        for i, t in enumerate(times):
            c = make_collection(t, cpu=cpu[t], agents=1)
            store.save_collection(c, t)
            assert store.aggregate_collection(c.id, t) is True
            values[t] = cpu[t]
            check(f"cycle {i}, before its close")
            due = store.close_due(t)
            if due is not None:
                store.close_windows(due, t)
                store.close_windows(due, t)  # a close delivered twice changes nothing
                check(f"cycle {i}, closed to {due}")
            if i == 45:
                store.save_collection(late, t)
                assert store.aggregate_collection(late.id, t) is True
                values[late.started_at] = 1000.0
                check("late, pending")
                assert aggregated(store, late, t) is False
                check("late, merged")
        [day] = store.rollups("celery@w0", "cpu_percent", 86400)
        assert (day.last, day.last_ts) == (59.0, times[-1])
        assert day.quantile(0.0) == 0.0
        assert abs((day.quantile(1.0) or 0.0) - 1000.0) <= 10.0  # within the sketch's 1 %
        assert abs((day.quantile(0.5) or 0.0) - 30.0) <= 0.3  # 61 values: rank floor(0.5 * 60) = 30 is 30.0

    def test_rollups_of_an_unknown_series_or_window_are_empty(self, store: Store) -> None:
        assert store.rollups("nobody", "cpu_percent", 3600) == []
        assert store.rollups("celery@w0", "cpu_percent", 60) == []

    def test_forecasts_fall_due_get_scored_once_and_give_their_smape(self, store: Store) -> None:
        from vsmmon.analyse.analysis import AnalysisResult
        from vsmmon.analyse.forecast import Forecast, smape

        def analysis(at: datetime, value: float) -> AnalysisResult:
            made = [("w1", "memory_bytes", Forecast(300.0, value, value - 1, value + 1, 0.95)),
                    ("w1", "memory_bytes", Forecast(3600.0, value * 2, 0.0, 1e9, 0.95))]  # fmt: skip
            return AnalysisResult(at, (), tuple(made), {}, {}, ())

        store.save_analysis(analysis(T0, 100.0))
        store.save_analysis(analysis(T0 + timedelta(seconds=60), 110.0))
        assert store.due_forecasts(T0, T0 + timedelta(seconds=299)) == []
        due = store.due_forecasts(T0, T0 + timedelta(seconds=400))
        assert [(f.at, f.horizon_s, f.value) for f in due] == [
            (T0, 300, 100.0),
            (T0 + timedelta(seconds=60), 300, 110.0),
        ]
        assert due[0].due_at == T0 + timedelta(seconds=300)
        assert store.forecast_accuracy(T0, T0 + timedelta(seconds=400)) == (None, 0)
        assert store.score_forecasts([(due[0], 80.0), (due[1], 110.0)]) == 2
        assert store.due_forecasts(T0, T0 + timedelta(seconds=400)) == []  # scored ones are not due again
        found, n = store.forecast_accuracy(T0, T0 + timedelta(seconds=400))
        assert n == 2
        assert found == pytest.approx(smape([80.0, 110.0], [100.0, 110.0]), rel=1e-12)  # (20/180 + 0) / 2
        assert [f.horizon_s for f in store.due_forecasts(T0, T0 + timedelta(hours=2))] == [3600, 3600]

    def test_a_stored_collection_aggregated_by_the_store_equals_its_rollups_merged(self, store: Store) -> None:
        # the PostgreSQL store aggregates in SQL (vsm_sketch_key): same counts, extremes and sketch buckets as
        # `aggregate`, on values at the sketch's edges (zero, tiny, negative, huge, bucket boundaries)
        from vsmmon.sketch import GAMMA

        edges = [0.0, 1e-10, -1e-10, 1e-9, -3.5, 1.0, GAMMA, GAMMA**2, GAMMA**-7, 1e299, 1e301, -1e301, 12345.678]
        for i, values in enumerate((edges, [v * 3.7 for v in edges])):  # two cycles of one window
            c = Collection(uuid.uuid4(), T0 + timedelta(seconds=5 * i), 1.0, tuple(
                AgentReport(f"edge-{k}", AgentKind.SENSOR, "h", {"x": v}) for k, v in enumerate(values)))  # fmt: skip
            store.save_collection(c, T0)
            assert store.aggregate_collection(c.id, T0) is True
            assert store.aggregate_collection(c.id, T0) is False  # a retry
        both = (edges, [v * 3.7 for v in edges])
        samples = [Sample(T0 + timedelta(seconds=5 * i), f"edge-{k}", "x", v)
                   for i, values in enumerate(both) for k, v in enumerate(values)]  # fmt: skip
        expected = {(r.agent_id, r.window_start): r for r in fold(aggregate(samples), 300)}
        for when in ("open", "closed"):  # pending samples read in Python; the closed window computed in SQL
            if when == "closed":
                store.close_windows(window_start(T0, 300) + timedelta(seconds=300), T0)
            for (agent, _), want in expected.items():
                [got] = store.rollups(agent, "x", 300)
                fields = ("count", "min", "max", "sum", "last", "last_ts", "sketch")
                assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields], (when, agent)
        with pytest.raises(NotFound):
            store.aggregate_collection(uuid.uuid4(), T0)

    def test_a_collection_repeating_a_series_is_aggregated_with_every_sample(self, store: Store) -> None:
        reports = (
            AgentReport("dup", AgentKind.SENSOR, "h", {"x": 1.0}),
            AgentReport("dup", AgentKind.SENSOR, "h", {"x": 5.0}),
        )
        c = Collection(uuid.uuid4(), T0, 1.0, reports)
        store.save_collection(c, T0)
        assert store.aggregate_collection(c.id, T0) is True
        for when in ("open", "closed"):
            if when == "closed":
                store.close_windows(window_start(T0, 300) + timedelta(seconds=300), T0)
            [got] = store.rollups("dup", "x", 300)
            assert (got.count, got.min, got.max, got.sum, got.sketch.count) == (2, 1.0, 5.0, 6.0, 2), when

    def test_health_rows_are_stored_once_and_read_back_typed_by_subject_and_time(self, store: Store) -> None:
        s1 = [HealthRow(T0 + timedelta(seconds=30 * i), "system", "S1", 0.5 + i / 10, "degraded", {"factors": [i]})
              for i in range(3)]  # fmt: skip
        other = HealthRow(T0, "system", "S2", 1.0, "healthy", {"factors": []})
        assert store.save_health(iter([*reversed(s1), other])) == 4  # streamed: read once, as `codec.rows` yields
        assert store.save_health(s1) == 0  # a retried assessment stores nothing twice
        assert store.save_health(iter([])) == 0
        assert store.health_history("system", "S1", T0 + timedelta(seconds=30)) == s1[1:]  # oldest first
        assert store.health_history("system", "S2", T0) == [other]
        assert store.health_history("agent", "S1", T0) == []

    def test_ad_hoc_checks_are_kept_apart_from_the_scheduled_history_and_found_by_id(self, store: Store) -> None:
        scheduled = [HealthRow(T0, "agent", "w0", 0.9, "healthy", {"factors": []}),
                     HealthRow(T0, "viability", "viability", 0.9, "normal", {})]  # fmt: skip
        first, second = uuid.uuid4(), uuid.uuid4()

        def check(at: datetime, check_id: uuid.UUID, score: float) -> list[HealthRow]:
            return [HealthRow(at, "agent", "w0", score, "degraded", {"factors": []}, check_id),
                    HealthRow(at, "viability", "viability", score, "warning", {"s": 1}, check_id)]  # fmt: skip

        store.save_health(scheduled)
        store.save_health(check(T0 + timedelta(seconds=10), first, 0.4))
        store.save_health(check(T0 + timedelta(seconds=20), second, 0.3))
        assert store.health_history("viability", "viability", T0) == [scheduled[1]]  # the checks are not history
        assert store.agent_scores(T0) == (T0, {"w0": AgentScore(0.9, "healthy", {})})
        assert [r.check_id for r in store.health_checks(T0)] == [second, first]  # newest first
        assert [r.check_id for r in store.health_checks(T0 + timedelta(seconds=15))] == [second]
        assert [(r.scope, r.score) for r in store.health_check(first)] == [("agent", 0.4), ("viability", 0.4)]
        assert store.health_check(uuid.uuid4()) == []

    def test_agent_scores_are_those_of_the_latest_viability_assessment_since_a_time(self, store: Store) -> None:
        def factors(score: float | None) -> dict[str, object]:
            return {"factors": [{"name": "memory", "score": score, "inputs": {"rss": 1.0}},
                                {"name": "tasks", "score": None, "inputs": {}}]}  # fmt: skip

        def assessment(at: datetime, scores: dict[str, float | None]) -> list[HealthRow]:
            agents = [HealthRow(at, "agent", name, score, "healthy", factors(score)) for name, score in scores.items()]
            return [*agents, HealthRow(at, "viability", "viability", 0.9, "viable", {})]

        assert store.agent_scores(T0 - timedelta(hours=1)) == (None, {})
        store.save_health(assessment(T0, {"w0": 0.5, "w1": 0.25}))
        store.save_health(assessment(T0 + timedelta(seconds=60), {"w0": 0.75, "w2": None}))
        orphan = HealthRow(T0 + timedelta(seconds=90), "agent", "w0", 0.1, "failing", {"factors": []})
        store.save_health([orphan])  # no viability row at its time: not an assessment the reads pick
        at, scores = store.agent_scores(T0 - timedelta(hours=1))
        assert at == T0 + timedelta(seconds=60)
        assert sorted(scores) == ["w0", "w2"]
        assert (scores["w0"].score, scores["w0"].state) == (0.75, "healthy")
        assert dict(scores["w0"].factors) == {"memory": 0.75, "tasks": None}
        assert scores["w2"].score is None
        assert store.agent_scores(T0 + timedelta(seconds=61)) == (None, {})  # none since then

    def test_the_grid_holds_every_agent_with_only_the_named_metrics(self, store: Store) -> None:
        store.update_registry(make_collection(T0, cpu=10.0))
        queue = AgentReport("queue:orders", AgentKind.QUEUE, "", {"messages": 7.0, "consumers": 2.0})
        store.update_registry(Collection(uuid.uuid4(), T0 + timedelta(seconds=5), 1.0, (queue,)))
        grid = store.grid(["cpu_percent", "messages", "x' OR '1"])  # a name no metric can have is ignored
        assert [g.agent_id for g in grid] == ["celery@w0", "celery@w1", "queue:orders"]
        w0, w1, q = grid
        assert (w0.kind, w0.host, w0.status) == (AgentKind.CELERY_WORKER, "h1", AgentStatus.ONLINE)
        assert (w0.status_since, w0.last_seen, w0.interval_s) == (T0, T0, 5.0)
        assert dict(w0.metrics) == {"cpu_percent": 10.0}  # rss_bytes was not asked for
        assert dict(w1.metrics) == {"cpu_percent": 11.0}
        assert (q.kind, dict(q.metrics), q.last_seen) == (AgentKind.QUEUE, {"messages": 7.0}, T0 + timedelta(seconds=5))
        assert [dict(g.metrics) for g in store.grid([])] == [{}, {}, {}]

    def test_the_latest_forecast_of_a_series_has_every_horizon_and_interval(self, store: Store) -> None:
        from vsmmon.analyse.analysis import AnalysisResult
        from vsmmon.analyse.forecast import Forecast

        def analysis(at: datetime, agent: str, value: float) -> AnalysisResult:
            made = [(agent, "memory_bytes", Forecast(3600.0, value * 2, 0.0, math.inf, 0.95)),
                    (agent, "memory_bytes", Forecast(300.0, value, value - 1, value + 1, 0.95))]  # fmt: skip
            return AnalysisResult(at, (), tuple(made), {}, {}, ())

        assert store.latest_forecast("w1", "memory_bytes") is None
        store.save_analysis(analysis(T0, "w1", 100.0))
        store.save_analysis(analysis(T0 + timedelta(seconds=60), "w1", 110.0))
        store.save_analysis(analysis(T0 + timedelta(seconds=120), "w2", 500.0))  # another series, later
        found = store.latest_forecast("w1", "memory_bytes")
        assert found is not None
        assert found.at == T0 + timedelta(seconds=60)
        assert [(p.horizon_s, p.value, p.lower, p.upper) for p in found.points] == [
            (300, 110.0, 109.0, 111.0),
            (3600, 220.0, 0.0, None),  # an infinite bound is stored as none
        ]
        assert store.latest_forecast("w1", "cpu_percent") is None

    def test_the_latest_trend_of_a_series_is_its_holt_level_and_slope(self, store: Store) -> None:
        from vsmmon.analyse.analysis import AnalysisResult
        from vsmmon.analyse.trends import Direction, Trend

        def analysis(at: datetime, window_s: int, level: float, trend_per_s: float) -> AnalysisResult:
            trend = Trend(0.5, 1.0, 0.1, Direction.RISING, level, trend_per_s, 0.0, None, 10)
            return AnalysisResult(at, (("w1", "rss_bytes", window_s, trend),), (), {}, {}, ())

        assert store.latest_trend("w1", "rss_bytes", 300) is None
        store.save_analysis(analysis(T0, 300, 10.0, 0.5))
        store.save_analysis(analysis(T0 + timedelta(seconds=60), 300, 12.0, math.nan))
        store.save_analysis(analysis(T0 + timedelta(seconds=120), 3600, 99.0, 9.0))  # another window, later
        trend = store.latest_trend("w1", "rss_bytes", 300)
        assert trend is not None
        assert (trend.at, trend.level, trend.trend_per_s) == (T0 + timedelta(seconds=60), 12.0, None)
        hourly = store.latest_trend("w1", "rss_bytes", 3600)
        assert hourly is not None
        assert (hourly.at, hourly.level, hourly.trend_per_s) == (T0 + timedelta(seconds=120), 99.0, 9.0)
        assert store.latest_trend("w2", "rss_bytes", 300) is None

    def test_a_trend_keeps_its_anomaly_score_and_the_time_its_level_changed(self, store: Store) -> None:
        from vsmmon.analyse.analysis import AnalysisResult
        from vsmmon.analyse.trends import Direction, Trend

        moved = Trend(0.0, 1.0, 0.1, Direction.FLAT, 5.0, 0.0, 7.5, -95.0, 61)  # level shifted 95 s before `at`
        still = Trend(0.0, 1.0, 0.1, Direction.FLAT, 5.0, 0.0, 0.4, None, 61)
        store.save_analysis(AnalysisResult(T0, (("w1", "cpu_percent", 300, moved),
                                                ("w2", "cpu_percent", 300, still)), (), {}, {}, ()))  # fmt: skip
        found = store.latest_trend("w1", "cpu_percent", 300)
        assert found is not None
        assert (found.anomaly, found.change_at) == (7.5, T0 - timedelta(seconds=95))
        quiet = store.latest_trend("w2", "cpu_percent", 300)
        assert quiet is not None
        assert (quiet.anomaly, quiet.change_at) == (0.4, None)

    def test_collection_durations_since_a_time_are_oldest_first(self, store: Store) -> None:
        made = {s: Collection(uuid.uuid4(), T0, float(ms), ()) for s, ms in ((20, 30), (0, 10), (10, 20))}
        for s, collection in made.items():
            store.save_collection(collection, T0 + timedelta(seconds=s))
        got = [(d.collection_id, d.persisted_at, d.duration_ms) for d in store.collection_durations(None)]
        assert got == [(made[s].id, T0 + timedelta(seconds=s), float(s + 10)) for s in (0, 10, 20)]
        since = store.collection_durations(T0 + timedelta(seconds=10))  # at or after
        assert [d.collection_id for d in since] == [made[10].id, made[20].id]
        assert store.collection_durations(T0 + timedelta(seconds=21)) == []
