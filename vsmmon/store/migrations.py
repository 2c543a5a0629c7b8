"""Schema migrations through Alembic, for `vsmmon db …`, `vsmmon up` and the tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from vsmmon.config import Settings
from vsmmon.errors import ConfigError
from vsmmon.store._partitions import MaintenanceReport
from vsmmon.store._tables import is_partition, metadata
from vsmmon.store.retention import policies

ROOT = Path(__file__).resolve().parents[2]  # the source tree: alembic.ini and alembic/ beside vsmmon/
PARTITIONS_AHEAD = timedelta(hours=3)


def alembic_config(url: str) -> Config:
    """Alembic's configuration for `url`, from the project's `alembic.ini`.

    Raises:
        ConfigError: the Alembic scripts are not beside the package (a wheel without the source tree).
    """
    ini = ROOT / "alembic.ini"
    if not ini.exists():
        raise ConfigError("alembic.ini", f"not found at {ini}; run vsmmon from its source tree or image")
    config = Config(str(ini), stdout=io.StringIO())
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` removes every table)."""
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> tuple[str | None, str]:
    """The database's revision and the newest one the code knows."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), head
    finally:
        engine.dispose()


def prepare_storage(url: str, settings: Settings) -> MaintenanceReport:
    """Partitions for now and the next hours, and retention applied: run after every upgrade."""
    from vsmmon.store.postgres import store_for

    with store_for(url) as store:
        return store.maintain(policies(settings), datetime.now(UTC), PARTITIONS_AHEAD)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's filter: partitions (and their indexes) are made by maintenance at run time, not migrations."""
    table = getattr(obj, "table", obj) if type_ in ("index", "unique_constraint") else obj
    return not (reflected and type_ in ("table", "index") and is_partition(getattr(table, "name", name) or ""))


__all__ = ["alembic_config", "current", "downgrade", "include_object", "metadata", "prepare_storage", "upgrade"]
"""`metadata` holds every table: what `alembic/env.py` compares with the database (through `include_object`)."""
