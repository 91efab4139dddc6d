"""Ids follow commit order within an inbox, however many nodes write it (PostgreSQL).

Two PostgresStore objects with pools of their own are two nodes as far as the database
can tell; each proposes ids from its own (fake) clock, as the deliverer does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from burnbox.ids import MessageIds, first_id_at
from burnbox.model import MessageSummary
from burnbox.storage.migrating import migrations
from burnbox.storage.postgres import PostgresStore
from burnbox.storage.postgres_expiry import ORDER_MEMORY
from burnbox.storage.rows import SUMMARY_COLUMNS, summary_values
from tests.helpers import FakeClock
from tests.postgres import postgres_url, reset

__all__ = ["postgres_url"]

BOX = "box@localhost"


def mail(message_id: str, at: datetime, address: str = BOX) -> MessageSummary:
    return MessageSummary(
        id=message_id,
        address=address,
        received_at=at,
        expires_at=at + timedelta(hours=1),
        size=1,
        sender="a@b",
        subject="s",
        snippet="",
        attachments=0,
    )


class Node:
    """One writer: its own pool and its own clock."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        self.store = PostgresStore(url, max_bytes=10**9, inbox_max_messages=10_000, clock=clock)
        self.clock = clock
        self.ids = MessageIds(clock)

    async def send(self, *addresses: str) -> str:
        """One message to each address (BOX alone when none is given); its id in BOX."""
        at = self.clock()
        addresses = addresses or (BOX,)
        summaries = [mail(self.ids(), at, address) for address in addresses]
        return (await self.store.add(summaries, b"x")).ids[addresses.index(BOX)]


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[tuple[Node, Node]]:
    await reset(postgres_url)
    ahead, behind = FakeClock(), FakeClock()
    ahead.advance(seconds=5)  # node A's clock is five seconds ahead of node B's
    pair = (Node(postgres_url, ahead), Node(postgres_url, behind))
    for node in pair:
        await node.store.open()
    yield pair
    for node in pair:
        await node.store.close()


async def newest_id(node: Node, address: str = BOX) -> str:
    return (await node.store.summaries(address, limit=1))[0].id


async def test_a_node_whose_clock_is_behind_still_commits_a_newer_id(
    nodes: tuple[Node, Node],
) -> None:
    ahead, behind = nodes
    seen = await ahead.send()
    proposed = behind.ids()
    assert proposed < seen  # what the node behind would have used
    stored = await behind.store.add([mail(proposed, behind.clock())], b"later")
    later = stored.ids[0]
    assert later > seen
    assert await newest_id(behind) == later
    assert await behind.store.raw(BOX, later) == b"later"
    # "Everything after the id I saw" finds it: the Last-Event-ID catch-up is exact.
    assert [s.id for s in await ahead.store.summaries(BOX) if s.id > seen] == [later]


async def test_a_batch_moves_each_clashing_id_and_keeps_its_own_order(
    nodes: tuple[Node, Node],
) -> None:
    ahead, behind = nodes
    seen = await ahead.send()
    at = behind.clock()
    batch = [
        mail(behind.ids(), at),
        mail(behind.ids(), at, "other@localhost"),
        mail(behind.ids(), at),
    ]
    stored = await behind.store.add(batch, b"x")
    mine, other, mine_too = stored.ids
    assert seen < mine < mine_too
    assert other == batch[1].id  # another inbox: nothing to move past
    held = [s.id for s in await behind.store.summaries(BOX)]
    assert held == [mine_too, mine, seen]


async def test_deleting_the_newest_does_not_let_an_older_id_in(nodes: tuple[Node, Node]) -> None:
    ahead, behind = nodes
    seen = await ahead.send()
    await ahead.store.delete(BOX, seen)  # the client read it and deleted it
    assert await behind.send() > seen


async def test_counter_rows_are_forgotten_only_long_after_their_last_message(
    nodes: tuple[Node, Node], postgres_url: str
) -> None:
    ahead, behind = nodes
    seen = await ahead.send()
    await ahead.store.delete(BOX, seen)
    emptied = ahead.clock()
    assert await ahead.store.purge_expired(emptied + ORDER_MEMORY / 2) == []
    assert await behind.send() > seen  # still remembered
    await ahead.store.delete(BOX, await newest_id(ahead))
    await ahead.store.purge_expired(emptied + ORDER_MEMORY + timedelta(minutes=1))
    connection = await asyncpg.connect(postgres_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM address_counts") == 0
    finally:
        await connection.close()


async def test_first_id_at_is_below_every_id_of_that_millisecond(clock: FakeClock) -> None:
    ids = MessageIds(clock)
    made = [ids() for _ in range(100)]
    assert first_id_at(clock()) <= min(made)
    assert max(made) < first_id_at(clock() + timedelta(milliseconds=1))


async def test_a_reader_following_newer_ids_misses_nothing_from_racing_nodes(
    nodes: tuple[Node, Node],
) -> None:
    """Two nodes write one inbox at once, one with its clock behind; a reader keeps asking
    for "everything newer than the newest I have seen" (what a reconnecting SSE client
    does) and must end with every message."""
    ahead, behind = nodes
    rng = random.Random(7)
    stored: list[str] = []
    writers_done = asyncio.Event()

    async def write(node: Node, count: int) -> None:
        for _ in range(count):
            # Several in flight from each node, so their batches commit interleaved; some
            # to a second inbox too, listed first or last (the locks are taken in order).
            recipients = [[BOX], [BOX, "other@localhost"], ["zz@localhost", BOX]]
            sends = [node.send(*rng.choice(recipients)) for _ in range(rng.randint(1, 8))]
            stored.extend(await asyncio.gather(*sends))
            node.clock.advance(milliseconds=rng.randint(0, 3))

    async def read() -> set[str]:
        collected: set[str] = set()
        last = ""
        while True:
            finished = writers_done.is_set()  # read before the query: one more pass after
            newer = [s.id for s in await behind.store.summaries(BOX, limit=10_000) if s.id > last]
            collected.update(newer)
            last = max([last, *newer])
            if finished:
                return collected

    reader = asyncio.ensure_future(read())
    await asyncio.gather(write(ahead, 40), write(behind, 40))
    writers_done.set()
    collected = await reader
    assert len(stored) == len(set(stored)) > 80
    assert collected == set(stored)
    assert max(stored) == await newest_id(ahead)


async def test_the_upgrade_remembers_the_newest_id_of_mail_already_held(postgres_url: str) -> None:
    await reset(postgres_url)
    ahead, behind = FakeClock(), FakeClock()
    ahead.advance(seconds=5)
    seen = MessageIds(ahead)()
    connection = await asyncpg.connect(postgres_url)
    try:  # a database as the first release left it, holding one message
        number, script = migrations("postgres")[0]
        await connection.execute(script)
        await connection.execute(
            "CREATE TABLE burnbox_migrations (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await connection.execute("INSERT INTO burnbox_migrations VALUES ($1)", number)
        # the columns the first release had: every summary field but those added since
        first = [n for n, name in enumerate(SUMMARY_COLUMNS.split(", ")) if name != "auth"]
        columns = ", ".join(SUMMARY_COLUMNS.split(", ")[n] for n in first)
        values = summary_values(mail(seen, ahead()))
        await connection.execute(
            f"INSERT INTO messages ({columns}, stored) VALUES "
            f"({', '.join(f'${n}' for n in range(1, len(first) + 2))})",
            *(values[n] for n in first),
            1,
        )
    finally:
        await connection.close()
    upgraded = Node(postgres_url, behind)
    await upgraded.store.open()
    try:
        assert await upgraded.send() > seen
    finally:
        await upgraded.store.close()
