"""P3: samples/s through `PostgresStore.save_collection` against raw psycopg binary COPY of the same rows."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import psycopg

from bench.common import Result, Stats, Target, alternating
from bench.services import database_url, libpq_conninfo, throwaway_database
from vsmmon.models import AgentKind, AgentReport, Collection
from vsmmon.store.migrations import upgrade
from vsmmon.store.postgres import PostgresStore, create_engine

ID = "P3"
TARGET = Target(min_ratio=0.8, min_figure=200_000)
COPY_SQL = "COPY metric_samples (ts, collection_id, agent_id, metric, value) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ["timestamptz", "uuid", "text", "text", "float8"]
METRICS = (
    "cpu_percent", "rss_bytes", "threads", "open_fds", "ctx_switches_total",
    "children_cpu_percent", "children_rss_bytes", "children", "concurrency", "active",
    "reserved", "tasks_received_total", "uptime_s", "tasks_succeeded_total", "tasks_failed_total",
    "tasks_retried_total", "task_runtime_p50_s", "task_runtime_p95_s", "prefetch_count", "queue_wait_s",
)  # fmt: skip
Row = tuple[datetime, uuid.UUID, str, str, float]


@dataclass(frozen=True, slots=True)
class Shape:
    """How much one repetition ingests."""

    agents: int
    collections: int
    repetitions: int

    @property
    def samples(self) -> int:
        return self.agents * len(METRICS) * self.collections


FULL = Shape(agents=1000, collections=10, repetitions=7)
QUICK = Shape(agents=200, collections=2, repetitions=3)


def run(quick: bool) -> Result:
    """Measure both ingest paths on a throwaway database, alternating them."""
    shape = QUICK if quick else FULL
    collections = make_collections(shape, Random(3))
    batches = [rows_of(c) for c in collections]
    with throwaway_database(database_url()) as url:
        upgrade(url)
        engine = create_engine(url, pool_size=1)
        try:
            with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:
                store = PostgresStore(engine)
                warm_up(store, raw, shape)
                rates: dict[bool, list[float]] = {True: [], False: []}
                for _, through_store in alternating(shape.repetitions):
                    reset(raw)
                    started = time.perf_counter()
                    if through_store:
                        ingest_through_store(store, collections)
                    else:
                        ingest_raw(raw, batches)
                    elapsed_s = time.perf_counter() - started
                    check_count(raw, shape.samples)
                    rates[through_store].append(shape.samples / elapsed_s)
        finally:
            engine.dispose()
    return Result(
        id=ID,
        what=(
            f"ingest: samples/s into metric_samples, {shape.collections} collections of "
            f"{shape.agents:,} agents x {len(METRICS)} metrics ({shape.samples:,} samples) per repetition"
        ),
        unit="samples/s",
        baseline_name="raw psycopg binary COPY, one transaction per collection",
        figure_name="PostgresStore.save_collection",
        baseline=Stats.of(rates[False]),
        figure=Stats.of(rates[True]),
        target=TARGET,
    )


def make_collections(shape: Shape, rng: Random) -> list[Collection]:
    """Collections 5 s apart from a fleet of `shape.agents` workers reporting every metric."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    hosts = [f"host-{h:03d}" for h in range(max(1, shape.agents // 16))]
    collections = []
    for c in range(shape.collections):
        reports = tuple(
            AgentReport(
                agent_id=f"celery@worker-{a:04d}.{hosts[a % len(hosts)]}",
                kind=AgentKind.CELERY_WORKER,
                host=hosts[a % len(hosts)],
                metrics={m: rng.uniform(0, 1e6) for m in METRICS},
                version="0.1.0",
            )
            for a in range(shape.agents)
        )
        collections.append(
            Collection(
                id=uuid.uuid4(),
                started_at=start + timedelta(seconds=5 * c),
                duration_ms=1500.0,
                reports=reports,
            )
        )
    return collections


def rows_of(collection: Collection) -> list[Row]:
    """The rows the baseline copies, built before the clock starts."""
    return [(s.ts, collection.id, s.agent_id, s.metric, s.value) for s in collection.samples()]


def ingest_through_store(store: PostgresStore, collections: list[Collection]) -> None:
    """The path under test: one `save_collection` per collection."""
    now = datetime.now(UTC)
    for collection in collections:
        if not store.save_collection(collection, now):
            raise RuntimeError(f"collection {collection.id} was already stored: the tables were not reset")


def ingest_raw(conn: psycopg.Connection[Any], batches: list[list[Row]]) -> None:
    """The baseline: binary COPY of prepared rows, one transaction per collection."""
    for rows in batches:
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Empty the tables and checkpoint (the connection is in autocommit), so every repetition starts alike."""
    conn.execute("TRUNCATE metric_samples, collections, agents")
    conn.execute("CHECKPOINT")


def check_count(conn: psycopg.Connection[Any], expected: int) -> None:
    """Fail the measure when a path did not store every sample."""
    row = conn.execute("SELECT count(*) FROM metric_samples").fetchone()
    if row is None or row[0] != expected:
        raise RuntimeError(f"metric_samples holds {row and row[0]} rows, expected {expected}")


def warm_up(store: PostgresStore, raw: psycopg.Connection[Any], shape: Shape) -> None:
    """One small untimed ingest through each path: connections, caches and statements are warm."""
    small = make_collections(Shape(agents=min(50, shape.agents), collections=1, repetitions=1), Random(1))
    ingest_through_store(store, small)
    reset(raw)
    ingest_raw(raw, [rows_of(c) for c in small])
