"""The upgrade to partitioned mail (010_partitions.sql) is online: a database of the
previous release, holding mail, is migrated by a new node while a node of the previous
release keeps storing mail through it; nothing stored is lost, and the counts stay exact."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg

from burnbox.ids import MessageIds
from burnbox.model import SUMMARY_FIELDS, MessageSummary
from burnbox.storage.postgres import PostgresStore
from burnbox.storage.rows import migrations, summary_values
from tests.helpers import FakeClock
from tests.postgres import postgres_url, reset
from tests.test_partitions import counts_are_exact

__all__ = ["postgres_url"]

PREVIOUS = 9  # the last migration of the release before partitions
ADD = "SELECT burnbox_add(" + ", ".join(f"${n}" for n in range(1, len(SUMMARY_FIELDS) + 4)) + ")"


def mail(ids: MessageIds, clock: FakeClock, address: str) -> MessageSummary:
    now = clock()
    return MessageSummary(
        id=ids(),
        address=address,
        received_at=now,
        expires_at=now + timedelta(hours=1),
        size=10,
        sender="Old <old@example.org>",
        subject=f"to {address}",
        snippet="x",
        attachments=0,
    )


async def add(connection: asyncpg.Connection, batch: list[MessageSummary]) -> None:
    """What a node of the previous release does to store a batch: one call."""
    rows = [(*summary_values(summary), 10) for summary in batch]
    columns = [list(column) for column in zip(*rows, strict=True)]
    await connection.fetchval(ADD, *columns, [b"raw of " + s.id.encode() for s in batch], 1000)


async def previous_release(url: str, clock: FakeClock, count: int) -> list[MessageSummary]:
    """The schema as the previous release left it, holding `count` messages."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE TABLE burnbox_migrations (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, script in migrations("postgres")[:PREVIOUS]:
            await connection.execute(script)
            await connection.execute("INSERT INTO burnbox_migrations VALUES ($1)", number)
        ids = MessageIds(clock)
        held = []
        for start in range(0, count, 100):
            batch = [mail(ids, clock, f"box{n % 50}@localhost") for n in range(start, start + 100)]
            await add(connection, batch)
            held += batch
            clock.advance(seconds=1)
        return held
    finally:
        await connection.close()


class OldNode:
    """The previous release storing mail without pause, five messages a statement, on a
    connection of its own: what it was told was stored, and how long each batch took."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        self.url, self.clock = url, clock
        self.stored: list[MessageSummary] = []
        self.stalls: list[float] = []
        self.stop = asyncio.Event()
        self._grew = asyncio.Condition()

    async def run(self) -> None:
        ids, connection = MessageIds(self.clock), await asyncpg.connect(self.url)
        try:
            while not self.stop.is_set():
                address = f"live{len(self.stored) % 7}@localhost"
                batch = [mail(ids, self.clock, address) for _ in range(5)]
                started = time.monotonic()
                await add(connection, batch)
                self.stalls.append(time.monotonic() - started)
                self.stored.extend(batch)
                async with self._grew:
                    self._grew.notify_all()
        finally:
            await connection.close()

    async def stored_at_least(self, count: int) -> None:
        async with self._grew:
            await self._grew.wait_for(lambda: len(self.stored) >= count)


async def legacy_rows(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM messages_legacy"))
    finally:
        await connection.close()


async def test_a_populated_database_is_migrated_while_the_old_release_stores_mail(
    postgres_url: str,
) -> None:
    await reset(postgres_url)
    clock = FakeClock()
    clock.advance(seconds=-60)  # the mail held came in over the last minute
    held = await previous_release(postgres_url, clock, 3000)
    clock.advance(seconds=1)
    old = OldNode(postgres_url, clock)
    writing = asyncio.create_task(old.run())
    await old.stored_at_least(50)
    new = PostgresStore(postgres_url, max_bytes=10**9, inbox_max_messages=1000, clock=clock)
    await new.open()  # migrates, as the first node of the new release to start
    try:
        await old.stored_at_least(len(old.stored) + 100)  # the old node goes on after it
        old.stop.set()
        await writing
        ours = await new.add([mail(MessageIds(clock), clock, "box0@localhost")], b"new")
        for summary in [*held, *old.stored]:
            assert (await new.summary(summary.address, summary.id)).subject == summary.subject
            assert await new.raw(summary.address, summary.id) == b"raw of " + summary.id.encode()
        assert await new.raw("box0@localhost", ours.ids[0]) == b"new"
        await counts_are_exact(postgres_url)
        assert await legacy_rows(postgres_url) >= len(held)  # now the oldest partition
        assert max(old.stalls) < 10  # the old node waited for the migration, and went on
    finally:
        await new.close()
