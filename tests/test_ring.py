"""PostgreSQL keeps mail in a ring of partitions by the span it arrived in, and lets a
span go by emptying its partition (storage/ring.py): against the real server, with the
clock moved by the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from burnbox.ids import MessageIds
from burnbox.model import Inbox, MessageSummary, Webhook
from burnbox.storage import emptying
from burnbox.storage.base import NotFound
from burnbox.storage.postgres import PostgresStore
from burnbox.storage.ring import SLOTS, ring_position, slot_width_ms
from tests.helpers import FakeClock
from tests.postgres import add_as_before, cover_with_ranges, migrate_to, postgres_url, reset

__all__ = ["postgres_url"]

TTL = 8.0  # seconds: spans of 8.192 s, the ring 262 s round
ROUNDS = 10  # purge rounds of two nodes at once before all expired mail must be gone
WIDTH = slot_width_ms(ring_position(TTL, 1.0)) / 1000
AUDIT = """
CREATE TABLE audit_deleted (address text, id text);
CREATE FUNCTION audit_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_deleted SELECT address, id FROM gone; RETURN NULL; END $$;
CREATE TRIGGER audit_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION audit_deleted();
"""


class Node:
    def __init__(self, url: str, clock: FakeClock, **limits: int) -> None:
        self.clock = clock
        self.ids = MessageIds(clock)
        self.store = PostgresStore(
            url,
            max_bytes=limits.get("max_bytes", 10**9),
            inbox_max_messages=limits.get("inbox_max_messages", 1000),
            message_ttl=TTL,
            maintain_every=1.0,
            clock=clock,
        )

    def mail(self, address: str, ttl: float = TTL) -> MessageSummary:
        now = self.clock()
        return MessageSummary(
            id=self.ids(),
            address=address,
            received_at=now,
            expires_at=now + timedelta(seconds=ttl),
            size=3,
            sender="a@b",
            subject="s",
            snippet="",
            attachments=0,
        )

    async def send(self, address: str, ttl: float = TTL) -> MessageSummary:
        summary = self.mail(address, ttl)
        await self.store.add([summary], b"raw")
        return summary


@pytest.fixture
async def node(postgres_url: str) -> Any:
    await reset(postgres_url)
    made = Node(postgres_url, FakeClock())
    await made.store.open()
    yield made
    await made.store.close()


@contextlib.asynccontextmanager
async def another_node(url: str, clock: FakeClock) -> AsyncIterator[Node]:
    other = Node(url, clock)
    await other.store.open()
    try:
        yield other
    finally:
        await other.store.close()


async def partitions(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'messages'::regclass ORDER BY 1"
        )
        return [row[0] for row in rows]
    finally:
        await connection.close()


async def counts_are_exact(url: str) -> None:
    """The trigger-kept totals and per-inbox counts equal what the rows say."""
    connection = await asyncpg.connect(url)
    try:
        usage = await connection.fetchrow("SELECT messages, bytes FROM usage")
        actual = await connection.fetchrow(
            "SELECT count(*), coalesce(sum(stored), 0) FROM messages"
        )
        assert usage is not None
        assert actual is not None
        assert tuple(usage) == tuple(actual)
        wrong = await connection.fetch(
            "SELECT c.address FROM address_counts c LEFT JOIN (SELECT address, count(*) AS n "
            "FROM messages GROUP BY address) m USING (address) "
            "WHERE c.messages <> coalesce(m.n, 0)"
        )
        assert [tuple(row) for row in wrong] == []
    finally:
        await connection.close()


async def execute(url: str, sql: str) -> Any:
    """The rows of one statement; several statements (no rows) as one script."""
    connection = await asyncpg.connect(url)
    try:
        if ";" in sql.strip().rstrip(";"):
            return await connection.execute(sql)
        return await connection.fetch(sql)
    finally:
        await connection.close()


async def catalog(url: str) -> tuple[int, int]:
    """Rows of pg_class and pg_inherits: a partition made or dropped changes them."""
    rows = await execute(
        url, "SELECT (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_inherits)"
    )
    return rows[0][0], rows[0][1]


async def partition_of(url: str, message: MessageSummary) -> str:
    rows = await execute(
        url, f"SELECT tableoid::regclass::text FROM messages WHERE id = '{message.id}'"
    )
    return str(rows[0][0])


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def into_a_new_span(node: Node) -> None:
    """The clock moved to the middle of the next span, so what follows shares a partition."""
    width_ms = int(WIDTH * 1000)
    now_ms = ms(node.clock())
    node.clock.advance(milliseconds=(now_ms // width_ms + 1) * width_ms + width_ms // 2 - now_ms)


async def not_keeping(url: str) -> None:
    """Another node holds the ring's lease: purges tell, and empty nothing."""
    await execute(
        url, "UPDATE burnbox_partitioning SET ring_keeper = 'other', ring_lease_until = 'infinity'"
    )


def test_the_ring_holds_twice_the_ttl_in_the_narrowest_spans() -> None:
    for ttl, every in [(1, 1), (8, 1), (10, 60), (3600, 60), (86400, 60), (7 * 86400, 60)]:
        width = slot_width_ms(ring_position(ttl, every))
        needed = 2 * (ttl + every) * 1000
        assert (SLOTS - 1) * width >= needed
        assert width == 256 or (SLOTS - 1) * width // 32 < needed  # no narrower would do
    assert slot_width_ms(ring_position(10, 60)) == 8192
    assert slot_width_ms(ring_position(3600, 60)) == 262_144


async def test_mail_expires_by_emptying_its_partition_and_no_row_is_deleted(
    node: Node, postgres_url: str
) -> None:
    """Round the ring more than once: nothing is deleted, no partition made or dropped."""
    await execute(postgres_url, AUDIT)
    before = await catalog(postgres_url)
    sent: list[MessageSummary] = []
    for _ in range(int(SLOTS * WIDTH * 1.3 / 2)):  # a message every 2 s, to a few inboxes
        sent.append(await node.send(f"box{len(sent) % 3}@localhost"))
        node.clock.advance(seconds=2)
        told = await node.store.purge_expired(node.clock())
        assert all(message.expires_at <= node.clock() for message in sent if
                   (message.address, message.id) in told)  # fmt: skip
        await counts_are_exact(postgres_url)
    assert await execute(postgres_url, "SELECT * FROM audit_deleted") == []
    assert await catalog(postgres_url) == before
    assert await execute(postgres_url, "SELECT * FROM burnbox_emptied") == []
    held = await execute(postgres_url, "SELECT count(*) FROM messages")
    assert held[0][0] <= (TTL + 2 * WIDTH) / 2 + 1  # at most a TTL and two spans of mail
    live = [m for m in sent if m.expires_at > node.clock()]
    kept = [s.id for box in range(3) for s in await node.store.summaries(f"box{box}@localhost")]
    assert sorted(kept) == sorted(m.id for m in live)


async def test_reads_hide_expired_mail_before_its_partition_is_emptied(node: Node) -> None:
    message = await node.send("a@localhost", ttl=2)
    node.clock.advance(seconds=3)
    with pytest.raises(NotFound):
        await node.store.summary("a@localhost", message.id)
    with pytest.raises(NotFound):
        await node.store.raw("a@localhost", message.id)
    assert await node.store.summaries("a@localhost") == []
    assert await node.store.usage("a@localhost") == (0, 0)
    with pytest.raises(NotFound):
        await node.store.delete("a@localhost", message.id)
    await node.store.refresh_stats(node.clock())
    assert node.store.stats().messages == 1  # held until its partition is emptied


async def test_every_expired_message_is_told_once_across_nodes(
    node: Node, postgres_url: str
) -> None:
    async with another_node(postgres_url, node.clock) as other:
        sent = [await node.send(f"u{n}@localhost", ttl=1) for n in range(30)]
        node.clock.advance(seconds=5)
        told = await node.store.purge_expired(node.clock())
        told += await other.store.purge_expired(node.clock())
        assert sorted(told) == sorted((m.address, m.id) for m in sent)


async def test_nodes_maintaining_at_once_empty_each_partition_once_without_error(
    node: Node, postgres_url: str
) -> None:
    """Both try; whichever holds the lease empties, and every message is told once. A
    partition the other node's reads hold past the lock wait is left to a later round (as
    the reaper's next): on a busy machine that can be more than one; at most ROUNDS."""
    async with another_node(postgres_url, node.clock) as other:
        sent = []
        for _ in range(6):
            sent += [await node.send(f"u{n}@localhost", ttl=1) for n in range(5)]
            node.clock.advance(seconds=WIDTH)
        node.clock.advance(seconds=TTL)
        told: list[tuple[str, str]] = []
        for _ in range(ROUNDS):
            rounds = await asyncio.gather(
                node.store.purge_expired(node.clock()), other.store.purge_expired(node.clock())
            )
            told += [pair for pair in rounds[0] + rounds[1] if pair[1]]
            if (await execute(postgres_url, "SELECT count(*) FROM messages"))[0][0] == 0:
                break
        assert sorted(told) == sorted((m.address, m.id) for m in sent)
        assert (await execute(postgres_url, "SELECT count(*) FROM messages"))[0][0] == 0
        await counts_are_exact(postgres_url)


async def test_a_clock_far_ahead_still_stores_and_its_mail_waits_for_its_time(
    node: Node, postgres_url: str
) -> None:
    clock = FakeClock()
    clock.advance(minutes=10)
    async with another_node(postgres_url, clock) as ahead:  # its clock ten minutes on
        message = await ahead.send("a@localhost")
        assert (await node.store.summary("a@localhost", message.id)).id == message.id
        node.clock.advance(seconds=3 * WIDTH)
        await node.store.purge_expired(node.clock())  # its partition is behind: not expired
        assert (await node.store.summary("a@localhost", message.id)).id == message.id
        await counts_are_exact(postgres_url)


async def range_release(url: str, clock: FakeClock) -> list[MessageSummary]:
    """The schema of the release before the ring (010-013) holding mail for an hour, stored
    as that release stores it, and a range partition detached by one of its nodes that
    stopped before dropping it."""
    maker = Node(url, clock)
    held = [maker.mail(f"old{n % 4}@localhost", ttl=3600) for n in range(20)]
    connection = await asyncpg.connect(url)
    try:
        await migrate_to(connection, 13)
        await cover_with_ranges(connection, clock())
        await add_as_before(connection, held)
        await connection.execute(
            "CREATE TABLE messages_p1 (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
            "CREATE TABLE bodies_p1 (LIKE bodies INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
        )  # what a detach left (empty here; its counts would be lowered by what it holds)
    finally:
        await connection.close()
    return held


async def test_the_mail_held_before_the_ring_is_kept_then_goes_whole(postgres_url: str) -> None:
    await reset(postgres_url)
    clock = FakeClock()
    held = await range_release(postgres_url, clock)
    node = Node(postgres_url, clock)
    await node.store.open()  # migrates to the ring
    try:
        assert "messages_range" in await partitions(postgres_url)
        assert (
            await node.store.raw("old1@localhost", held[1].id) == b"raw of " + held[1].id.encode()
        )
        await counts_are_exact(postgres_url)
        clock.advance(hours=2)
        await node.store.purge_expired(clock())
        for table in ("messages_range", "bodies_range", "messages_p1", "bodies_p1"):
            assert await execute(postgres_url, f"SELECT to_regclass('{table}')") == [(None,)]
        assert len(await partitions(postgres_url)) == SLOTS
        await counts_are_exact(postgres_url)
    finally:
        await node.store.close()


async def test_a_drain_lowers_the_counts_a_slice_at_a_time_and_resumes_where_it_stopped(
    node: Node, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emptying, "SLICE", 3)  # 10 inboxes: 4 slices
    into_a_new_span(node)
    for _ in range(2):
        await node.store.add([node.mail(f"box{n}@localhost", ttl=1) for n in range(10)], b"r")
    slot = node.store._ring.slot_at(ms(node.clock()))
    into_a_new_span(node)
    stays = await node.send("box0@localhost", ttl=600)  # the next partition's
    node.clock.advance(seconds=3 * WIDTH)
    await not_keeping(postgres_url)
    await node.store.purge_expired(node.clock())  # told, not emptied
    connection = await asyncpg.connect(postgres_url)
    try:  # the keeper emptied it, lowered the first slice's counters, then stopped
        seen = await emptying.snapshot(connection, slot)
        assert await emptying.empty(connection, slot, ms(node.clock()), seen=seen) == []
        assert await emptying.drain_slice(connection)  # none published before: the first next
        assert await emptying.drain_slice(connection)
    finally:
        await connection.close()
    counts = dict(await execute(postgres_url, "SELECT address, messages FROM address_counts"))
    # The first slice, box0 to box2, lowered by 2 each (box0 keeps the later message)
    assert counts == {f"box{n}@localhost": {0: 1, 1: 0, 2: 0}.get(n, 2) for n in range(10)}
    await execute(postgres_url, "UPDATE burnbox_partitioning SET ring_lease_until = '-infinity'")
    await node.store.purge_expired(node.clock())  # the next keeper goes on from there
    assert await execute(postgres_url, "SELECT * FROM burnbox_emptied") == []
    await counts_are_exact(postgres_url)
    assert [s.id for s in await node.store.summaries("box0@localhost")] == [stays.id]


async def test_webhooks_hear_the_messages_of_an_emptied_partition(
    node: Node, postgres_url: str
) -> None:
    created = node.clock()
    await node.store.create_inbox(
        Inbox("hooked@localhost", None, created, created + timedelta(hours=1))
    )
    await node.store.add_webhook(
        Webhook(
            id="h1",
            address="hooked@localhost",
            inbox_created=created,
            url="https://receiver.test/hook",
            secret="whsec_x",
            events=("message.deleted",),
            include_body=False,
            created_at=created,
        )
    )
    message = await node.send("hooked@localhost", ttl=1)
    node.clock.advance(seconds=3 * WIDTH)
    await node.store.purge_expired(node.clock())
    told = await execute(postgres_url, "SELECT kind, message_id FROM webhook_outbox")
    assert [tuple(row) for row in told] == [("message.deleted", message.id)]
    assert (await execute(postgres_url, "SELECT count(*) FROM messages"))[0][0] == 0


async def test_at_the_byte_cap_an_oldest_partition_that_would_empty_goes_whole(
    postgres_url: str,
) -> None:
    await reset(postgres_url)
    node = Node(postgres_url, FakeClock(), max_bytes=60)  # target: 57 bytes (5% under)
    await node.store.open()
    try:
        await execute(postgres_url, AUDIT)
        first = await node.send("old@localhost", ttl=600)  # 3 bytes in the oldest partition
        into_a_new_span(node)
        for number in range(19):
            await node.send(f"new{number}@localhost", ttl=600)  # 57 more: 60, at the cap
        stored = await node.store.add([node.mail("last@localhost", ttl=600)], b"raw")
        evicted = stored.evicted
        assert evicted[0] == ("old@localhost", first.id)  # whole: no row deleted
        deleted = await execute(postgres_url, "SELECT address, id FROM audit_deleted")
        assert [tuple(row) for row in deleted] == evicted[1:]  # the rest by the row
        assert (await execute(postgres_url, "SELECT bytes FROM usage"))[0][0] <= 57
        await counts_are_exact(postgres_url)
        with pytest.raises(NotFound):
            await node.store.summary("old@localhost", first.id)
    finally:
        await node.store.close()


async def test_one_node_keeps_the_ring_until_its_lease_runs_out(
    node: Node, postgres_url: str
) -> None:
    """Two nodes emptying at once would wait on each other's locks: one keeps the ring."""
    async with another_node(postgres_url, node.clock) as other:
        connection = await asyncpg.connect(postgres_url)
        try:
            first, second = node.store._ring, other.store._ring
            assert await first.keeping(connection)
            assert not await second.keeping(connection)
            assert await first.keeping(connection)  # renewed
            await node.send("a@localhost", ttl=1)
            node.clock.advance(seconds=3 * WIDTH)
            await other.store.purge_expired(node.clock())
            assert (await execute(postgres_url, "SELECT messages FROM usage"))[0][0] == 1
            # The keeper stopped: once its lease has run out, another node takes over.
            await connection.execute(
                "UPDATE burnbox_partitioning SET ring_lease_until = '-infinity'"
            )
            await other.store.purge_expired(node.clock())
            assert (await execute(postgres_url, "SELECT messages FROM usage"))[0][0] == 0
            assert not await first.keeping(connection)
        finally:
            await connection.close()


async def test_mail_that_outlives_the_ring_is_kept_and_what_expires_beside_it_goes(
    node: Node, postgres_url: str
) -> None:
    """A message whose TTL is longer than the ring (a node with a longer TTL, say) keeps its
    partition from being emptied when it comes round: the expired mail beside it goes row by
    row, and the new mail that joins it is kept."""
    into_a_new_span(node)
    lasting = await node.send("long@localhost", ttl=SLOTS * WIDTH * 2)
    brief = [await node.send(f"b{n}@localhost", ttl=1) for n in range(3)]
    node.clock.advance(seconds=(SLOTS - 1) * WIDTH)  # its partition comes round next
    await node.store.purge_expired(node.clock())
    for message in brief:
        assert (
            await execute(postgres_url, f"SELECT 1 FROM messages WHERE id = '{message.id}'") == []
        )
    node.clock.advance(seconds=WIDTH)  # round: new mail joins it
    joining = await node.send("new@localhost")
    assert await partition_of(postgres_url, joining) == await partition_of(postgres_url, lasting)
    await node.store.purge_expired(node.clock())
    assert (await node.store.summary("long@localhost", lasting.id)).id == lasting.id
    assert (await node.store.summary("new@localhost", joining.id)).id == joining.id
    await counts_are_exact(postgres_url)


async def test_expired_mail_beside_mail_that_outlives_the_ring_goes_a_bounded_number_a_round(
    node: Node, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row by row, but never more than OVERDUE_ROWS a round: one round's transaction stays
    short however much has piled up; the rest goes in the rounds after."""
    monkeypatch.setattr(emptying, "OVERDUE_ROWS", 2)
    into_a_new_span(node)
    lasting = await node.send("long@localhost", ttl=SLOTS * WIDTH * 2)
    for n in range(5):
        await node.send(f"b{n}@localhost", ttl=1)
    node.clock.advance(seconds=(SLOTS - 1) * WIDTH)  # its partition comes round next
    held = f"SELECT count(*) FROM messages WHERE burnbox_slot(id) = burnbox_slot('{lasting.id}')"
    remaining = []
    for _ in range(3):
        await node.store.purge_expired(node.clock())
        remaining.append((await execute(postgres_url, held))[0][0])
    assert remaining == [4, 2, 1]
    await counts_are_exact(postgres_url)


async def test_emptying_waits_a_bounded_time_for_a_reader_then_tries_next_round(
    node: Node, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emptying, "LOCK_WAIT_MS", 100)
    message = await node.send("a@localhost", ttl=1)
    table = await partition_of(postgres_url, message)
    node.clock.advance(seconds=3 * WIDTH)
    reader = await asyncpg.connect(postgres_url)
    try:
        async with reader.transaction():  # a long read of that partition
            await reader.fetch(f"SELECT * FROM {table}")
            await node.store.purge_expired(node.clock())
            assert (await execute(postgres_url, "SELECT count(*) FROM messages"))[0][0] == 1
    finally:
        await reader.close()
    await node.store.purge_expired(node.clock())
    assert (await execute(postgres_url, "SELECT count(*) FROM messages"))[0][0] == 0
    await counts_are_exact(postgres_url)


async def test_a_partition_is_not_emptied_while_it_holds_mail_not_yet_expired(
    node: Node, postgres_url: str
) -> None:
    """Checked under its lock: mail that came late (a node's clock behind) stays."""
    expired = await node.send("a@localhost", ttl=1)
    late = await node.send("b@localhost", ttl=600)
    node.clock.advance(seconds=3 * WIDTH)
    await node.store.purge_expired(node.clock())
    slot = (await partition_of(postgres_url, late)).removeprefix("messages_s")
    connection = await asyncpg.connect(postgres_url)
    try:
        assert await emptying.empty(connection, slot.upper(), ms(node.clock())) is None
    finally:
        await connection.close()
    assert (await node.store.summary("b@localhost", late.id)).id == late.id
    assert await partition_of(postgres_url, expired) == await partition_of(postgres_url, late)
    await counts_are_exact(postgres_url)


async def expired_partition(node: Node, postgres_url: str) -> str:
    """Two inboxes' expired mail in one partition, told by another node (so that the test
    empties it); returns the partition's letter."""
    into_a_new_span(node)
    for _ in range(3):
        await node.store.add([node.mail(f"box{n}@localhost", ttl=1) for n in range(2)], b"r")
    slot = node.store._ring.slot_at(ms(node.clock()))
    node.clock.advance(seconds=3 * WIDTH)
    await not_keeping(postgres_url)
    await node.store.purge_expired(node.clock())
    return slot


async def empty_and_drain(
    connection: asyncpg.Connection, slot: str, now_ms: int, seen: emptying.Snapshot
) -> None:
    assert await emptying.empty(connection, slot, now_ms, seen=seen) == []
    await emptying.drain(connection)


async def all_gone_and_counted(url: str) -> None:
    assert (await execute(url, "SELECT count(*) FROM messages"))[0][0] == 0
    await counts_are_exact(url)


async def test_a_partition_changed_after_its_snapshot_is_counted_again_under_its_lock(
    node: Node, postgres_url: str
) -> None:
    """A burn took some of its mail, and mail came late, between the slices and the lock:
    the counts the slices noted would lower the counters wrongly."""
    slot = await expired_partition(node, postgres_url)
    connection = await asyncpg.connect(postgres_url)
    try:
        seen = await emptying.snapshot(connection, slot)
        await node.store.burn_inbox("box0@localhost", node.clock())
        behind = FakeClock()  # a node whose clock is in that span still
        behind.now = node.clock() - timedelta(seconds=3 * WIDTH)
        async with another_node(postgres_url, behind) as lagging:
            await lagging.store.add([lagging.mail("box1@localhost", ttl=1)], b"late")
        await empty_and_drain(connection, slot, ms(node.clock()), seen)
    finally:
        await connection.close()
    await all_gone_and_counted(postgres_url)


async def test_a_snapshot_whose_notes_a_drain_truncated_is_counted_again(
    node: Node, postgres_url: str
) -> None:
    slot = await expired_partition(node, postgres_url)
    connection = await asyncpg.connect(postgres_url)
    try:
        seen = await emptying.snapshot(connection, slot)
        assert not await emptying.drain_slice(connection)  # nothing published: notes truncated
        assert await execute(postgres_url, "SELECT * FROM burnbox_emptied") == []
        await empty_and_drain(connection, slot, ms(node.clock()), seen)
    finally:
        await connection.close()
    await all_gone_and_counted(postgres_url)
