# ruff: noqa: F811 - fixtures imported from the integration tier are used as parameters of the same name
"""A client holding the token cannot flood the registry with new agent ids (issue #20, item 4).

On the real HTTP service and Redis: new pushed ids are admitted up to `VSMMON_PUSH_NEW_AGENTS_PER_MIN`
a minute, a request that would pass it is refused whole with a 429 naming the cap, and agents already
known are never limited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import redis

from tests.integration.conftest import (  # noqa: F401 - the real services these tests use
    API_TOKEN,
    clean_services,
    live_api,
    migrated_database,
    service_urls,
    settings,
)
from vsmmon import names
from vsmmon.collect.admission import Admitter
from vsmmon.collect.staging import RedisStaging
from vsmmon.config import Settings

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def batch(ids: range, prefix: str = "forged") -> dict[str, object]:
    return {"reports": [{"agent_id": f"{prefix}-{i}", "type": "sensor", "metrics": {"cpu_percent": 1.0}} for i in ids]}


def test_five_thousand_forged_ids_in_one_batch_are_refused_and_nothing_is_staged(
    live_api: str, settings: Settings
) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    answer = httpx.post(f"{live_api}/api/v1/metrics", json=batch(range(5000)), headers=AUTH, timeout=30)
    assert answer.status_code == 429, answer.text[:300]
    assert "5000 new agent ids" in answer.json()["detail"]
    assert "VSMMON_PUSH_NEW_AGENTS_PER_MIN" in answer.json()["detail"]
    assert answer.headers["Retry-After"] == "60"
    assert RedisStaging(client).waiting_pushed() == 0  # refused whole: not one of them staged
    small = httpx.post(f"{live_api}/api/v1/metrics", json=batch(range(3), "real"), headers=AUTH, timeout=30)
    assert small.status_code == 202, small.text[:300]
    assert RedisStaging(client).waiting_pushed() == 3


def test_the_minute_budget_counts_new_ids_only_and_renews_each_minute(settings: Settings, clean_services: None) -> None:
    client = redis.Redis.from_url(settings.require("redis_url"))
    admitter = Admitter(client, new_per_minute=10)
    t0 = datetime(2026, 12, 3, 12, 0, 5, tzinfo=UTC)
    assert admitter.admit([f"a{i}" for i in range(8)], t0).admitted
    over = admitter.admit(["b1", "b2", "b3"], t0 + timedelta(seconds=10))
    assert (over.admitted, over.new_ids, over.used) == (False, 3, 8)
    assert admitter.admit([f"a{i}" for i in range(8)], t0 + timedelta(seconds=20)).admitted  # known: free
    assert admitter.admit(["b1", "b2"], t0 + timedelta(seconds=30)).admitted  # exactly the 10
    assert not admitter.admit(["c1"], t0 + timedelta(seconds=40)).admitted
    assert admitter.admit(["c1"], t0 + timedelta(minutes=1)).admitted  # a new minute
    assert admitter.admit(["a0"], t0 + timedelta(days=1, minutes=2)).new_ids == 0  # still known the next day
    for key in client.scan_iter(match=names.PUSHED_KNOWN_KEY.format(day="*")):
        assert 0 < client.ttl(key) <= 2 * 86400  # bounded: known ids expire
