"""The real services the measures use: a throwaway PostgreSQL database and one Redis db index."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def database_url() -> str:
    """The server to create throwaway databases on (`VSMMON_BENCH_DATABASE_URL`)."""
    return os.environ.get("VSMMON_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    """The Redis db index the measures may flush (`VSMMON_BENCH_REDIS_URL`)."""
    return os.environ.get("VSMMON_BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def libpq_conninfo(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://…`) as psycopg's conninfo (`postgresql://…`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Create `vsmmon_bench_<random>` on the server of `server_url`, yield its URL, drop it on exit."""
    name = f"vsmmon_bench_{secrets.token_hex(4)}"
    admin = libpq_conninfo(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def flushed_redis(url: str) -> Iterator[redis.Redis]:
    """A client of the db index of `url`, flushed (that index only) on entry and on exit."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
