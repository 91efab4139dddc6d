"""PostgreSQL keeps mail by the span it arrived in and lets it go by the span
(storage/partitions.py): against the real server, with the clock moved by the test."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from burnbox.ids import MessageIds
from burnbox.model import Inbox, MessageSummary, Webhook
from burnbox.storage import partitions as partitions_module
from burnbox.storage.base import NotFound
from burnbox.storage.partitions import PARTITION_LOCK, Partition, free_spans, width_for
from burnbox.storage.postgres import PostgresStore
from tests.helpers import FakeClock
from tests.postgres import postgres_url, reset

__all__ = ["postgres_url"]

TTL = 8.0  # seconds: partitions of 2 s
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
        assert wrong == []
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


def test_the_width_is_a_quarter_of_the_ttl_within_a_second_and_an_hour() -> None:
    assert width_for(8) == 2000
    assert width_for(86400) == 3_600_000
    assert width_for(1) == 1000


async def test_mail_expires_by_the_partition_and_no_row_is_deleted(
    node: Node, postgres_url: str
) -> None:
    await execute(postgres_url, AUDIT)
    sent: list[MessageSummary] = []
    for _ in range(12):  # three TTLs of mail, a message every 2 s, to a few inboxes
        sent.append(await node.send(f"box{len(sent) % 3}@localhost"))
        node.clock.advance(seconds=2)
        told = await node.store.purge_expired(node.clock())
        assert all(message.expires_at <= node.clock() for message in sent if
                   (message.address, message.id) in told)  # fmt: skip
        await counts_are_exact(postgres_url)
    assert await execute(postgres_url, "SELECT * FROM audit_deleted") == []
    assert "messages_legacy" not in await partitions(postgres_url)  # the migration's, empty
    oldest = min(int(name.removeprefix("messages_p")) for name in await partitions(postgres_url))
    assert oldest > int(sent[3].received_at.timestamp() * 1000)  # the first TTL's went whole
    # What is left: the partitions of the last TTL and one width, and the ones ahead.
    assert len(await partitions(postgres_url)) <= 4 + 1 + 12
    live = [m for m in sent if m.expires_at > node.clock()]
    held = [s.id for box in range(3) for s in await node.store.summaries(f"box{box}@localhost")]
    assert sorted(held) == sorted(m.id for m in live)


async def test_reads_hide_expired_mail_before_its_partition_goes(node: Node) -> None:
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
    assert node.store.stats().messages == 1  # held until its partition goes


async def test_every_expired_message_is_told_once_across_nodes(
    node: Node, postgres_url: str
) -> None:
    other = Node(postgres_url, node.clock)
    await other.store.open()
    try:
        sent = [await node.send(f"u{n}@localhost", ttl=1) for n in range(30)]
        node.clock.advance(seconds=5)
        told = await node.store.purge_expired(node.clock())
        told += await other.store.purge_expired(node.clock())
        assert sorted(told) == sorted((m.address, m.id) for m in sent)
    finally:
        await other.store.close()


async def test_nodes_maintaining_at_once_drop_each_partition_once_without_error(
    node: Node, postgres_url: str
) -> None:
    """Both list the same expired partitions; whichever drops one first, the other skips it."""
    other = Node(postgres_url, node.clock)
    await other.store.open()
    try:
        sent = []
        for _ in range(6):
            sent += [await node.send(f"u{n}@localhost", ttl=1) for n in range(5)]
            node.clock.advance(seconds=width_for(TTL) / 1000)
        node.clock.advance(seconds=TTL)
        told: list[tuple[str, str]] = []
        for _ in range(3):
            rounds = await asyncio.gather(
                node.store.purge_expired(node.clock()), other.store.purge_expired(node.clock())
            )
            told += [pair for pair in rounds[0] + rounds[1] if pair[1]]
        assert sorted(told) == sorted((m.address, m.id) for m in sent)
        await counts_are_exact(postgres_url)
    finally:
        await other.store.close()


async def test_a_clock_ahead_of_the_partitions_still_stores(node: Node) -> None:
    ahead = Node(node.store._url, FakeClock())  # another node, its clock two minutes on
    ahead.clock.advance(minutes=2)
    await ahead.store.open()
    try:
        message = await ahead.send("a@localhost")
        assert (await node.store.summary("a@localhost", message.id)).id == message.id
    finally:
        await ahead.store.close()


@contextlib.asynccontextmanager
async def another_node_making_partitions(url: str) -> AsyncIterator[None]:
    """The partition lock held, as by a node whose partitions are not committed yet."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            yield
    finally:
        await connection.close()


async def waits_for_the_lock(url: str, task: asyncio.Task[Any]) -> bool:
    """Whether `task` came to wait for a lock (rather than finishing, or failing, first)."""
    connection = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(20):
            while not task.done():
                # pg_locks has no notification: each round trip is the wait (and lets
                # the task run), bounded by the timeout.
                if await connection.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ):
                    return True
        return False
    finally:
        await connection.close()


async def test_mail_no_partition_takes_waits_for_the_node_making_them(node: Node) -> None:
    """The second worker of a node used to answer 451: its first mail came while the
    other worker was still making the partitions, and it gave up instead of waiting."""
    ahead = Node(node.store._url, FakeClock())
    await ahead.store.open()
    ahead.clock.advance(minutes=2)  # past every partition made: its mail needs a new one
    try:
        async with another_node_making_partitions(node.store._url):
            sending = asyncio.create_task(ahead.send("a@localhost"))
            assert await waits_for_the_lock(node.store._url, sending)
        message = await sending
        assert (await node.store.summary("a@localhost", message.id)).id == message.id
    finally:
        await ahead.store.close()


async def test_a_node_opening_waits_for_the_partitions_being_made(node: Node) -> None:
    later = Node(node.store._url, FakeClock())
    later.clock.advance(minutes=2)  # its time has no partition yet
    async with another_node_making_partitions(node.store._url):
        opening = asyncio.create_task(later.store.open())
        assert await waits_for_the_lock(node.store._url, opening)
    await opening
    try:
        around = await partitions(node.store._url)
        message = await later.send("b@localhost")  # stored at once: its partition was made
        assert await partitions(node.store._url) == around
        assert (await node.store.summary("b@localhost", message.id)).id == message.id
    finally:
        await later.store.close()


async def test_a_partition_detached_by_a_node_that_stopped_is_finished(
    node: Node, postgres_url: str
) -> None:
    width = timedelta(milliseconds=width_for(TTL))
    # Into a partition cut at the width (past the migration's), half way through it.
    aligned = (node.clock() + 4 * width).timestamp() * 1000 // width_for(TTL) * width_for(TTL)
    node.clock.now = datetime.fromtimestamp(aligned / 1000, UTC) + width / 2
    message = await node.send("a@localhost", ttl=1)
    [(partition,)] = await execute(
        postgres_url, f"SELECT tableoid::regclass::text FROM messages WHERE id = '{message.id}'"
    )
    # A node detached it, then stopped before lowering the counts and dropping it.
    await execute(postgres_url, f"ALTER TABLE messages DETACH PARTITION {partition}")
    body_partition = partition.replace("messages_", "bodies_")
    await execute(postgres_url, f"ALTER TABLE bodies DETACH PARTITION {body_partition}")
    assert (await execute(postgres_url, "SELECT messages FROM usage"))[0][0] == 1
    # Mail for that span still comes (a node whose clock lags): a partition of its own.
    late = await node.send("b@localhost", ttl=60)
    [(beside,)] = await execute(
        postgres_url, f"SELECT tableoid::regclass::text FROM messages WHERE id = '{late.id}'"
    )
    assert beside == partition + "_1"
    node.clock.advance(seconds=10)
    await node.store.purge_expired(node.clock())
    for table in (partition, body_partition):
        assert await execute(postgres_url, f"SELECT to_regclass('{table}')") == [(None,)]
    assert await node.store.raw("b@localhost", late.id) == b"raw"
    await counts_are_exact(postgres_url)


async def test_a_drop_lowers_the_counts_a_slice_at_a_time_and_resumes_where_it_stopped(
    node: Node, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions_module, "UNCOUNT_SLICE", 3)  # 10 inboxes: 4 slices
    width = timedelta(milliseconds=width_for(TTL))
    aligned = (node.clock() + 4 * width).timestamp() * 1000 // width_for(TTL) * width_for(TTL)
    node.clock.now = datetime.fromtimestamp(aligned / 1000, UTC) + width / 2
    for _ in range(2):
        await node.store.add([node.mail(f"box{n}@localhost", ttl=1) for n in range(10)], b"r")
    node.clock.advance(seconds=width.total_seconds())
    stays = await node.send("box0@localhost", ttl=60)  # the next partition's
    [(partition,)] = await execute(
        postgres_url,
        f"SELECT DISTINCT tableoid::regclass::text FROM messages WHERE id < '{stays.id}'",
    )
    suffix = partition.removeprefix("messages_")
    await execute(postgres_url, f"ALTER TABLE messages DETACH PARTITION {partition}")
    await execute(postgres_url, f"ALTER TABLE bodies DETACH PARTITION bodies_{suffix}")
    connection = await asyncpg.connect(postgres_url)
    try:  # a node lowered the first slice's counts, then stopped
        assert await partitions_module._uncount_slice(connection, suffix)
    finally:
        await connection.close()
    counts = dict(await execute(postgres_url, "SELECT address, messages FROM address_counts"))
    # The first slice, box0 to box2, lowered by 2 each (box0 keeps the later message)
    assert counts == {f"box{n}@localhost": {0: 1, 1: 0, 2: 0}.get(n, 2) for n in range(10)}
    node.clock.advance(seconds=10)
    await node.store.purge_expired(node.clock())
    assert await execute(postgres_url, f"SELECT to_regclass('{partition}')") == [(None,)]
    assert await execute(postgres_url, "SELECT * FROM burnbox_uncounting") == []
    await counts_are_exact(postgres_url)
    assert [s.id for s in await node.store.summaries("box0@localhost")] == [stays.id]


async def test_webhooks_hear_the_messages_of_a_dropped_partition(
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
    node.clock.advance(seconds=10)
    await node.store.purge_expired(node.clock())
    told = await execute(postgres_url, "SELECT kind, message_id FROM webhook_outbox")
    assert [tuple(row) for row in told] == [("message.deleted", message.id)]


async def test_at_the_byte_cap_an_oldest_partition_that_would_empty_goes_whole(
    postgres_url: str,
) -> None:
    await reset(postgres_url)
    node = Node(postgres_url, FakeClock(), max_bytes=60)  # target: 57 bytes (5% under)
    await node.store.open()
    try:
        await execute(postgres_url, AUDIT)
        first = await node.send("old@localhost")  # 3 bytes in the oldest partition
        node.clock.advance(seconds=2.5)  # the next partition
        for number in range(19):
            await node.send(f"new{number}@localhost")  # 57 more: 60, at the cap
        stored = await node.store.add([node.mail("last@localhost")], b"raw")
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


def test_free_spans_are_what_no_partition_covers() -> None:
    existing = [
        Partition("legacy", None, 100),
        Partition("p100", 100, 200),
        Partition("p300", 300, 400),
    ]
    assert free_spans(existing, 50, 500) == [(200, 300), (400, 500)]
    assert free_spans(existing, 350, 380) == []
    assert free_spans([], 0, 10) == [(0, 10)]


def test_a_node_whose_clock_jumped_makes_only_the_partitions_of_its_time(
    postgres_url: str,
) -> None:
    """A year ahead, a node makes a few partitions around its own now, not 8,760 hours' worth."""

    async def run() -> int:
        await reset(postgres_url)
        clock = FakeClock()
        clock.advance(days=365)
        store = Node(postgres_url, clock).store
        await store.open()
        await store.close()
        return len(await partitions(postgres_url))

    assert asyncio.run(run()) < 12


async def test_partitions_are_cut_at_the_widths_multiples_whenever_maintenance_runs(
    node: Node, postgres_url: str
) -> None:
    """Rounds at odd moments make one partition per width, not one per round."""
    width = width_for(TTL)
    for _ in range(12):
        node.clock.advance(seconds=0.37 * width / 1000)
        await node.store.purge_expired(node.clock())
    connection = await asyncpg.connect(postgres_url)
    try:
        bounds = await connection.fetch(
            "SELECT substr(c.relname, 11)::bigint AS lower FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'messages'::regclass "
            "AND c.relname ~ '^messages_p[0-9]+$' ORDER BY 1"
        )
    finally:
        await connection.close()
    lowers = [row["lower"] for row in bounds]
    assert len(lowers) >= 4
    assert all(lower % width == 0 for lower in lowers)
    assert all(later - earlier == width for earlier, later in itertools.pairwise(lowers))


async def test_one_node_keeps_the_partitions_until_its_lease_runs_out(
    node: Node, postgres_url: str
) -> None:
    """Two nodes detaching at once deadlock in PostgreSQL: one keeps them, by a lease."""
    other = Node(postgres_url, node.clock)
    await other.store.open()
    connection = await asyncpg.connect(postgres_url)
    try:
        first, second = node.store._partitions, other.store._partitions
        assert await first.keeping(connection)
        assert not await second.keeping(connection)
        assert await first.keeping(connection)  # renewed
        await node.send("a@localhost", ttl=1)
        node.clock.advance(seconds=3 * TTL)
        await other.store.purge_expired(node.clock())
        assert (await execute(postgres_url, "SELECT messages FROM usage"))[0][0] == 1
        # The keeper stopped: once its lease has run out, another node takes over.
        await connection.execute("UPDATE burnbox_partitioning SET lease_until = '-infinity'")
        await other.store.purge_expired(node.clock())
        assert (await execute(postgres_url, "SELECT messages FROM usage"))[0][0] == 0
        assert not await first.keeping(connection)
    finally:
        await connection.close()
        await other.store.close()
