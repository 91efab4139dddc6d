"""The upgrades to partitioned mail (010_partitions.sql) and to the ring (014_ring.sql)
are online: a database of the release before each, holding mail, is migrated by a new node
while a node of that release keeps storing mail through it; nothing stored is lost, and
the counts stay exact."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
import pytest

from burnbox.ids import MessageIds
from burnbox.model import MessageSummary
from burnbox.storage.postgres import PostgresStore
from tests.helpers import FakeClock
from tests.postgres import add_as_before, cover_with_ranges, migrate_to, postgres_url, reset
from tests.test_ring import counts_are_exact

__all__ = ["postgres_url"]


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


async def previous_release(
    url: str, clock: FakeClock, count: int, last: int
) -> list[MessageSummary]:
    """The schema as the release whose last migration is `last` left it, holding `count`
    messages."""
    connection = await asyncpg.connect(url)
    try:
        await migrate_to(connection, last)
        if last >= 10:
            await cover_with_ranges(connection, clock())
        ids = MessageIds(clock)
        held = []
        for start in range(0, count, 100):
            batch = [mail(ids, clock, f"box{n % 50}@localhost") for n in range(start, start + 100)]
            await add_as_before(connection, batch)
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
                await add_as_before(connection, batch)
                self.stalls.append(time.monotonic() - started)
                self.stored.extend(batch)
                async with self._grew:
                    self._grew.notify_all()
        finally:
            await connection.close()

    async def stored_at_least(self, count: int) -> None:
        async with self._grew:
            await self._grew.wait_for(lambda: len(self.stored) >= count)


async def rows_before_the_ring(url: str) -> int:
    """The rows of partition '-', the tables as they were (014_ring.sql)."""
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM messages_range"))
    finally:
        await connection.close()


# The last migration of the release before partitions, and of the one before the ring.
@pytest.mark.parametrize("previous", [9, 13])
async def test_a_populated_database_is_migrated_while_the_old_release_stores_mail(
    postgres_url: str, previous: int
) -> None:
    await reset(postgres_url)
    clock = FakeClock()
    clock.advance(seconds=-60)  # the mail held came in over the last minute
    held = await previous_release(postgres_url, clock, 3000, previous)
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
        assert await rows_before_the_ring(postgres_url) >= len(held)
        assert max(old.stalls) < 10  # the old node waited for the migration, and went on
    finally:
        await new.close()
