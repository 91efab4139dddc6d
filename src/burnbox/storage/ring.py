"""Mail kept in a ring of 32 partitions by arrival, and expired by emptying one whole
(PostgreSQL; schema/postgres/014_ring.sql).

A message goes to the partition named by one character of its id: the id's first 48 bits
are its arrival in milliseconds, so the character at `position` counts spans of
2^(48 - 5 * position) ms, and the same partition comes round every 32 spans. The
partitions are made once and never dropped: once every message of a past span has expired
and been told, its partition is emptied by TRUNCATE, which deletes no row (making and
dropping a partition deleted about 130 rows of the system catalogs, 26% of the messages
sent at a 10 s TTL: bench/retention.py). Reads hide expired mail meanwhile.

Emptying takes the partition's ACCESS EXCLUSIVE lock (a second at most, or it waits for
the next round), checks under it that all it holds has expired, tells the webhooks that
would have heard those deletes, lowers the store's totals, notes per inbox what went
(burnbox_emptied) and truncates. Inserts lock only the partition they go to, so mail is
not held up; a read of a whole inbox waits for the few milliseconds the lock is held. The
inboxes' counters are lowered afterwards, a slice of inboxes at a time (drain), as
autovacuum paces itself: until then a counter can say more than the inbox holds, which
makes a delivery look at trimming it, never lose mail.

One node keeps the ring at a time, by a lease in the database (two emptying the same
partition would wait on each other's locks for nothing).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import asyncpg

from burnbox.storage import retired_ranges
from burnbox.storage.counter_locks import lock_counters

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # ids.py's: one partition per character
SLOTS = len(ALPHABET)
LOCK_WAIT_MS = 1000  # how long emptying waits for a partition's readers before giving up
DRAIN_SLICE = 1_000  # inboxes whose counters one drain transaction lowers
DRAIN_REST = 3.0  # after each slice, rest this many times as long as it took
OVERDUE_ROWS = 5_000  # expired rows deleted a round from a partition that cannot be emptied
# The latest expiry each partition holds, in one round trip (each by its expiry index).
_LATEST = " UNION ALL ".join(
    f"(SELECT '{slot}', max(expires_at) FROM messages_s{slot})" for slot in ALPHABET
)
_QUEUE = (
    "WITH held AS (SELECT address, count(*) AS n, sum(stored) AS b FROM {table} "
    "GROUP BY address), queued AS (INSERT INTO burnbox_emptied (batch, address, n) "
    "SELECT $1, address, n FROM held) "
    "SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(b), 0)::bigint FROM held"
)
_SLICE = (
    "WITH slice AS MATERIALIZED (SELECT address, sum(n) AS n FROM burnbox_emptied "
    "WHERE batch = $1 AND address > $2 GROUP BY address ORDER BY address LIMIT $3), "
    "lowered AS (UPDATE address_counts c SET messages = c.messages - s.n FROM slice s "
    "WHERE c.address = s.address) SELECT max(address) FROM slice"
)


def slot_width_ms(position: int) -> int:
    """The span one partition takes at a time, for the id character at `position` (1-based)."""
    return int(2 ** (48 - 5 * position))


def ring_position(message_ttl: float, maintain_every: float) -> int:
    """The id character that names a message's partition: the narrowest spans whose ring
    holds twice the TTL and a maintenance round, so that a partition is emptied well before
    it comes round again. A 10 s TTL gives spans of 8 s, an hour 4.4 minutes, a day
    2.3 hours, a week 3.1 days."""
    needed = 2 * (message_ttl + maintain_every) * 1000
    for position in range(8, 1, -1):
        if (SLOTS - 1) * slot_width_ms(position) >= needed:
            return position
    return 1


class Ring:
    def __init__(self, position: int, lease_ms: int = 60_000) -> None:
        self._lease_ms = lease_ms  # a keeper that stopped is replaced this long after
        self._me = secrets.token_hex(8)
        self.width_ms = slot_width_ms(position)  # as recorded in the database, once open

    async def open(self, connection: Any) -> None:
        """Read the width every node keeps to: the migrating node's choice."""
        position = await connection.fetchval("SELECT slot_position FROM burnbox_partitioning")
        self.width_ms = slot_width_ms(position)

    def slot_at(self, ms: int) -> str:
        return ALPHABET[ms // self.width_ms % SLOTS]

    def behind(self, now_ms: int) -> list[str]:
        """The partitions whose spans are over, oldest first (the next to come round first),
        without the last one: a node whose clock lags a little may still write there."""
        bucket = now_ms // self.width_ms
        return [ALPHABET[(bucket - back) % SLOTS] for back in range(SLOTS - 1, 1, -1)]

    async def keeping(self, connection: Any) -> bool:
        """Whether this node keeps the ring: it holds the lease, renewed, or took it from a
        keeper whose lease ran out (timed by the database's clock; the nodes' may differ)."""
        kept = await connection.fetchval(
            "UPDATE burnbox_partitioning SET ring_keeper = $1, ring_lease_until = "
            "clock_timestamp() + make_interval(secs => $2::float8 / 1000) "
            "WHERE ring_keeper = $1 OR ring_lease_until < clock_timestamp() RETURNING true",
            self._me,
            self._lease_ms,
        )
        return bool(kept)

    async def maintain(self, connection: Any, now_ms: int) -> int:
        """Empty what has expired, lower the counters by it, clear the next partition to
        come round if it cannot be emptied; if this node keeps the ring. Returns how many
        partitions were emptied."""
        if not await self.keeping(connection):
            return 0
        await retired_ranges.retire(connection, now_ms)
        await drain(connection)  # what a node that stopped left
        latest = await latest_expiries(connection)
        emptied = set()
        for slot in self.behind(now_ms):
            expiry = latest[slot]
            if expiry is None or expiry > now_ms:
                continue
            if await empty(connection, slot, now_ms) is not None:
                emptied.add(slot)
        if emptied:
            await drain(connection)
        coming = self.slot_at(now_ms + self.width_ms)
        if latest[coming] is not None and coming not in emptied:
            await clear_overdue(connection, coming, now_ms)
        return len(emptied)

    async def fits(self, connection: Any, excess: int, now_ms: int) -> str | None:
        """The oldest partition holding mail, if its span is over and all it holds is within
        `excess` bytes: eviction for the byte cap would delete every row of it anyway. Only
        on the node that keeps the ring."""
        if not await self.keeping(connection) or await retired_ranges.holding(connection):
            return None  # the mail held before the ring is older: it goes first, by the row
        latest = await latest_expiries(connection)
        for slot in [*self.behind(now_ms), self.slot_at(now_ms - self.width_ms)]:
            if latest[slot] is not None:
                held = await connection.fetchval(
                    f"SELECT coalesce(sum(stored), 0) FROM messages_s{slot}"
                )
                return slot if held <= excess else None
        return None

    async def evict(self, connection: Any, slot: str, excess: int) -> list[Any]:
        """Empty a partition whole for the byte cap; its rows (address, id, stored), read
        under its lock, so that none that came late goes untold. [] if it was left."""
        rows = await empty(connection, slot, room=excess)
        if rows:
            await drain(connection)
        return rows or []


async def latest_expiries(connection: Any) -> dict[str, int | None]:
    """Each partition's latest expiry; None for an empty one."""
    return {row[0]: row[1] for row in await connection.fetch(_LATEST)}


async def empty(
    connection: Any, slot: str, now_ms: int | None = None, *, room: int | None = None
) -> list[Any] | None:
    """Empty a partition in one transaction: for expiry (`now_ms`: if all it holds has
    expired and been told), or for room (`room`: if it holds at most that many bytes; then
    its rows are returned). None if it was left as it was."""
    messages, bodies = f"messages_s{slot}", f"bodies_s{slot}"
    try:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
            await connection.execute(f"LOCK TABLE {messages}, {bodies} IN ACCESS EXCLUSIVE MODE")
            if not await _may_empty(connection, messages, now_ms, room):
                return None
            rows = []
            if room is not None:
                rows = list(await connection.fetch(f"SELECT address, id, stored FROM {messages}"))
            await connection.execute("SELECT burnbox_tell_dropped($1::regclass)", messages)
            batch = await connection.fetchval(  # holds the row: batches commit in order
                "UPDATE burnbox_draining SET queued = queued + 1 RETURNING queued"
            )
            held = await connection.fetchrow(_QUEUE.format(table=messages), batch)
            await connection.execute(  # the shard no writer uses (012_maintenance_shard.sql)
                "UPDATE usage_shards SET messages = messages - $1, bytes = bytes - $2 "
                "WHERE shard = 16",
                *held,
            )
            await connection.execute(f"TRUNCATE {messages}, {bodies}")
    except asyncpg.LockNotAvailableError:
        return None  # readers held it for a second: the next round tries again
    return rows


async def _may_empty(connection: Any, table: str, now_ms: int | None, room: int | None) -> bool:
    """Checked under the partition's lock, so that nothing arrives after the check."""
    if room is not None:
        held = await connection.fetchval(f"SELECT sum(stored) FROM {table}")
        return held is not None and held <= room
    latest = await connection.fetchval(f"SELECT max(expires_at) FROM {table}")
    if latest is None or now_ms is None:
        return False
    told = await connection.fetchval("SELECT expires_at FROM burnbox_told")
    return bool(latest <= now_ms and latest <= told)


async def drain(connection: Any) -> None:
    """Lower the counters by every batch emptied, a slice at a time, resting between the
    slices: it is background work, and on a busy node it should take a share of the
    database's time, not all it can get (working flat out lifted ingest's p99 2.2x to 2.9x
    where resting three times as long kept it under 2x: bench/resident.py)."""
    while True:
        began = time.monotonic()
        if not await drain_slice(connection):
            return
        await asyncio.sleep((time.monotonic() - began) * DRAIN_REST)


async def drain_slice(connection: Any) -> bool:
    """What the counting triggers would have done to the next DRAIN_SLICE inboxes' counters
    had the emptied rows been deleted; False once all is done (and burnbox_emptied is then
    truncated). The counter rows are locked in address order, as every writer locks them:
    the slice is read sorted and drives the update row by row through the counters' index
    (a hash join would take them in the table's order, and could deadlock with a writer)."""
    async with connection.transaction():
        batch, through, queued = await connection.fetchrow(
            "SELECT batch, through, queued FROM burnbox_draining FOR UPDATE"
        )
        await connection.execute("SET LOCAL enable_hashjoin = off")
        last = await connection.fetchval(_SLICE, batch, through, DRAIN_SLICE)
        if last is not None:
            await connection.execute("UPDATE burnbox_draining SET through = $1", last)
            return True
        if batch < queued:  # this batch is done: the next
            await connection.execute(
                "UPDATE burnbox_draining SET batch = $1, through = ''", batch + 1
            )
            return True
        # All lowered, and no batch can be on its way (it would hold this row).
        if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM burnbox_emptied)"):
            await connection.execute("TRUNCATE burnbox_emptied")
        return False


async def clear_overdue(connection: Any, slot: str, now_ms: int) -> int:
    """The partition to come round next still holds mail that has not expired (a TTL
    longer than the ring: mail of a node with a longer TTL, say): it cannot be emptied, so
    its expired and told mail goes row by row, up to OVERDUE_ROWS a round, counters
    locked first in address order as every writer does. Returns the rows deleted."""
    async with connection.transaction():
        told = await connection.fetchval("SELECT expires_at FROM burnbox_told")
        found = await connection.fetch(
            f"SELECT address, id FROM messages_s{slot} WHERE expires_at <= $1 LIMIT $2",
            min(now_ms, told),
            OVERDUE_ROWS,
        )
        if not found:
            return 0
        await lock_counters(connection, sorted({row[0] for row in found}))
        result = await connection.execute(
            "DELETE FROM messages WHERE burnbox_slot(id) = $3 AND (address, id) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            [row[0] for row in found],
            [row[1] for row in found],
            slot,
        )
    return int(result.split()[-1])
