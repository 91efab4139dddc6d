"""The Store contract: every backend runs these same tests."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from burnbox.ids import first_id_at
from burnbox.model import EPOCH, NODE_WIDE, Inbox, MessageSummary, Webhook
from burnbox.storage.base import (
    EXPIRED_INBOX_MEMORY,
    PURGE_BATCH,
    AddressTaken,
    NotFound,
    Store,
    Stored,
    TooLargeForStore,
)
from burnbox.storage.memory import MemoryStore
from burnbox.storage.postgres import PostgresStore
from burnbox.storage.postgres_expiry import PURGE_LOCK
from burnbox.storage.sqlite import SqliteStore
from tests.helpers import FakeClock, real_now
from tests.pgbouncer import pgbouncer_url
from tests.postgres import postgres_url, reset

__all__ = ["pgbouncer_url", "postgres_url"]  # fixtures, used through request.getfixturevalue

NOW = real_now()  # a fixed moment, taken from the real clock
CLOCK = FakeClock()  # the stores' clock (their reads hide expired mail): at NOW for each test
StoreFactory = Callable[..., Store]


@pytest.fixture(autouse=True)
def clock_at_now() -> None:
    CLOCK.now = NOW


def memory_store(folder: Path, max_bytes: int = 10**9, inbox_max_messages: int = 1000) -> Store:
    return MemoryStore(max_bytes=max_bytes, inbox_max_messages=inbox_max_messages, clock=CLOCK)


def sqlite_store(folder: Path, max_bytes: int = 10**9, inbox_max_messages: int = 1000) -> Store:
    return SqliteStore(
        str(folder / "burnbox.db"),
        max_bytes=max_bytes,
        inbox_max_messages=inbox_max_messages,
        clock=CLOCK,
    )


def postgres_store(url: str, max_bytes: int = 10**9, inbox_max_messages: int = 1000) -> Store:
    return PostgresStore(
        url, max_bytes=max_bytes, inbox_max_messages=inbox_max_messages, clock=CLOCK
    )


def pgbouncer_store(url: str, max_bytes: int = 10**9, inbox_max_messages: int = 1000) -> Store:
    """The same database through PgBouncer in transaction pooling (tests/pgbouncer.py)."""
    return PostgresStore(
        url,
        max_bytes=max_bytes,
        inbox_max_messages=inbox_max_messages,
        clock=CLOCK,
        pooler="transaction",
    )


BACKENDS: dict[str, Callable[..., Store]] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "postgres": postgres_store,
    "pgbouncer": pgbouncer_store,
}
SERVERS = {"postgres": "postgres_url", "pgbouncer": "pgbouncer_url"}  # their URLs' fixtures


@pytest.fixture(params=sorted(BACKENDS))
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    opened: list[Store] = []
    factory = BACKENDS[request.param]
    where: object = tmp_path
    if request.param in SERVERS:
        await reset(str(request.getfixturevalue("postgres_url")))
        where = request.getfixturevalue(SERVERS[request.param])

    def make(**limits: int) -> Store:
        target = where if request.param in SERVERS else tmp_path / f"store{len(opened)}"
        store = factory(target, **limits)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def opened(make_store: StoreFactory, **limits: int) -> Store:
    store = make_store(**limits)
    await store.open()
    return store


class Mail:
    """Summaries with increasing ids, as the deliverer makes them: an id begins with its
    arrival (ids.py), which is what puts a message in its PostgreSQL partition (ring.py);
    ids that did not would put every message in the same partition whatever its time, and
    whether that one counts as past would depend on the hour the tests run. Every field
    holds a value of its own, so a store that swapped two columns would give itself away."""

    def __init__(self) -> None:
        self.counter = 0

    def __call__(
        self,
        address: str,
        *,
        at: datetime = NOW,
        ttl: float = 3600,
        size: int = 10,
        subject: str = "s",
    ) -> MessageSummary:
        self.counter += 1
        n = self.counter
        return MessageSummary(
            id=first_id_at(at)[:-6] + f"{n:06d}",  # the arrival, then the counter
            address=address,
            received_at=at,
            expires_at=at + timedelta(seconds=ttl),
            size=size,
            sender=f"sender {n} <s@x>",
            subject=subject,
            snippet=f"snippet {n} é",
            attachments=n % 5 + 11,
            date=f"Mon, {n} Nov 2026",
            message_id=f"<{n}@message.id>",
            to=f"to {n} <t@x>",
            seen=n % 2 == 1,
            auth=f"spf=pass smtp.mailfrom=x{n}.test; dkim=none; dmarc=none; arc=none",
        )


@pytest.fixture
def mail() -> Mail:
    return Mail()


async def test_inbox_lifecycle(make_store: StoreFactory) -> None:
    store = await opened(make_store)
    inbox = Inbox("a@localhost", b"hash", NOW, NOW + timedelta(hours=1))
    assert await store.create_inbox(inbox) == inbox  # the first claims from the epoch
    assert await store.inbox("a@localhost") == inbox
    with pytest.raises(AddressTaken):
        await store.create_inbox(Inbox("a@localhost", b"other", NOW, NOW + timedelta(hours=1)))
    with pytest.raises(NotFound):
        await store.inbox("nobody@localhost")
    await store.refresh_stats(NOW)
    assert store.stats().inboxes == 1
    await store.refresh_stats(NOW + timedelta(hours=1))
    assert store.stats().inboxes == 0  # counted only while live


async def test_ping_update_and_seen(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store)
    assert await store.ping() is True
    inbox = Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1))
    await store.create_inbox(inbox)
    longer = Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=5))
    await store.update_inbox(longer)
    assert await store.inbox("a@localhost") == longer
    with pytest.raises(NotFound):
        await store.update_inbox(Inbox("nobody@localhost", b"h", NOW, NOW))
    sent = mail("a@localhost")
    await store.add([sent], b"x")
    flipped = await store.mark_seen("a@localhost", sent.id, not sent.seen)
    assert flipped == dataclasses.replace(sent, seen=not sent.seen)
    assert await store.summary("a@localhost", sent.id) == flipped
    assert (await store.summaries("a@localhost"))[0].seen is (not sent.seen)
    with pytest.raises(NotFound):
        await store.mark_seen("a@localhost", "0" * 24, True)


async def test_an_account_keeps_its_password_hash_for_its_lifetime_only(
    make_store: StoreFactory,
) -> None:
    store = await opened(make_store)
    account = Inbox("a@localhost", None, NOW, NOW + timedelta(hours=1), password_hash=b"\x01s")
    await store.create_inbox(account)
    assert await store.inbox("a@localhost") == account
    longer = dataclasses.replace(account, expires_at=NOW + timedelta(hours=3))
    await store.update_inbox(longer)
    assert (await store.inbox("a@localhost")).password_hash == b"\x01s"
    later = NOW + timedelta(hours=4)  # made again as a plain inbox: no password of the old one
    again = await store.create_inbox(Inbox("a@localhost", b"h", later, later + timedelta(hours=1)))
    assert (await store.inbox("a@localhost")) == again
    assert again.password_hash is None


async def test_an_expired_inbox_can_be_taken_again(make_store: StoreFactory) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    later = NOW + timedelta(hours=2)
    again = await store.create_inbox(Inbox("a@localhost", b"h2", later, later + timedelta(hours=1)))
    assert again.claims_from == NOW + timedelta(hours=1)  # from the first one's end
    assert await store.inbox("a@localhost") == again


async def test_an_inbox_made_again_holds_none_of_the_old_ones_mail(
    make_store: StoreFactory, mail: Mail
) -> None:
    """Before any purge: the old inbox's mail is neither listed nor readable by the new
    one (and is gone); mail that came after the old one ended (unclaimed) is the new one's."""
    store = await opened(make_store)
    end = NOW + timedelta(minutes=10)
    await store.create_inbox(Inbox("a@localhost", b"old", NOW, end))
    secret = mail("a@localhost", at=NOW + timedelta(minutes=1))
    in_flight = mail("a@localhost", at=end - timedelta(milliseconds=1))
    unclaimed = mail("a@localhost", at=end + timedelta(minutes=1))
    await store.add([secret], b"reset code 111111")
    await store.add([unclaimed], b"after the end")
    again = await store.create_inbox(
        Inbox("a@localhost", b"new", end + timedelta(minutes=2), end + timedelta(hours=1))
    )
    # A delivery received before the end, committed only now: still not the new inbox's.
    await store.add([in_flight], b"late")
    since = again.claims_from
    assert [s.id for s in await store.summaries("a@localhost", since=since)] == [unclaimed.id]
    assert await store.usage("a@localhost", since=since) == (1, len(b"after the end"))
    for hidden in (secret, in_flight):
        with pytest.raises(NotFound):
            await store.raw("a@localhost", hidden.id, since=since)
        with pytest.raises(NotFound):
            await store.summary("a@localhost", hidden.id, since=since)
        with pytest.raises(NotFound):
            await store.mark_seen("a@localhost", hidden.id, True, since=since)
        with pytest.raises(NotFound):
            await store.delete("a@localhost", hidden.id, since=since)
    with pytest.raises(NotFound):  # not merely hidden: deleted when the address was taken
        await store.raw("a@localhost", secret.id)
    purged = await store.purge_expired(end + timedelta(minutes=3))
    assert ("a@localhost", in_flight.id) not in purged  # the new inbox is live: kept, hidden


async def test_a_burn_ends_the_inbox_and_its_mail_at_once(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    sent = [mail("a@localhost") for _ in range(3)]
    for summary in sent:
        await store.add([summary], b"x")
    burned_at = NOW + timedelta(minutes=5)
    assert sorted(await store.burn_inbox("a@localhost", burned_at)) == [s.id for s in sent]
    assert await store.summaries("a@localhost") == []
    assert (await store.inbox("a@localhost")).expires_at == burned_at  # ended, remembered
    again = await store.create_inbox(
        Inbox("a@localhost", b"h2", burned_at, burned_at + timedelta(hours=1))
    )
    assert again.claims_from == burned_at
    await store.refresh_stats(burned_at)
    assert store.stats() == type(store.stats())(0, 0, 1)


async def test_add_list_read_delete(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store)
    first, second = mail("a@localhost"), mail("a@localhost")
    assert await store.add([first], b"one") == Stored([first.id], [])
    await store.add([second], b"two")
    assert await store.summaries("a@localhost") == [second, first]  # newest first
    assert await store.raw("a@localhost", first.id) == b"one"
    assert await store.summary("a@localhost", second.id) == second
    await store.delete("a@localhost", first.id)
    with pytest.raises(NotFound):
        await store.raw("a@localhost", first.id)
    with pytest.raises(NotFound):
        await store.delete("a@localhost", first.id)
    with pytest.raises(NotFound):
        await store.raw("b@localhost", second.id)  # another inbox's message is not found
    await store.refresh_stats(NOW)
    assert store.stats().messages == 1
    assert store.stats().bytes == 3


async def test_one_message_for_several_inboxes(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store)
    await store.add([mail("a@localhost"), mail("b@localhost")], b"shared")
    assert len(await store.summaries("a@localhost")) == 1
    assert len(await store.summaries("b@localhost")) == 1
    assert store.stats().messages == 2


async def test_sender_checks_recorded_later_reach_every_copy_still_held(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    kept, deleted = (dataclasses.replace(mail(a), auth="") for a in ("a@localhost", "b@localhost"))
    await store.add([kept, deleted], b"shared")
    await store.delete("b@localhost", deleted.id)
    results = "spf=fail smtp.mailfrom=bank.test; dkim=none; dmarc=fail header.from=bank.test"
    copies = [("a@localhost", kept.id), ("b@localhost", deleted.id)]
    checked = dataclasses.replace(kept, auth=results)
    assert await store.set_auth(copies, results) == [checked]
    assert await store.summary("a@localhost", kept.id) == checked
    assert await store.summaries("a@localhost") == [checked]


async def test_pagination_with_a_cursor(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store)
    sent = [mail("a@localhost") for _ in range(7)]
    for summary in sent:
        await store.add([summary], b"x")
    page1 = await store.summaries("a@localhost", limit=3)
    page2 = await store.summaries("a@localhost", before=page1[-1].id, limit=3)
    page3 = await store.summaries("a@localhost", before=page2[-1].id, limit=3)
    assert [s.id for s in page1 + page2 + page3] == [s.id for s in reversed(sent)]
    assert await store.summaries("a@localhost", before=sent[0].id) == []


async def test_per_inbox_cap_evicts_the_oldest(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store, inbox_max_messages=3)
    sent = [mail("a@localhost") for _ in range(5)]
    evicted = []
    for summary in sent:
        evicted += (await store.add([summary], b"x")).evicted
    assert evicted == [("a@localhost", sent[0].id), ("a@localhost", sent[1].id)]
    assert [s.id for s in await store.summaries("a@localhost")] == [s.id for s in sent[:1:-1]]


async def test_byte_cap_is_never_exceeded(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store, max_bytes=1000)
    for number in range(50):
        await store.add([mail(f"box{number % 7}@localhost")], b"z" * 90)
        assert store.stats().bytes <= 1000
    # Eviction makes room oldest first, and not much more than needed: the SQL store shared
    # by several writers evicts a little under the cap (5%) to make room for many batches.
    assert 1000 - 50 - 90 <= store.stats().bytes <= 1000
    with pytest.raises(TooLargeForStore):
        await store.add([mail("a@localhost")], b"q" * 1001)


async def test_purge_removes_expired_mail_and_inboxes(make_store: StoreFactory, mail: Mail) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("gone@localhost", None, NOW, NOW + timedelta(minutes=30)))
    old = mail("gone@localhost", ttl=60)
    burnt = mail("gone@localhost", ttl=7200)  # outlives its message ttl, not its inbox
    kept = mail("stay@localhost", ttl=7200)
    await store.add([old], b"old")
    await store.add([burnt], b"burnt")
    await store.add([kept], b"kept")
    assert await store.purge_expired(NOW + timedelta(seconds=59)) == []
    CLOCK.advance(hours=1)
    purged = await store.purge_expired(CLOCK())
    # Its TTL passed: told, and never read again. The inbox's mail is read through the inbox
    # no more (inboxes.py); the stores that delete by the row delete it at the inbox's end,
    # the partitioned one with its partition.
    assert ("gone@localhost", old.id) in purged
    assert set(purged) <= {("gone@localhost", old.id), ("gone@localhost", burnt.id)}
    with pytest.raises(NotFound):
        await store.summary("gone@localhost", old.id)
    assert old.id not in [s.id for s in await store.summaries("gone@localhost")]
    assert (await store.inbox("gone@localhost")).expires_at == NOW + timedelta(minutes=30)
    forgotten = NOW + timedelta(minutes=30) + EXPIRED_INBOX_MEMORY
    assert await store.purge_expired(forgotten - timedelta(seconds=1)) == []
    assert await store.purge_expired(forgotten) == [("gone@localhost", "")]
    with pytest.raises(NotFound):
        await store.inbox("gone@localhost")
    assert [s.id for s in await store.summaries("stay@localhost")] == [kept.id]
    await store.refresh_stats(NOW)
    assert store.stats().inboxes == 0
    await assert_all_gone_after_every_ttl(store, NOW + timedelta(hours=2))


async def assert_all_gone_after_every_ttl(store: Store, last_expiry: datetime) -> None:
    """Nothing is held once every message has expired and the purge after that has run: by
    the row (memory, SQLite), or with its partition, once the span it took mail in is two
    behind (PostgreSQL, ring.py; here every message arrived at NOW)."""
    gone = last_expiry
    if isinstance(store, PostgresStore):
        gone = max(gone, NOW + 2 * timedelta(milliseconds=store._ring.width_ms))
    CLOCK.now = gone + timedelta(seconds=1)
    await store.purge_expired(CLOCK())
    await store.refresh_stats(CLOCK())
    assert (store.stats().messages, store.stats().bytes) == (0, 0)


async def test_an_expiry_larger_than_one_purge_batch_goes_whole(
    make_store: StoreFactory, mail: Mail
) -> None:
    """The SQL stores purge (or tell) a batch of rows a statement: the batch boundary loses
    nothing."""
    store = await opened(make_store)
    expiring = [mail(f"u{number}@localhost", ttl=60) for number in range(2 * PURGE_BATCH + 1)]
    await store.add(expiring, b"x")
    kept = mail("stay@localhost", ttl=7200)
    await store.add([kept], b"kept")
    CLOCK.advance(minutes=5)
    purged = await store.purge_expired(CLOCK())
    assert sorted(purged) == sorted((s.address, s.id) for s in expiring)
    assert [s.id for s in await store.summaries("stay@localhost")] == [kept.id]
    assert await store.summaries("u0@localhost") == []
    assert await store.purge_expired(CLOCK()) == []  # each is told once
    await assert_all_gone_after_every_ttl(store, NOW + timedelta(hours=2))


async def test_nothing_of_a_deleted_message_stays_referenced(mail: Mail) -> None:
    """Memory store only: after delete, expiry or burn nothing refers to the bytes."""
    store = MemoryStore(max_bytes=10**9, inbox_max_messages=1000, clock=CLOCK)
    kept = [bytes(b"secret %d" % n) for n in range(3)]
    alone = [sys.getrefcount(raw) for raw in kept]  # the list's reference and the argument's
    summaries = [mail("a@localhost", ttl=60 * (n + 1)) for n in range(3)]
    for summary, raw in zip(summaries, kept, strict=True):
        await store.add([summary], raw)
    del raw
    assert [sys.getrefcount(raw) for raw in kept] != alone
    await store.delete("a@localhost", summaries[0].id)
    await store.purge_expired(NOW + timedelta(seconds=90))
    await store.burn_inbox("a@localhost", NOW)
    gc.collect()
    assert [sys.getrefcount(raw) for raw in kept] == alone


async def test_age_index_stays_proportional_after_many_deletes(mail: Mail) -> None:
    store = MemoryStore(max_bytes=10**9, inbox_max_messages=10**6, clock=CLOCK)
    summaries = [mail(f"a{n % 10}@localhost") for n in range(5000)]
    for summary in summaries:
        await store.add([summary], b"x")
    for summary in summaries[:4900]:
        await store.delete(summary.address, summary.id)
    assert len(store._arrivals) < 2100  # compacted, not 5000 stale entries


async def test_concurrent_adds_share_commits_and_keep_the_caps(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store, inbox_max_messages=5)
    sent = [mail("a@localhost") for _ in range(12)]
    results = await asyncio.gather(*(store.add([summary], b"xy") for summary in sent))
    kept = await store.summaries("a@localhost")
    assert [s.id for s in kept] == [s.id for s in reversed(sent[-5:])]
    assert [result.ids for result in results] == [[summary.id] for summary in sent]
    evicted = sorted(pair for result in results for pair in result.evicted)
    assert evicted == sorted(("a@localhost", s.id) for s in sent[:7])
    assert store.stats().messages == 5
    assert store.stats().bytes == 10
    assert await store.usage("a@localhost") == (5, 10)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_counts_caps_and_expiry_survive_a_restart(
    backend: str, mail: Mail, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        where: object = request.getfixturevalue("postgres_url")
        await reset(str(where))
    else:
        where = tmp_path / "restart"
    limits = {"max_bytes": 1000, "inbox_max_messages": 3}
    first = BACKENDS[backend](where, **limits)
    await first.open()
    await first.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    short = [mail("a@localhost", ttl=60) for _ in range(2)]
    long = [mail("a@localhost", ttl=7200) for _ in range(2)]
    for summary in short + long:
        await first.add([summary], b"y" * 100)
    await first.refresh_stats(NOW)
    before = (first.stats(), await first.summaries("a@localhost"))
    await first.close()

    second = BACKENDS[backend](where, **limits)
    await second.open()
    try:
        await second.refresh_stats(NOW)
        assert (second.stats(), await second.summaries("a@localhost")) == before
        assert before[0].messages == 3  # the cap held before the restart
        assert await second.raw("a@localhost", long[-1].id) == b"y" * 100
        purged = await second.purge_expired(NOW + timedelta(minutes=5))
        assert purged == [("a@localhost", short[1].id)]
        await second.add([mail("a@localhost")], b"z" * 100)
        await second.add([mail("a@localhost")], b"z" * 100)
        assert len(await second.summaries("a@localhost")) == 3  # and after it
        assert second.stats().bytes == 300
    finally:
        await second.close()


async def test_only_one_node_purges_at_a_time(mail: Mail, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    await reset(url)
    store = PostgresStore(url, max_bytes=10**9, inbox_max_messages=1000, clock=CLOCK)
    await store.open()
    other_node = await asyncpg.connect(url)
    try:
        expired = mail("a@localhost", ttl=60)
        await store.add([expired], b"x")
        await other_node.execute("SELECT pg_advisory_lock($1)", PURGE_LOCK)  # purging there
        assert await store.purge_expired(NOW + timedelta(hours=1)) == []
        assert store.stats().messages == 1  # left for the node that holds the lock
        await other_node.execute("SELECT pg_advisory_unlock($1)", PURGE_LOCK)
        assert await store.purge_expired(NOW + timedelta(hours=1)) == [("a@localhost", expired.id)]
    finally:
        await other_node.close()
        await store.close()


# -- webhooks: registrations and the outbox, the same on every store -----------------------


def hook(
    address: str, inbox_created: datetime, events: tuple[str, ...], hook_id: str = "h1"
) -> Webhook:
    return Webhook(
        id=hook_id,
        address=address,
        inbox_created=inbox_created,
        url="https://receiver.test/hook",
        secret="whsec_c2VjcmV0",
        events=events,
        include_body=False,
        created_at=NOW,
    )


ALL_EVENTS = ("message.received", "message.deleted", "inbox.expired", "inbox.burned")


async def test_a_message_stored_and_deleted_is_told_to_its_inboxes_hooks(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    await store.add_webhook(hook("a@localhost", NOW, ALL_EVENTS))
    await store.add_webhook(hook(NODE_WIDE, EPOCH, ("message.received",), "node"))
    sent = mail("a@localhost")
    await store.add([sent, mail("b@localhost")], b"raw")
    await store.delete("a@localhost", sent.id)
    later = NOW + timedelta(days=1)
    claimed = await store.claim_deliveries(later, later + timedelta(minutes=1), 10)
    told = sorted((item.webhook_id, item.kind, item.address) for item in claimed)
    assert told == [
        ("h1", "message.deleted", "a@localhost"),
        ("h1", "message.received", "a@localhost"),
        ("node", "message.received", "a@localhost"),
        ("node", "message.received", "b@localhost"),
    ]
    received = next(
        item for item in claimed if item.webhook_id == "h1" and item.kind == "message.received"
    )
    assert json.loads(received.payload)["subject"] == sent.subject
    assert received.message_id == sent.id
    # Claimed ones are held: nobody else gets them during the lease.
    assert await store.claim_deliveries(later, later + timedelta(minutes=1), 10) == []
    await store.settle_delivery(received, "200", later, delivered=True, retry_at=None)
    other = next(item for item in claimed if item.kind == "message.deleted")
    retry = later + timedelta(minutes=5)
    await store.settle_delivery(other, "500", later, delivered=False, retry_at=retry)
    (listed,) = await store.webhooks("a@localhost")
    assert (listed.last_status, listed.delivered, listed.failed, listed.pending) == ("500", 1, 0, 1)
    # Due again: the retried one, and the node-wide ones whose lease ran out unsettled.
    due = await store.claim_deliveries(retry, retry + timedelta(minutes=1), 10)
    again = next(item for item in due if item.id == other.id)
    assert again.attempts == 1
    assert len(due) == 3
    await store.settle_delivery(again, "timeout", retry, delivered=False, retry_at=None)
    assert (await store.webhooks("a@localhost"))[0].failed == 1


async def test_mail_after_an_inbox_ended_is_never_told_to_its_hooks(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    await store.add_webhook(hook("a@localhost", NOW, ALL_EVENTS))
    late = dataclasses.replace(mail("a@localhost"), received_at=NOW + timedelta(hours=2))
    await store.add([late], b"raw")
    later = NOW + timedelta(days=1)
    assert await store.claim_deliveries(later, later, 10) == []
    assert await store.end_webhooks(NOW + timedelta(hours=2)) == 1  # expired: told, then gone
    (ended,) = await store.claim_deliveries(later, later, 10)
    assert (ended.kind, ended.address) == ("inbox.expired", "a@localhost")
    assert await store.webhooks("a@localhost") == []


async def test_a_burned_inbox_tells_its_hooks_and_they_go(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    await store.add_webhook(hook("a@localhost", NOW, ALL_EVENTS))
    await store.add_webhook(hook("a@localhost", NOW, ("message.received",), "quiet"))
    await store.add([mail("a@localhost")], b"raw")
    later = NOW + timedelta(days=1)
    await store.claim_deliveries(later, later + timedelta(days=9), 10)  # the arrivals, aside
    await store.burn_inbox("a@localhost", NOW)
    assert [
        (item.webhook_id, item.kind) for item in await store.claim_deliveries(later, later, 10)
    ] == [("h1", "inbox.burned")]  # the burn, not each message going
    with pytest.raises(NotFound):
        await store.delete_webhook("a@localhost", "h1")
    assert await store.end_webhooks(NOW + timedelta(hours=2)) == 0  # told once, not expired


async def test_the_node_wide_hook_hears_every_inboxs_end_once(
    make_store: StoreFactory, mail: Mail
) -> None:
    """From the same place as an inbox's own hooks: burned and expired inboxes, each once,
    and not the deletes of their mail after; only ends after the hook was made."""
    store = await opened(make_store)
    for name in ("old", "burned", "expires", "lives"):
        life = timedelta(minutes=1 if name == "old" else 60 if name != "lives" else 600)
        await store.create_inbox(Inbox(f"{name}@localhost", b"h", NOW, NOW + life))
    node = dataclasses.replace(
        hook(NODE_WIDE, EPOCH, ALL_EVENTS, "node"), created_at=NOW + timedelta(minutes=5)
    )
    await store.add_webhook(node)
    held = [mail(f"{name}@localhost", ttl=36_000) for name in ("burned", "expires", "lives")]
    await store.add(held, b"raw")
    later = NOW + timedelta(days=1)
    arrivals = await store.claim_deliveries(later, later + timedelta(days=9), 10)
    assert sorted(item.address for item in arrivals) == [s.address for s in held]
    await store.burn_inbox("burned@localhost", NOW + timedelta(minutes=10))
    assert await store.end_webhooks(NOW + timedelta(minutes=70)) == 2  # "old" and "expires"
    assert await store.end_webhooks(NOW + timedelta(minutes=70)) == 0  # each end once
    await store.purge_expired(NOW + timedelta(minutes=70))  # the ended inbox's mail goes
    await store.delete("lives@localhost", held[2].id)  # a live inbox's delete is told
    told = await store.claim_deliveries(later, later, 10)
    assert sorted((item.kind, item.address) for item in told) == [
        ("inbox.burned", "burned@localhost"),
        ("inbox.expired", "expires@localhost"),  # "old" ended before the hook was made
        ("message.deleted", "lives@localhost"),
    ]
    ids = [item.event_id for item in arrivals + told]
    assert all(event_id.startswith("evt_") and len(event_id) == 36 for event_id in ids)
    assert len(set(ids)) == len(ids)


async def test_the_outbox_is_bounded_and_drops_the_oldest(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    await store.add_webhook(hook("a@localhost", NOW, ("message.received",)))
    sent = [mail("a@localhost") for _ in range(5)]
    for summary in sent:
        await store.add([summary], b"raw")
    assert await store.trim_outbox(per_hook=3, total=100) == 2
    later = NOW + timedelta(days=1)
    kept = await store.claim_deliveries(later, later, 10)
    assert [item.message_id for item in kept] == [summary.id for summary in sent[2:]]
    await store.delete_webhook("a@localhost", "h1")
    assert await store.claim_deliveries(later + timedelta(days=1), later, 10) == []


async def test_a_released_delivery_is_due_again_untried(
    make_store: StoreFactory, mail: Mail
) -> None:
    store = await opened(make_store)
    await store.create_inbox(Inbox("a@localhost", b"h", NOW, NOW + timedelta(hours=1)))
    await store.add_webhook(hook("a@localhost", NOW, ("message.received",)))
    await store.add([mail("a@localhost")], b"raw")
    (claimed,) = await store.claim_deliveries(NOW, NOW + timedelta(minutes=5), 10)
    await store.release_delivery(claimed, NOW)
    (again,) = await store.claim_deliveries(NOW, NOW + timedelta(minutes=5), 10)
    assert (again.id, again.attempts) == (claimed.id, 0)
