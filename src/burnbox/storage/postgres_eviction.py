"""The PostgreSQL store's eviction at the byte cap: the oldest mail goes, after the batch
that went over has committed, by whole partition when the excess would empty the oldest
anyway, else row by row. A mixin of PostgresStore, apart because it is a job of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from burnbox.model import StoreStats
from burnbox.storage.counter_locks import lock_counters

if TYPE_CHECKING:
    import asyncpg

    from burnbox.storage.ring import Ring

EVICT_LOCK = 0x6275726E626F78 + 2  # held by the one writer evicting for the byte cap now
# Eviction for the byte cap (see _evict): down to this many percent under the cap, so that
# one eviction makes room for many batches, and at most this many messages a statement.
EVICT_BELOW = 5
EVICT_ROWS = 5000
# The oldest messages whose bytes, summed oldest first, reach $1 (at most $2 of them).
_OLDEST = (
    "SELECT address, id FROM (SELECT address, id, stored, sum(stored) OVER (ORDER BY id) "
    "AS running FROM (SELECT address, id, stored FROM messages ORDER BY id LIMIT $2) o) r "
    "WHERE running - stored < $1"
)


class PostgresEviction:
    if TYPE_CHECKING:  # what PostgresStore provides
        _max_bytes: int
        _ring: Ring
        _stats: StoreStats

        def _ready(self) -> asyncpg.Pool: ...

        def _now(self) -> int: ...

    async def _evict(self, writer: Any) -> list[tuple[str, str]]:
        """Oldest first, down to a little under the byte cap (EVICT_BELOW of it), in
        transactions of their own after the batch that went over has committed. Each first
        locks the counter rows of the inboxes it takes mail from, in address order, as every
        writer does: eviction inside the batch locked them late and in no order, and
        deadlocked. The store is over its cap by at most what the batches committing at
        that moment hold (one per worker), until this round ends. An oldest partition that
        the excess would empty anyway goes whole, without a row deleted."""
        target = self._max_bytes - max(self._max_bytes * EVICT_BELOW // 100, 1)
        evicted: list[tuple[str, str]] = []
        whole_ok = True
        while True:
            rows, whole = await self._evict_rows(writer, target, whole_ok)
            if whole is not None:
                async with self._ready().acquire() as connection:
                    rows = await self._ring.evict(connection, *whole)
                whole_ok = bool(rows)  # left as it was (its lock was busy): by the row
            elif rows is None:
                return evicted
            evicted += [(row[0], row[1]) for row in rows]
            self._stats = StoreStats(
                self._stats.messages - len(rows),
                self._stats.bytes - sum(row[2] for row in rows),
                self._stats.inboxes,
            )

    async def _evict_rows(
        self, writer: Any, target: int, whole_ok: bool
    ) -> tuple[list[Any] | None, tuple[str, int] | None]:
        """One round: the rows evicted (None: nothing to do, or another evictor at work),
        or the oldest partition to empty whole instead, and the bytes it may hold."""
        async with writer.transaction():
            # One evictor at a time, across workers and nodes: a second would choose the
            # same oldest rows and queue behind the first's locks. A writer that finds one
            # at work goes on; that one evicts until the store is under the target.
            if not await writer.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVICT_LOCK):
                return None, None
            count, held = await writer.fetchrow(
                "SELECT sum(messages)::bigint, sum(bytes)::bigint FROM usage_shards"
            )
            self._stats = StoreStats(count, held, self._stats.inboxes)
            if held <= target:
                return None, None
            whole = await self._ring.fits(writer, held - target, self._now()) if whole_ok else None
            if whole is not None:
                return None, (whole, held - target)
            # As many of the oldest as the excess needs at the average size, and a few
            # more: the window over them is the statement's cost.
            wanted = min(EVICT_ROWS, int((held - target) * count / held * 1.25) + 8)
            found = await writer.fetch(_OLDEST, held - target, wanted)
            if not found:
                return None, None
            await lock_counters(writer, sorted({row[0] for row in found}))
            return list(
                await writer.fetch(
                    "DELETE FROM messages WHERE (address, id) IN (SELECT * FROM unnest("
                    "$1::text[], $2::text[])) RETURNING address, id, stored",
                    [row[0] for row in found],
                    [row[1] for row in found],
                )
            ), None
