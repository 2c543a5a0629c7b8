import sqlalchemy as sa

from tests.integration.conftest import drop_database, fresh_database
from vsmmon.store import migrations

TABLES = {"agents", "agent_transitions", "collections", "metric_samples", "metric_rollups"}


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) & (TABLES | {"alembic_version"})
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(migrated_database: str) -> None:
    url = fresh_database(migrated_database)
    try:
        assert migrations.current(url)[0] is None
        migrations.upgrade(url)
        current, head = migrations.current(url)
        assert current == head
        assert head is not None
        assert tables(url) == TABLES | {"alembic_version"}
        migrations.downgrade(url, "base")
        assert migrations.current(url)[0] is None
        assert tables(url) <= {"alembic_version"}
        migrations.upgrade(url)
        assert tables(url) == TABLES | {"alembic_version"}
    finally:
        drop_database(url)


def test_samples_table_is_partitioned_by_time(migrated_database: str) -> None:
    engine = sa.create_engine(migrated_database)
    with engine.connect() as conn:
        strategy = conn.execute(
            sa.text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'metric_samples'::regclass")
        ).scalar_one()
    engine.dispose()
    assert strategy == "r"
