from dataclasses import replace

import pytest

from tests.integration.conftest import poll
from tests.store_contract import StoreContract
from vsmmon.models import Collection
from vsmmon.store.postgres import PostgresStore


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, store: PostgresStore) -> PostgresStore:
        return store


def test_two_registry_merges_of_the_same_agents_in_opposite_orders_cannot_deadlock(store: PostgresStore) -> None:
    """Two retries of collections merging at once (after a database outage): the first holds `a`, the second
    merges `b, a`, then the first merges `b`. Rows locked in report order deadlock; in id order the second waits."""
    import threading

    from tests.store_contract import T0, make_collection
    from vsmmon.store._registry import upsert_agents

    def agents(*ids: int) -> Collection:
        c = make_collection(T0, agents=3)
        return replace(c, reports=tuple(c.reports[i] for i in ids))

    store.update_registry(agents(0, 1))  # both rows exist: every merge below updates
    second_done = threading.Event()
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with store.engine.begin() as conn:
                upsert_agents(conn, agents(1, 0))
        except BaseException as e:  # reported by the main thread
            failures.append(e)
        second_done.set()

    with store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
        upsert_agents(conn, agents(0))
        waiter = threading.Thread(target=second)
        waiter.start()
        poll(lambda: waiting_on_a_lock(store), deadline_s=10, what="the second merge to wait for a row")
        upsert_agents(conn, agents(1))  # deadlocks here (one side aborted) when rows are locked in report order
    waiter.join(timeout=20)
    assert second_done.is_set()
    assert not failures, failures


def waiting_on_a_lock(store: PostgresStore) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).scalar_one()
    return bool(waiting)
