"""The PostgreSQL store's purge: what has expired is told, then goes by the partition.

Each round (the reaper's, on every node):
- **told**: the messages whose TTL passed since the last round, as (address, id) for the
  hub's "expired" events, read by the index on expires_at from a cursor kept in the
  database (burnbox_told), by one node at a time: each is told once, whichever node
  purges. Nothing is deleted: reads hide them already.
- **ring**: partitions whose mail has all expired emptied whole (ring.py).
- **records**: inbox records an hour past their end, and inbox counter rows long empty,
  deleted: one small row per inbox, not per message.

A mixin of PostgresStore, apart because it is a job of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from burnbox.ids import first_id_at
from burnbox.storage.base import EXPIRED_INBOX_MEMORY, StoreError
from burnbox.storage.rows import to_ms

if TYPE_CHECKING:
    import asyncpg

    from burnbox.storage.ring import Ring

PURGE_LOCK = 0x6275726E626F78 + 1  # held (per transaction) by the node telling expiries
TELL_BATCH = 5000  # expiries told per statement
TELL_ROUNDS = 20  # statements per purge; what is left is told at the next
# An inbox's counter row keeps the newest id committed there (002_commit_order_ids.sql) this
# long after its last message went: by then no commit proposed before it can be in flight
# (statements time out after 30 s), with room for clocks that disagree by minutes.
ORDER_MEMORY = timedelta(hours=1)


class PostgresExpiry:
    if TYPE_CHECKING:  # what PostgresStore provides
        _ring: Ring

        def _ready(self) -> asyncpg.Pool: ...

    async def purge_expired(self, now: datetime) -> list[tuple[str, str]]:
        import asyncpg

        try:
            async with self._ready().acquire() as connection:
                told = await _tell(connection, to_ms(now))
                await self._ring.maintain(connection, to_ms(now))
                forgotten = await _forget(connection, now)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StoreError(type(error).__name__) from error  # the reaper tries again later
        return told + forgotten


async def _tell(connection: Any, now_ms: int) -> list[tuple[str, str]]:
    """The messages expired since the cursor, oldest first; [] when another node is at it."""
    told: list[tuple[str, str]] = []
    for _ in range(TELL_ROUNDS):
        async with connection.transaction():
            if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK):
                return told
            after = await connection.fetchrow("SELECT expires_at, id FROM burnbox_told FOR UPDATE")
            rows = await connection.fetch(
                "SELECT address, id, expires_at FROM messages WHERE expires_at <= $1 "
                "AND (expires_at, id) > ($2, $3) ORDER BY expires_at, id LIMIT $4",
                now_ms,
                after[0],
                after[1],
                TELL_BATCH,
            )
            # The cursor: the last one told, or, once none is left, now (what expires at or
            # before it is all told: a partition of such mail may be emptied, ring.py).
            last = (rows[-1][2], rows[-1][1]) if len(rows) == TELL_BATCH else (now_ms, "")
            if last > (after[0], after[1]):
                await connection.execute("UPDATE burnbox_told SET expires_at = $1, id = $2", *last)
        told += [(row[0], row[1]) for row in rows]
        if len(rows) < TELL_BATCH:
            break
    return told


async def _forget(connection: Any, now: datetime) -> list[tuple[str, str]]:
    """Inbox records an hour past their end, as (address, ""); and empty counter rows."""
    async with connection.transaction():
        if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK):
            return []
        forgotten = await connection.fetch(
            "DELETE FROM inboxes WHERE expires_at <= $1 RETURNING address",
            to_ms(now - EXPIRED_INBOX_MEMORY),
        )
        await connection.execute(
            "DELETE FROM address_counts WHERE messages <= 0 AND last_id < $1",
            first_id_at(now - ORDER_MEMORY),
        )
    return [(row[0], "") for row in forgotten]
