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


def test_autogenerate_finds_nothing_to_change_after_the_migrations(migrated_database: str) -> None:
    """The tables in code and the migrated schema agree, the alert tables included: autogenerate proposes
    no drop, no new index and no type change (partitions, made at run time, are not its business)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(migrated_database)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": migrations.include_object})
            diffs = compare_metadata(context, migrations.metadata)
    finally:
        engine.dispose()
    assert {"alerts", "alert_events", "control_actions", "policy_decisions"} <= set(migrations.metadata.tables)
    assert diffs == []
