"""Alembic environment: metadata from vsmmon's tables, URL from the caller or from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from vsmmon.config import load_settings
from vsmmon.store.migrations import include_object, metadata

config = context.config
url = config.attributes.get("url") or load_settings().sqlalchemy_url()


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
