"""Migrations of the rollup schemes: 0005 (every level merged at every cycle before), 0007 (open windows merged)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.integration.conftest import drop_database, fresh_database
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.sketch import key_of
from vsmmon.store import migrations
from vsmmon.store.aggregator import window_start
from vsmmon.store.postgres import store_for


def test_rollups_of_the_old_scheme_keep_counting_each_sample_once_at_every_level(migrated_database: str) -> None:
    url = fresh_database(migrated_database)
    try:
        migrations.upgrade(url, "0004")
        now = datetime.now(UTC)
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # three samples of value 1 so far: the old scheme put them in every level
            for window_s in (300, 3600, 86400):
                conn.execute(
                    sa.text("INSERT INTO metric_rollups VALUES ('w', 'cpu', :w, :start, 3, 1, 1, 3, 1, :ts)"),
                    {"w": window_s, "start": window_start(now, window_s), "ts": now - timedelta(seconds=1)},
                )
            if window_start(now, 3600) > window_start(now, 86400):  # an earlier hour of today, already in the day
                conn.execute(
                    sa.text("INSERT INTO metric_rollups VALUES ('w', 'cpu', 3600, :start, 2, 1, 1, 2, 1, :start)"),
                    {"start": window_start(now, 3600) - timedelta(hours=1)},
                )
                conn.execute(sa.text("UPDATE metric_rollups SET count = 5, sum = 5 WHERE window_s = 86400"))
        engine.dispose()
        migrations.upgrade(url)
        earlier_today = 2 if window_start(now, 3600) > window_start(now, 86400) else 0
        with store_for(url) as store:
            # a sample in the same 5 min window, then one 5 min later (it closes that window)
            for at, value in ((now, 7.0), (now + timedelta(minutes=5), 9.0)):
                c = Collection(uuid.uuid4(), at, 1.0, (AgentReport("w", AgentKind.WORKER, "h", {"cpu": value}),))
                store.save_collection(c, at)
                assert store.aggregate_collection(c.id, at) is True
            counts = {w: sum(r.count for r in store.rollups("w", "cpu", w)) for w in (300, 3600, 86400)}
            sums = {w: sum(r.sum for r in store.rollups("w", "cpu", w)) for w in (300, 3600, 86400)}
        assert counts[300] == 5  # 3 old + 2 new, over two windows
        assert sums[300] == 3 + 7 + 9
        assert counts[86400] == 5 + earlier_today  # the day row rebuilt from the hours, nothing twice
        assert sums[86400] == 19 + earlier_today
        assert counts[3600] == 5 + earlier_today
    finally:
        drop_database(url)


def test_open_windows_of_0006_become_stored_rows_and_later_samples_of_them_count_once(migrated_database: str) -> None:
    url = fresh_database(migrated_database)
    w = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)  # the window 0006 still had open, holding one sample (7)
    try:
        migrations.upgrade(url, "0006")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE rollup_state SET open_from = :w, days_from = :d"),
                         {"w": w, "d": window_start(w, 86400)})  # fmt: skip
            conn.execute(
                sa.text("INSERT INTO rollups_open VALUES ('w', 'cpu', :w, 1, 7, 7, 7, 7, :ts, ARRAY[:k], '{1}')"),
                {"w": w, "ts": w + timedelta(seconds=3), "k": key_of(7.0)},
            )
        engine.dispose()
        migrations.upgrade(url)
        with store_for(url) as store:
            for at, value in ((w + timedelta(seconds=60), 9.0), (w + timedelta(seconds=300), 4.0)):
                c = Collection(uuid.uuid4(), at, 1.0, (AgentReport("w", AgentKind.WORKER, "h", {"cpu": value}),))
                store.save_collection(c, at)
                assert store.aggregate_collection(c.id, at) is True
                due = store.close_due(at)
                if due is not None:
                    store.close_windows(due, at)
            got = [(r.window_start, r.count, r.sum, r.last) for r in store.rollups("w", "cpu", 300)]
        # the window 0006 had open, with the sample that came after the upgrade; the next window still pending
        assert got == [(w, 2, 16.0, 9.0), (w + timedelta(seconds=300), 1, 4.0, 4.0)]
        migrations.downgrade(url, "0006")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            carried = conn.execute(sa.text("SELECT window_start, count, sum FROM rollups_open")).all()
        engine.dispose()
        assert carried == [(w + timedelta(seconds=300), 1, 4.0)]  # the pending window, back as 0006 keeps it
    finally:
        drop_database(url)
