"""Mail kept by the span of time it arrived in, and expired by the span (PostgreSQL).

messages and bodies are partitioned alike by range of the message id, whose first 48 bits
are its arrival in milliseconds (schema/postgres/010_partitions.sql). This keeps the set
of partitions:

- **ahead**: partitions for the time to come exist before mail arrives in it, made by one
  node at a time (a transaction-level advisory lock, so it works through PgBouncer), as
  plain tables then attached: ATTACH takes a SHARE UPDATE EXCLUSIVE lock on the parent,
  which does not wait for inserts or readers as CREATE ... PARTITION OF would.
- **behind**: a partition whose span is over and whose every message has passed its TTL
  is detached CONCURRENTLY (no lock that stops mail or reads), then, in one transaction,
  its inboxes' counts and the store's totals are lowered by what it held, the webhooks that
  would have heard those deletes are told, and it is dropped. Nothing is deleted row by
  row, so nothing is left for vacuum. A detach cut short is finished on the next round.

Width: a quarter of the message TTL, at most an hour, at least a second. A partition is
dropped once its last message expires, so mail is held at most one width past its TTL
(hidden from every read meanwhile) and a TTL spans about five partitions; hourly for long
TTLs keeps a day's mail in some 25 partitions, which each read's plan still handles in a
fraction of a millisecond. The first node to open records the width; every node cuts
partitions at it, whatever its own TTL setting, so their bounds always meet.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from burnbox.ids import first_id_ms, id_ms

log = logging.getLogger(__name__)

PARTITION_LOCK = 0x6275726E626F78 + 3  # held (per transaction) by the node making partitions
MIN_WIDTH_MS = 1000
MAX_WIDTH_MS = 3_600_000
UNCOUNT_SLICE = 1_000  # inboxes whose counts a partition drop lowers in one transaction
UNCOUNT_REST = 3.0  # after each slice, rest this many times as long as it took
MAX_AHEAD_MS = 86_400_000  # how far ahead a node's clock may ask for a partition
_BOUND = re.compile(r"FROM \((?:MINVALUE|'([0-9A-Z]+)')\) TO \('([0-9A-Z]+)'\)")
_LIST = (
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending "
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'messages'::regclass"
)


def width_for(message_ttl: float) -> int:
    """The partition width, in milliseconds, for a message TTL in seconds."""
    return max(MIN_WIDTH_MS, min(MAX_WIDTH_MS, int(message_ttl * 1000 / 4)))


@dataclass(frozen=True, slots=True)
class Partition:
    suffix: str  # messages_<suffix> and bodies_<suffix>
    lower_ms: int | None  # None: from the beginning of time
    upper_ms: int
    detaching: bool = False  # a DETACH ... CONCURRENTLY was cut short


def free_spans(existing: list[Partition], since_ms: int, until_ms: int) -> list[tuple[int, int]]:
    """The parts of [since_ms, until_ms) no partition covers."""
    spans = []
    cursor = since_ms
    for part in sorted(existing, key=lambda part: part.upper_ms):
        lower = part.lower_ms if part.lower_ms is not None else -(2**62)
        if part.upper_ms <= cursor:
            continue
        if lower > cursor:
            spans.append((cursor, min(lower, until_ms)))
        cursor = max(cursor, part.upper_ms)
        if cursor >= until_ms:
            break
    if cursor < until_ms:
        spans.append((cursor, until_ms))
    return [(start, end) for start, end in spans if start < end]


def parse(name: str, bound: str, detaching: bool) -> Partition:
    found = _BOUND.search(bound)
    if found is None:
        raise ValueError(f"unexpected partition bound: {bound}")
    lower = None if found.group(1) is None else id_ms(found.group(1))
    return Partition(name.removeprefix("messages_"), lower, id_ms(found.group(2)), detaching)


class Partitions:
    def __init__(self, message_ttl: float, ahead_ms: int, lease_ms: int = 60_000) -> None:
        self._ahead_ms = ahead_ms
        self._lease_ms = lease_ms  # a keeper that stopped is replaced this long after
        self._me = secrets.token_hex(8)
        self.width_ms = width_for(message_ttl)  # as recorded in the database, once open

    async def open(self, connection: Any, now_ms: int) -> None:
        """Read the width (the migrating node's choice), make the partitions ahead."""
        self.width_ms = await connection.fetchval("SELECT width_ms FROM burnbox_partitioning")
        await self.ensure(connection, now_ms - self.width_ms, now_ms + self._ahead_ms, wait=True)

    async def listed(self, connection: Any) -> list[Partition]:
        """The partitions of messages, oldest first."""
        rows = await connection.fetch(_LIST)
        found = [parse(row[0], row[1], row[2]) for row in rows]
        return sorted(found, key=lambda part: part.upper_ms)

    async def ensure(
        self, connection: Any, since_ms: int, until_ms: int, *, wait: bool = False
    ) -> None:
        """Partitions for every moment from `since_ms` to `until_ms` that none covers yet,
        cut at the width's multiples; one node at a time. Another at work: this one leaves
        it to it, or, with `wait` (it needs them now: it is opening, or holds mail that no
        partition takes), waits for it to commit and makes what it left. The lock is the
        first this transaction takes, so the wait cannot close a cycle. A gap before
        `since_ms` stays a gap: a node whose clock jumped ahead makes the partitions of its
        own time, not of every hour in between."""
        width = self.width_ms  # bounds on its multiples: one partition per width, not per round
        since_ms, until_ms = since_ms // width * width, -(-until_ms // width) * width
        async with connection.transaction():
            if wait:
                await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            elif not await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock($1)", PARTITION_LOCK
            ):
                return
            existing = await self.listed(connection)
            for start, end in free_spans(existing, since_ms, until_ms):
                for low, high in self._cut(start, end):
                    await _attach(connection, low, high)

    def _cut(self, start: int, end: int) -> list[tuple[int, int]]:
        """[start, end) cut at the width's multiples, without a sliver at either end."""
        width = self.width_ms
        bounds = [start]
        edge = (start // width + 1) * width
        while edge < end:
            if edge - bounds[-1] >= width // 2 and end - edge >= width // 2:
                bounds.append(edge)
            edge += width
        bounds.append(end)
        return list(itertools.pairwise(bounds))

    async def keeping(self, connection: Any) -> bool:
        """Whether this node keeps the partitions: it holds the lease, renewed, or took it
        from a keeper whose lease ran out (011_partition_lease.sql)."""
        kept = await connection.fetchval(
            "UPDATE burnbox_partitioning SET keeper = $1, "
            "lease_until = clock_timestamp() + make_interval(secs => $2::float8 / 1000) "
            "WHERE keeper = $1 OR lease_until < clock_timestamp() RETURNING true",
            self._me,
            self._lease_ms,
        )
        return bool(kept)

    async def maintain(self, connection: Any, now_ms: int) -> int:
        """Drop what has expired, finish what a stopped node left, make what is ahead, if
        this node keeps the partitions; returns how many partitions were dropped."""
        if not await self.keeping(connection):
            return 0
        for suffix in await leftovers(connection):
            await drop_detached(connection, suffix)
        dropped = 0
        # Only behind what `ensure` keeps: an empty partition dropped there would be made
        # again at once, and a node making it would meet the name of the one detached.
        behind = (now_ms - self.width_ms) // self.width_ms * self.width_ms
        for part in await self.listed(connection):
            try:
                if not await droppable(connection, part, behind, now_ms):
                    continue
            except asyncpg.UndefinedTableError:
                continue  # another node dropped it since it was listed
            await detach(connection, part)
            dropped += await drop_detached(connection, part.suffix)
        await self.ensure(connection, now_ms - self.width_ms, now_ms + self._ahead_ms)
        return dropped

    async def fits(self, connection: Any, excess: int, now_ms: int) -> Partition | None:
        """The oldest partition, if its span is over and all it holds is within `excess`
        bytes: eviction for the byte cap would delete every row of it anyway. Only on the
        node that keeps the partitions: elsewhere its detach could meet the keeper's."""
        if not await self.keeping(connection):
            return None
        existing = await self.listed(connection)
        if len(existing) < 2 or existing[0].upper_ms > now_ms:
            return None
        oldest = existing[0]
        held = await connection.fetchval(
            f"SELECT coalesce(sum(stored), 0) FROM messages_{oldest.suffix}"
        )
        return oldest if held <= excess else None

    async def evict(self, connection: Any, part: Partition) -> list[Any]:
        """Drop a partition whole for the byte cap; its rows (address, id, stored), read
        once it is detached, so that none that came late is dropped untold."""
        await detach(connection, part)
        try:
            rows = list(
                await connection.fetch(f"SELECT address, id, stored FROM messages_{part.suffix}")
            )
        except asyncpg.UndefinedTableError:
            return []  # another node dropped it meanwhile, and told of its rows
        return rows if await drop_detached(connection, part.suffix) else []

    async def cover(self, connection: Any, ids: list[str], now_ms: int) -> bool:
        """Partitions for these ids, if a clock ahead asked for one not made yet (False if it
        is too far ahead, or behind every partition: its mail cannot be stored)."""
        times = sorted({id_ms(message_id) for message_id in ids})
        if times[-1] > now_ms + MAX_AHEAD_MS or times[0] < now_ms - MAX_AHEAD_MS:
            return False
        for moment in times:
            start = moment // self.width_ms * self.width_ms
            await self.ensure(connection, start, start + self.width_ms, wait=True)
        return True


async def _attach(connection: Any, start_ms: int, end_ms: int) -> None:
    low, high = first_id_ms(start_ms), first_id_ms(end_ms)
    suffix = f"p{start_ms}"
    for again in itertools.count(1):
        # A partition of this span detached and not yet dropped still has the name (mail
        # from a node whose clock lags came for a span being let go).
        if await connection.fetchval("SELECT to_regclass($1)", f"messages_{suffix}") is None:
            break
        suffix = f"p{start_ms}_{again}"
    for table in ("messages", "bodies"):
        name = f"{table}_{suffix}"
        await connection.execute(
            f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        await connection.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
        )


# -- behind: expired partitions go whole ---------------------------------------------------


async def droppable(connection: Any, part: Partition, behind_ms: int, now_ms: int) -> bool:
    """Its span ended by `behind_ms`, and every message in it has expired and been told (or
    it is empty): burnbox_told's cursor is past the last expiry (postgres_expiry.py)."""
    if part.upper_ms > behind_ms:
        return False
    latest = await connection.fetchval(f"SELECT max(expires_at) FROM messages_{part.suffix}")
    if latest is None:
        return True
    told = await connection.fetchval("SELECT expires_at FROM burnbox_told")
    return bool(latest <= now_ms and latest <= told)


async def detach(connection: Any, part: Partition) -> None:
    """Take it out of the tables without a lock that would stop mail or reads (not in a
    transaction); a detach cut short before (pending) is finished instead."""
    for table in ("messages", "bodies"):
        name = f"{table}_{part.suffix}"
        mode = "FINALIZE" if part.detaching else "CONCURRENTLY"
        try:
            try:
                await connection.execute(f"ALTER TABLE {table} DETACH PARTITION {name} {mode}")
            except asyncpg.ObjectNotInPrerequisiteStateError:  # pending: a detach cut short
                await connection.execute(f"ALTER TABLE {table} DETACH PARTITION {name} FINALIZE")
        except asyncpg.UndefinedTableError:
            continue  # not a partition (any more): another node detached it


async def drop_detached(connection: Any, suffix: str) -> int:
    """Lower the counts by what a detached partition holds, tell its webhooks, drop it;
    1 if this node dropped it. Once only: a node that finds it gone (another node listed
    it too, and got there first, while this one waited for its lock) does nothing."""
    table = f"messages_{suffix}"
    try:
        await _uncount(connection, suffix)
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            held = await connection.fetchrow(
                f"SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM {table}"
            )
            await connection.execute("SELECT burnbox_tell_dropped($1::regclass)", table)
            await connection.execute(f"DROP TABLE {table}")
            await connection.execute(f"DROP TABLE IF EXISTS bodies_{suffix}")
            await connection.execute(  # the shard no writer uses (012_maintenance_shard.sql)
                "UPDATE usage_shards SET messages = messages - $1, bytes = bytes - $2 "
                "WHERE shard = 16",
                held["n"],
                held["b"],
            )
            await connection.execute("DELETE FROM burnbox_uncounting WHERE suffix = $1", suffix)
    except asyncpg.UndefinedTableError:
        await connection.execute(f"DROP TABLE IF EXISTS bodies_{suffix}")
        return 0
    return 1


async def _uncount(connection: Any, suffix: str) -> None:
    """Every slice, resting between them: a drop is background work, and on a busy node
    it should take a share of the database's time, not all it can get (as autovacuum's
    cost delay does). Resting three times as long as each slice took keeps the lift in
    ingest's p99 under 2x where working flat out gave 2.2x to 2.9x, for a drop four times
    as long: about 1.5 s for 40,000 messages (bench/resident.py)."""
    while True:
        began = time.monotonic()
        if not await _uncount_slice(connection, suffix):
            return
        await asyncio.sleep((time.monotonic() - began) * UNCOUNT_REST)


async def _uncount_slice(connection: Any, suffix: str) -> bool:
    """What the counting triggers would have done to the counts of the next UNCOUNT_SLICE
    inboxes of a detached partition had its rows been deleted, worked out in the database;
    False once every inbox is done. One short transaction per slice (013_uncount_progress.sql):
    a writer waits for a counter row at most one slice's time. The rows are locked in
    address order, as every writer locks them: the slice is read sorted from the
    partition's primary key and drives the update row by row through the counters' index
    (a hash join would take them in the table's order, and could deadlock with a writer)."""
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO burnbox_uncounting (suffix, through) VALUES ($1, '') "
            "ON CONFLICT DO NOTHING",
            suffix,
        )
        through = await connection.fetchval(  # waits for another node's slice, if any
            "SELECT through FROM burnbox_uncounting WHERE suffix = $1 FOR UPDATE", suffix
        )
        await connection.execute("SET LOCAL enable_hashjoin = off")
        last = await connection.fetchval(
            f"WITH slice AS MATERIALIZED (SELECT address, count(*) AS n "
            f"FROM messages_{suffix} WHERE address > $1 GROUP BY address ORDER BY address "
            "LIMIT $2), lowered AS (UPDATE address_counts c SET messages = c.messages - s.n "
            "FROM slice s WHERE c.address = s.address) SELECT max(address) FROM slice",
            through,
            UNCOUNT_SLICE,
        )
        if last is None:
            return False
        await connection.execute(
            "UPDATE burnbox_uncounting SET through = $2 WHERE suffix = $1", suffix, last
        )
        return True


async def leftovers(connection: Any) -> list[str]:
    """Partitions detached but not dropped (a node stopped between the two)."""
    rows = await connection.fetch(
        "SELECT substr(relname, 10) FROM pg_class WHERE relkind = 'r' AND "
        "relname ~ '^messages_(p[0-9]+(_[0-9]+)?|legacy)$' AND NOT relispartition"
    )
    return [row[0] for row in rows]
