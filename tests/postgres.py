"""A PostgreSQL database of the tests' own on the machine's server, dropped afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from burnbox.model import SUMMARY_FIELDS, MessageSummary
from burnbox.storage.migrating import migrations
from burnbox.storage.rows import summary_values

# How a node of a previous release stores a batch: one call (004_eviction_apart.sql).
ADD = "SELECT burnbox_add(" + ", ".join(f"${n}" for n in range(1, len(SUMMARY_FIELDS) + 4)) + ")"
SERVER = os.environ.get("BURNBOX_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _admin_async(sql: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _admin(sql: str) -> None:
    """Run on a loop of its own: this fixture may be asked for from inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_async(sql)).result(timeout=60)


async def reset(url: str) -> None:
    """An empty schema: every test that opens a store runs the migrations afresh."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"burnbox_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except OSError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {SERVER}: {error}")
        pytest.skip(f"PostgreSQL is not reachable at {SERVER} (.ci/run starts it)")
    yield f"{SERVER}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrate_to(connection: asyncpg.Connection, last: int) -> None:
    """The schema as the release whose last migration is `last` left it."""
    await connection.execute(
        "CREATE TABLE burnbox_migrations (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for number, script in migrations("postgres")[:last]:
        await connection.execute(script)
        await connection.execute("INSERT INTO burnbox_migrations VALUES ($1)", number)


async def cover_with_ranges(connection: asyncpg.Connection, moment: datetime) -> None:
    """What a node of a release with range partitions (010-013) made for its own time: a
    partition around `moment`, unless those made at migration (by the database's clock)
    cover it already. Under the tests' shifted clock the node's time is not the database's."""
    low, high = (int((moment + timedelta(hours=shift)).timestamp() * 1000) for shift in (-1, 2))
    for table in ("messages", "bodies"):
        try:
            await connection.execute(
                f"CREATE TABLE {table}_p{low} PARTITION OF {table} FOR VALUES "
                f"FROM (burnbox_first_id({low})) TO (burnbox_first_id({high}))"
            )
        except asyncpg.InvalidObjectDefinitionError:  # it would overlap: covered already
            return


async def add_as_before(connection: asyncpg.Connection, batch: list[MessageSummary]) -> None:
    """Store a batch as a node of a previous release does: each raw is "raw of <id>"."""
    rows = [(*summary_values(summary), 10) for summary in batch]
    columns = [list(column) for column in zip(*rows, strict=True)]
    await connection.fetchval(ADD, *columns, [b"raw of " + s.id.encode() for s in batch], 1000)
