"""The PostgreSQL store: production, shared by every node.

Deliveries from concurrent sessions share commits (GroupCommitter): one
transaction inserts a whole batch with executemany, trims each inbox to its
cap, evicts the oldest mail while the shared byte count (a trigger-kept row)
is over the cap, and commits once; add() returns only after that COMMIT.
Migrations are numbered SQL files applied at open in one transaction under an
advisory lock, so nodes starting together apply each one once.

Mail is kept in a ring of partitions by arrival and expires by emptying one whole
(ring.py); reads hide what has expired meanwhile, and a read by id names the partition.
Through a transaction pooler (PgBouncer, `pooler="transaction"`) no statement is prepared
by name and no state outlives a transaction: every lock is a transaction's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from burnbox.ids import Clock, system_clock
from burnbox.model import (
    EPOCH,
    SUMMARY_FIELDS,
    Inbox,
    MessageSummary,
    StoreStats,
)
from burnbox.storage.base import (
    AddressTaken,
    NotFound,
    Stored,
    StoreError,
    StoreFull,
    check_fits,
)
from burnbox.storage.batching import GroupCommitter
from burnbox.storage.counter_locks import lock_counters
from burnbox.storage.migrating import migrate_postgres
from burnbox.storage.postgres_eviction import PostgresEviction
from burnbox.storage.postgres_expiry import PostgresExpiry
from burnbox.storage.postgres_webhooks import PostgresWebhooks, tell_ends
from burnbox.storage.ring import Ring, ring_position, slot_width_ms
from burnbox.storage.rows import (
    ID,
    SUMMARY_COLUMNS,
    PendingAdd,
    from_ms,
    summary_of,
    summary_values,
    to_ms,
)

COMMAND_TIMEOUT = 30.0  # seconds any one statement may take before the sender hears 451
POOL_SIZE = 10
# burnbox_add's arguments: an array per summary field, the stored sizes, the raw messages,
# and the inbox cap (004_eviction_apart.sql).
# A read by id names its partition (014_ring.sql), so that it is planned for that one.
_ONE_SLOT = "burnbox_slot(id) = burnbox_slot($2)"
_ADD_BATCH = (
    "SELECT burnbox_add(" + ", ".join(f"${n}" for n in range(1, len(SUMMARY_FIELDS) + 4)) + ")"
)


class PostgresStore(PostgresWebhooks, PostgresExpiry, PostgresEviction):
    def __init__(
        self,
        url: str,
        *,
        max_bytes: int,
        inbox_max_messages: int,
        message_ttl: float = 86400.0,
        maintain_every: float = 60.0,
        clock: Clock = system_clock,
        pooler: str = "none",
    ) -> None:
        """`message_ttl` and `maintain_every` (how often purge_expired runs) set the spans of
        the ring's partitions, if this node is the one to make them (ring.py); `pooler`
        "transaction" when connecting through PgBouncer in transaction pooling."""
        self._url = url
        self._max_bytes = max_bytes
        self._inbox_max = inbox_max_messages
        self._clock = clock
        self._pooled = pooler == "transaction"
        self._position = ring_position(message_ttl, maintain_every)
        self._ring = Ring(self._position, lease_ms=max(10_000, int(3 * maintain_every * 1000)))
        self._pool: asyncpg.Pool | None = None
        self._adds: GroupCommitter[PendingAdd, Stored] = GroupCommitter(self._commit)
        self._stats = StoreStats(0, 0, 0)
        self._writer: Any = None  # the connection group commits use (see _writing)

    # -- life --------------------------------------------------------------

    async def open(self) -> None:
        # Through a transaction pooler a statement prepared by name may land on another
        # server connection: asyncpg then prepares each one unnamed, in its own exchange.
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=2,
            max_size=POOL_SIZE,
            command_timeout=COMMAND_TIMEOUT,
            statement_cache_size=0 if self._pooled else 100,
        )
        async with self._pool.acquire() as connection:
            spans = {"width_ms": slot_width_ms(self._position), "slot_position": self._position}
            await migrate_postgres(connection, spans)  # 010 recorded a width, 014 the spans
            await self._ring.open(connection)
        row = await self._row("SELECT messages, bytes FROM usage")
        self._stats = StoreStats(row[0], row[1], 0)  # inboxes are counted at a scrape
        self._adds.start()

    async def close(self) -> None:
        await self._adds.stop()
        if self._pool is not None and self._writer is not None:
            await self._pool.release(self._writer)
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> bool:
        return bool(await self._value("SELECT 1") == 1)

    def stats(self) -> StoreStats:
        return self._stats

    async def refresh_stats(self, now: datetime) -> None:
        """Other nodes and workers write too: read the totals afresh (before a scrape). Not
        after every write: the inbox count scans a table, and each inbox created or message
        deleted would pay for it."""
        row = await self._row("SELECT messages, bytes FROM usage")
        count = await self._value("SELECT count(*) FROM inboxes WHERE expires_at > $1", to_ms(now))
        self._stats = StoreStats(row[0], row[1], count)

    # -- inboxes -----------------------------------------------------------

    async def create_inbox(self, inbox: Inbox) -> Inbox:
        async with self._ready().acquire() as connection, connection.transaction():
            previous = await connection.fetchval(
                "SELECT expires_at FROM inboxes WHERE address = $1 FOR UPDATE", inbox.address
            )
            if previous is not None:
                if previous > to_ms(inbox.created_at):
                    raise AddressTaken(inbox.address)
                inbox = replace(inbox, claims_from=from_ms(previous))
                await lock_counters(connection, [inbox.address])
                await connection.execute(
                    "DELETE FROM messages WHERE address = $1 AND received_at < $2",
                    inbox.address,
                    previous,
                )
            # Two makers of a fresh address race here: the later one updates nothing.
            made = await connection.fetchval(
                "INSERT INTO inboxes (address, token_hash, created_at, expires_at, claims_from, "
                "password_hash) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (address) DO UPDATE "
                "SET token_hash = excluded.token_hash, created_at = excluded.created_at, "
                "expires_at = excluded.expires_at, claims_from = excluded.claims_from, "
                "password_hash = excluded.password_hash "
                "WHERE inboxes.expires_at <= excluded.created_at RETURNING 1",
                inbox.address,
                inbox.token_hash,
                to_ms(inbox.created_at),
                to_ms(inbox.expires_at),
                to_ms(inbox.claims_from),
                inbox.password_hash,
            )
            if made is None:
                raise AddressTaken(inbox.address)
        return inbox

    async def inbox(self, address: str) -> Inbox:
        row = await self._maybe(
            "SELECT address, token_hash, created_at, expires_at, "
            "claims_from, password_hash FROM inboxes WHERE address = $1",
            address,
        )
        if row is None:
            raise NotFound(address)
        return Inbox(
            row[0], row[1], from_ms(row[2]), from_ms(row[3]), from_ms(row[4]), row[5] or None
        )

    async def update_inbox(self, inbox: Inbox) -> None:
        result = await self._execute(
            "UPDATE inboxes SET expires_at = $1 WHERE address = $2",
            to_ms(inbox.expires_at),
            inbox.address,
        )
        if result == "UPDATE 0":
            raise NotFound(inbox.address)

    # -- messages ------------------------------------------------------------

    async def add(self, summaries: list[MessageSummary], raw: bytes) -> Stored:
        check_fits(summaries, raw, self._max_bytes)
        return await self._adds.submit(PendingAdd(summaries, raw))

    async def _commit(self, batch: list[PendingAdd]) -> list[Stored | BaseException]:
        try:
            return await self._commit_batch(batch)
        except (asyncpg.DiskFullError, asyncpg.InsufficientResourcesError) as error:
            raise StoreFull("the database has no room") from error

    async def _commit_batch(self, batch: list[PendingAdd]) -> list[Stored | BaseException]:
        rows = [
            (*summary_values(summary), len(job.raw)) for job in batch for summary in job.summaries
        ]
        columns = [list(column) for column in zip(*rows, strict=True)]
        raws = [job.raw for job in batch for _ in job.summaries]
        # One statement, so one round trip and one commit (autocommit) for the whole batch.
        writer = await self._writing()
        try:
            answer = json.loads(await writer.fetchval(_ADD_BATCH, *columns, raws, self._inbox_max))
        except BaseException:
            self._writer = None  # whatever broke, the next batch starts on a sound connection
            await self._ready().release(writer)
            raise
        self._stats = StoreStats(answer["messages"], answer["bytes"], self._stats.inboxes)
        evicted = [(address, message_id) for address, message_id in answer["evicted"]]
        if answer["bytes"] > self._max_bytes:
            evicted += await self._evict(writer)
        # The function answers with the ids only when it had to move one past another
        # writer's newer commit (see 002_commit_order_ids.sql).
        ids: list[str] = answer.get("ids") or columns[ID]
        results: list[Stored | BaseException] = []
        for job in batch:
            mine, ids = ids[: len(job.summaries)], ids[len(job.summaries) :]
            # Evictions are reported once (with the first write): each becomes a "deleted" event.
            results.append(job.stored([] if results else evicted, mine))
        return results

    async def summaries(
        self, address: str, *, before: str | None = None, limit: int = 50, since: datetime = EPOCH
    ) -> list[MessageSummary]:
        rows = await self._fetch(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE address = $1 "
            "AND ($2::text IS NULL OR id < $2) AND received_at >= $4 AND expires_at > $5 "
            "ORDER BY id DESC LIMIT $3",
            address,
            before,
            limit,
            to_ms(since),
            self._now(),
        )
        return [summary_of(row) for row in rows]

    async def usage(self, address: str, *, since: datetime = EPOCH) -> tuple[int, int]:
        row = await self._row(
            "SELECT count(*), coalesce(sum(stored), 0) FROM messages "
            "WHERE address = $1 AND received_at >= $2 AND expires_at > $3",
            address,
            to_ms(since),
            self._now(),
        )
        return int(row[0]), int(row[1])

    async def summary(
        self, address: str, message_id: str, *, since: datetime = EPOCH
    ) -> MessageSummary:
        row = await self._maybe(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE address = $1 AND id = $2 "
            f"AND {_ONE_SLOT} AND received_at >= $3 AND expires_at > $4",
            address,
            message_id,
            to_ms(since),
            self._now(),
        )
        if row is None:
            raise NotFound(message_id)
        return summary_of(row)

    async def raw(self, address: str, message_id: str, *, since: datetime = EPOCH) -> bytes:
        value = await self._value(
            "SELECT b.raw FROM bodies b JOIN messages m USING (address, id) "
            "WHERE b.address = $1 AND b.id = $2 AND burnbox_slot(b.id) = burnbox_slot($2) "
            "AND burnbox_slot(m.id) = burnbox_slot($2) AND m.received_at >= $3 "
            "AND m.expires_at > $4",
            address,
            message_id,
            to_ms(since),
            self._now(),
        )
        if value is None:
            raise NotFound(message_id)
        return bytes(value)

    async def mark_seen(
        self, address: str, message_id: str, seen: bool, *, since: datetime = EPOCH
    ) -> MessageSummary:
        row = await self._maybe(
            f"UPDATE messages SET seen = $3 WHERE address = $1 AND id = $2 AND {_ONE_SLOT} "
            f"AND received_at >= $4 AND expires_at > $5 RETURNING {SUMMARY_COLUMNS}",
            address,
            message_id,
            seen,
            to_ms(since),
            self._now(),
        )
        if row is None:
            raise NotFound(message_id)
        return summary_of(row)

    async def set_auth(self, messages: list[tuple[str, str]], auth: str) -> list[MessageSummary]:
        rows = await self._fetch(
            f"UPDATE messages m SET auth = $3 FROM unnest($1::text[], $2::text[]) AS t(a, i) "
            f"WHERE m.address = t.a AND m.id = t.i RETURNING {_qualified('m')}",
            [address for address, _ in messages],
            [message_id for _, message_id in messages],
            auth,
        )
        return [summary_of(row) for row in rows]

    async def delete(self, address: str, message_id: str, *, since: datetime = EPOCH) -> None:
        async with self._ready().acquire() as connection, connection.transaction():
            await lock_counters(connection, [address])
            result = await connection.execute(
                f"DELETE FROM messages WHERE address = $1 AND id = $2 AND {_ONE_SLOT} "
                "AND received_at >= $3 AND expires_at > $4",
                address,
                message_id,
                to_ms(since),
                self._now(),
            )
        if result == "DELETE 0":
            raise NotFound(message_id)

    async def burn_inbox(self, address: str, at: datetime) -> list[str]:
        async with self._ready().acquire() as connection, connection.transaction():
            # Ended and told first (the inbox row before the counters, as create_inbox
            # locks them): its hooks go, and the messages' deletes are told to none.
            ended = await connection.fetch(
                "UPDATE inboxes SET expires_at = $2, end_told = true WHERE address = $1 AND "
                "expires_at > $2 AND NOT end_told RETURNING address, created_at, expires_at",
                address,
                to_ms(at),
            )
            await tell_ends(connection, ended, "inbox.burned", to_ms(at))
            await lock_counters(connection, [address])
            rows = await connection.fetch(
                "DELETE FROM messages WHERE address = $1 RETURNING id", address
            )
        return [row[0] for row in rows]

    async def key(self, name: str, new: bytes) -> bytes:
        # Two nodes asking first race here: the later insert does nothing, and reads the
        # earlier one's key (visible once the conflict is seen).
        value = await self._value(
            "WITH made AS (INSERT INTO keys (name, value) VALUES ($1, $2) ON CONFLICT (name) "
            "DO NOTHING RETURNING value) SELECT value FROM made UNION ALL "
            "SELECT value FROM keys WHERE name = $1 LIMIT 1",
            name,
            new,
        )
        return bytes(value)

    # -- plumbing ------------------------------------------------------------

    async def _writing(self) -> Any:
        """The connection batches commit on, kept rather than taken from the pool each time:
        the pool resets a connection when it comes back (four statements, one more round
        trip), which cost PostgreSQL as much CPU as a small batch itself. A connection that
        failed goes back to the pool, which resets or replaces it."""
        if self._writer is None:
            self._writer = await self._ready().acquire()
        return self._writer

    def _now(self) -> int:
        return to_ms(self._clock())

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def _fetch(self, sql: str, *arguments: object) -> list[Any]:
        return list(await self._ready().fetch(sql, *arguments))

    async def _maybe(self, sql: str, *arguments: object) -> Any:
        return await self._ready().fetchrow(sql, *arguments)

    async def _row(self, sql: str, *arguments: object) -> Any:
        row = await self._ready().fetchrow(sql, *arguments)
        if row is None:
            raise StoreError("expected a row")
        return row

    async def _value(self, sql: str, *arguments: object) -> Any:
        return await self._ready().fetchval(sql, *arguments)

    async def _execute(self, sql: str, *arguments: object) -> str:
        return str(await self._ready().execute(sql, *arguments))


def _qualified(table: str) -> str:
    """The summary columns with a table's name before each (where a join names others)."""
    return ", ".join(f"{table}.{column.strip()}" for column in SUMMARY_COLUMNS.split(","))
