"""Emptying one partition of the ring whole, and lowering the inboxes' counters after it
(PostgreSQL; storage/ring.py keeps the ring and decides when).

What a partition held must be known per inbox before TRUNCATE takes it, so that the
counters can be lowered exactly. Working that out in one statement under the partition's
lock (116,500 messages: 1 s of the database's time) lifted ingest's p99 5.9x meanwhile
(bench/resident.py), though ingest never waits for that lock: the two cores and the WAL
were all it took. So for expiry it is worked out first, a slice of inboxes at a time with
a rest after each (snapshot), into burnbox_emptied under an attempt number of its own;
then, under the lock, one pass checks that the partition still holds exactly what the
slices saw (its rows' count, bytes, and the XOR of a 64-bit hash of each row's key) and
that no drain has truncated the slices' rows since. If anything differs (mail came late,
a burn took some), the counts are worked out again under the lock, as eviction for the
byte cap always does (it must be quick, and its mail is not expired). Then the webhooks
are told, the store's totals lowered, the attempt published to be drained
(burnbox_published) and the partition truncated: no row deleted anywhere.

The counters are lowered afterwards, a slice of inboxes at a time in address order, as
every writer locks them (drain); until then a counter can say more than its inbox holds,
which makes a delivery look at trimming the inbox, never lose mail. Once every attempt
published is drained, burnbox_emptied and burnbox_published are truncated, and with them
any attempt left unpublished (its node stopped, or its check failed).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from burnbox.storage.counter_locks import lock_counters

LOCK_WAIT_MS = 1000  # how long emptying waits for a partition's readers before giving up
SLICE = 1_000  # inboxes a snapshot or drain transaction takes
REST = 3.0  # after each slice, rest this many times as long as it took
OVERDUE_ROWS = 5_000  # expired rows deleted a round from a partition that cannot be emptied
_KEY_HASH = "hashtextextended(address || ' ' || id, 0)"  # one row's part of the fingerprint
_SNAPSHOT = (
    "WITH slice AS MATERIALIZED (SELECT address, count(*) AS n, sum(stored) AS b, "
    f"bit_xor({_KEY_HASH}) AS h FROM {{table}} WHERE address > $1 GROUP BY address "
    "ORDER BY address LIMIT $2), noted AS (INSERT INTO burnbox_emptied (attempt, address, n) "
    "SELECT $3, address, n FROM slice) "
    "SELECT max(address), sum(n)::bigint, sum(b)::bigint, bit_xor(h) FROM slice"
)
_HELD = (
    "SELECT count(*), coalesce(sum(stored), 0)::bigint, "
    f"coalesce(bit_xor({_KEY_HASH}), 0) FROM {{table}}"
)
_DRAIN = (
    "WITH slice AS MATERIALIZED (SELECT address, sum(n) AS n FROM burnbox_emptied "
    "WHERE attempt = $1 AND address > $2 GROUP BY address ORDER BY address LIMIT $3), "
    "lowered AS (UPDATE address_counts c SET messages = c.messages - s.n FROM slice s "
    "WHERE c.address = s.address) SELECT max(address) FROM slice"
)


@dataclass
class Snapshot:
    """What the slices saw of a partition, noted as `attempt` in burnbox_emptied."""

    attempt: int
    generation: int  # burnbox_draining's when it began: a truncate since loses its rows
    held: tuple[int, int, int] = (0, 0, 0)  # rows, bytes, XOR of key hashes
    through: str = ""  # every inbox up to this one has been noted


def new_attempt() -> int:
    return secrets.randbits(62) + 1


async def paced(step: Callable[[], Awaitable[bool]]) -> None:
    """Run `step` until it says it is done, resting after each run REST times as long as it
    took: background work that should take a share of the database's time, not all it can
    get, as autovacuum's cost delay does."""
    while True:
        began = time.monotonic()
        if not await step():
            return
        await asyncio.sleep((time.monotonic() - began) * REST)


async def snapshot(connection: Any, slot: str) -> Snapshot:
    """Note per inbox what a partition holds, a slice of inboxes at a time, resting between."""
    generation = await connection.fetchval("SELECT generation FROM burnbox_draining")
    seen = Snapshot(new_attempt(), generation)
    sql = _SNAPSHOT.format(table=f"messages_s{slot}")

    async def next_slice() -> bool:
        last, rows, stored, hashed = await connection.fetchrow(
            sql, seen.through, SLICE, seen.attempt
        )
        if last is None:
            return False
        count, total, fingerprint = seen.held
        seen.held = (count + rows, total + stored, fingerprint ^ hashed)
        seen.through = last
        return True

    await paced(next_slice)
    return seen


async def empty(
    connection: Any,
    slot: str,
    now_ms: int | None = None,
    *,
    room: int | None = None,
    seen: Snapshot | None = None,
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
            held = await _note(connection, messages, seen)
            await connection.execute("SELECT burnbox_tell_dropped($1::regclass)", messages)
            await connection.execute(  # the shard no writer uses (012_maintenance_shard.sql)
                "UPDATE usage_shards SET messages = messages - $1, bytes = bytes - $2 "
                "WHERE shard = 16",
                held[0],
                held[1],
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


async def _note(connection: Any, table: str, seen: Snapshot | None) -> tuple[int, int]:
    """Publish what the partition holds per inbox, to be drained: the snapshot's, if it
    still says exactly that, else worked out now. Returns its (rows, bytes)."""
    count, stored, hashed = await connection.fetchrow(_HELD.format(table=table))
    generation = await connection.fetchval(  # holds the row: attempts publish in order
        "SELECT generation FROM burnbox_draining FOR UPDATE"
    )
    attempt = seen.attempt if seen is not None else 0
    if seen is None or seen.held != (count, stored, hashed) or seen.generation != generation:
        attempt = new_attempt()
        await connection.execute(
            "INSERT INTO burnbox_emptied (attempt, address, n) "
            f"SELECT $1, address, count(*) FROM {table} GROUP BY address",
            attempt,
        )
    await connection.execute(
        "WITH next AS (UPDATE burnbox_draining SET queued = queued + 1 RETURNING queued) "
        "INSERT INTO burnbox_published (seq, attempt) SELECT queued, $1 FROM next",
        attempt,
    )
    return count, stored


async def drain(connection: Any) -> None:
    """Lower the counters by every attempt published, a slice at a time, paced (working
    flat out lifted ingest's p99 2.2x to 2.9x where resting three times as long kept it
    under 2x: bench/resident.py)."""
    await paced(lambda: drain_slice(connection))


async def drain_slice(connection: Any) -> bool:
    """What the counting triggers would have done to the next SLICE inboxes' counters had
    the emptied rows been deleted; False once all is done (and the notes are then
    truncated). The counter rows are locked in address order, as every writer locks them:
    the slice is read sorted and drives the update row by row through the counters' index
    (a hash join would take them in the table's order, and could deadlock with a writer)."""
    async with connection.transaction():
        seq, through, queued = await connection.fetchrow(
            "SELECT seq, through, queued FROM burnbox_draining FOR UPDATE"
        )
        await connection.execute("SET LOCAL enable_hashjoin = off")
        attempt = await connection.fetchval(
            "SELECT attempt FROM burnbox_published WHERE seq = $1", seq
        )
        last = await connection.fetchval(_DRAIN, attempt, through, SLICE) if attempt else None
        if last is not None:
            await connection.execute("UPDATE burnbox_draining SET through = $1", last)
            return True
        if seq < queued:  # this one is done: the next
            await connection.execute("UPDATE burnbox_draining SET seq = $1, through = ''", seq + 1)
            return True
        # All lowered, and none can be on its way (publishing holds this row).
        if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM burnbox_emptied)"):
            await connection.execute("TRUNCATE burnbox_emptied, burnbox_published")
            await connection.execute("UPDATE burnbox_draining SET generation = generation + 1")
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
