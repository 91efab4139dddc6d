"""Mail kept in a ring of 32 partitions by arrival, and expired by emptying one whole
(PostgreSQL; schema/postgres/014_ring.sql).

A message goes to the partition named by one character of its id: the id's first 48 bits
are its arrival in milliseconds, so the character at `position` counts spans of
2^(48 - 5 * position) ms, and the same partition comes round every 32 spans. The
partitions are made once and never dropped: once every message of a past span has expired
and been told, its partition is emptied by TRUNCATE, which deletes no row (making and
dropping a partition deleted about 130 rows of the system catalogs, 26% of the messages
sent at a 10 s TTL: bench/retention.py). Reads hide expired mail meanwhile. How a
partition is emptied, and the counters lowered after it: emptying.py.

One node keeps the ring at a time, by a lease in the database (two emptying the same
partition would wait on each other's locks for nothing), and within it one task empties
or drains at a time: the notes a drain truncates must not be an emptying's on its way.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from burnbox.storage import retired_ranges
from burnbox.storage.emptying import clear_overdue, drain, empty, snapshot

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # ids.py's: one partition per character
SLOTS = len(ALPHABET)
# The latest expiry each partition holds, in one round trip (each by its expiry index).
_LATEST = " UNION ALL ".join(
    f"(SELECT '{slot}', max(expires_at) FROM messages_s{slot})" for slot in ALPHABET
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
        self._busy = asyncio.Lock()  # one emptying or drain at a time
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
        async with self._busy:
            await retired_ranges.retire(connection, now_ms)
            await drain(connection)  # what a node that stopped left
            latest = await latest_expiries(connection)
            told = await connection.fetchval("SELECT expires_at FROM burnbox_told")
            emptied = set()
            for slot in self.behind(now_ms):
                expiry = latest[slot]
                if expiry is None or expiry > min(now_ms, told):
                    continue
                seen = await snapshot(connection, slot)
                if await empty(connection, slot, now_ms, seen=seen) is not None:
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
        """Empty a partition whole for the byte cap, at once, and lower its counters (the
        batch that went over waits for it, as for eviction by the row); its rows (address,
        id, stored), read under its lock, so that none that came late goes untold. [] if it
        was left (maintenance busy with the ring, or readers holding the partition): then
        the oldest go by the row."""
        if self._busy.locked():
            return []
        async with self._busy:
            rows = await empty(connection, slot, room=excess)
            if rows:
                await drain(connection)
            return rows or []


async def latest_expiries(connection: Any) -> dict[str, int | None]:
    """Each partition's latest expiry; None for an empty one."""
    return {row[0]: row[1] for row in await connection.fetch(_LATEST)}
