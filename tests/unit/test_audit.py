"""The S3* audit's judgement: each disagreement between the probe and the self-report is a finding."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from vsmmon.health.audit import Candidate, Said, Seen, canaries_run, judge, pick
from vsmmon.names import CANARY_TASK

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_an_honest_worker_passes_every_check() -> None:
    a = judge("w@h", NOW, Seen(True, 4, True, 0.2), Said(4.0, 3.0, 4.0), 5.0)
    assert a.checks == ("reachability", "pool", "canary", "accounting")
    assert a.findings == ()
    assert a.score == 1.0


def test_each_mismatch_is_a_finding_and_lowers_the_score() -> None:
    pool = judge("w@h", NOW, Seen(True, 2, True), Said(4.0, 3.0, 4.0), 5.0)
    assert [f.check for f in pool.findings] == ["pool"]
    assert "lists 2 pool processes; it reports 4" in pool.findings[0].message
    assert pool.score == 0.75
    lost = judge("w@h", NOW, Seen(True, 4, False), Said(4.0, 3.0, 3.0), 5.0)
    assert [f.check for f in lost.findings] == ["canary"]
    assert lost.checks == ("reachability", "pool", "canary")  # nothing to account for when it was not taken
    uncounted = judge("w@h", NOW, Seen(True, 4, True), Said(4.0, 3.0, 3.0), 5.0)
    assert [f.check for f in uncounted.findings] == ["accounting"]


def test_a_silent_worker_fails_reachability_and_nothing_else_is_judged() -> None:
    a = judge("w@h", NOW, Seen(False, None, None), Said(None, None, None), 5.0)
    assert (a.checks, [f.check for f in a.findings], a.score) == (("reachability",), ["reachability"], 0.0)


def test_riskier_workers_are_drawn_more_often() -> None:
    calm, busy = Candidate("calm@h"), Candidate("busy@h", saturation=1.0, memory_share=1.0)
    assert (calm.weight, busy.weight) == (1.0, 3.0)
    rng = random.Random(7)
    drawn = Counter(pick([calm, busy], rng).hostname for _ in range(4000))  # type: ignore[union-attr]
    assert 2.5 < drawn["busy@h"] / drawn["calm@h"] < 3.5
    assert pick([], random.Random(1)) is None


def test_the_canary_count_is_read_from_the_self_report() -> None:
    assert canaries_run({"tasks": {CANARY_TASK: {"succeeded_total": 2}}}) == 2.0
    assert canaries_run({"tasks": {}}) == 0.0
    assert canaries_run({"metrics": {}}) is None
    assert canaries_run(None) is None


def test_candidates_are_online_workers_with_their_risk() -> None:
    from vsmmon.health.audit import candidates
    from vsmmon.models import AgentInfo

    t = datetime(2026, 12, 3, tzinfo=UTC)

    def agent(agent_id: str, kind: str, status: str, **metrics: float) -> AgentInfo:
        return AgentInfo(agent_id, kind, "h", "v", status, t, t, t, 5.0, "", (), metrics, {})  # type: ignore[arg-type]

    fleet = [
        agent("w1", "celery_worker", "online", active=2, concurrency=4, rss_bytes=100.0),
        agent("w2", "celery_worker", "online", active=1, concurrency=0, rss_bytes=50.0, memory_limit_bytes=100.0),
        agent("w3", "celery_worker", "stale", active=4, concurrency=4),
        agent("api", "api", "online", rss_bytes=1.0),
    ]
    assert candidates(fleet, hard_bytes=1000.0) == [Candidate("w1", 0.5, 0.1), Candidate("w2", 0.0, 0.5)]
