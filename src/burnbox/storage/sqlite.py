"""The SQLite store: one durable node. WAL, one writer, group commit.

`synchronous=NORMAL` in WAL mode: a commit is in the WAL (the OS page cache)
before add() returns, so a killed process loses nothing; only a power cut
could drop the last commits. The writer connection is the only one that
writes, so the counters kept here (for metrics and the byte cap) are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

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
    StoreFull,
    check_fits,
)
from burnbox.storage.batching import GroupCommitter
from burnbox.storage.migrating import migrate_sqlite
from burnbox.storage.rows import (
    SUMMARY_COLUMNS,
    PendingAdd,
    from_ms,
    summary_of,
    summary_values,
    to_ms,
)
from burnbox.storage.sqlite_room import SqliteRoom
from burnbox.storage.sqlite_webhooks import SqliteWebhooks, tell_end

_PLACEHOLDERS = ", ".join("?" * (len(SUMMARY_FIELDS) + 1))  # the summary, then `stored`


class SqliteStore(SqliteWebhooks, SqliteRoom):
    def __init__(
        self, path: str, *, max_bytes: int, inbox_max_messages: int, clock: Clock = system_clock
    ) -> None:
        self._path = path
        self._clock = clock  # reads hide what has expired, purged or not
        self._max_bytes = max_bytes
        self._inbox_max = inbox_max_messages
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._adds: GroupCommitter[PendingAdd, Stored] = GroupCommitter(self._commit)
        self._messages = self._bytes = self._inboxes = 0
        # Messages per address, exact because this connection is the only writer: an inbox
        # is trimmed only when over its cap, without counting its rows per delivery.
        self._counts: dict[str, int] = {}
        # The writer connection runs one transaction at a time: a group commit, an inbox
        # made again, a burn, or one statement of its own. Without this, a statement issued
        # while a batch's transaction is open would join it (and go with its rollback).
        self._writing = asyncio.Lock()

    # -- life --------------------------------------------------------------

    async def open(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await aiosqlite.connect(self._path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=5000",
        ):
            await self._writer.execute(f"PRAGMA {pragma}")
        await migrate_sqlite(self._writer)
        self._reader = await aiosqlite.connect(self._path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=5000")
        row = await self._one("SELECT count(*), coalesce(sum(stored), 0) FROM messages")
        self._messages, self._bytes = row[0], row[1]  # the byte cap needs these at once
        self._adds.start()

    async def close(self) -> None:
        await self._adds.stop()
        for connection in (self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._reader = self._writer = None

    async def ping(self) -> bool:
        return bool((await self._one("SELECT 1"))[0] == 1)

    def stats(self) -> StoreStats:
        return StoreStats(self._messages, self._bytes, self._inboxes)

    async def refresh_stats(self, now: datetime) -> None:
        """Messages and bytes are counted as they change (the byte cap needs them); the
        inbox count scans a table, so it is read here (before a scrape), not per inbox."""
        self._inboxes = (
            await self._one(
                "SELECT count(*) FROM inboxes WHERE expires_at > ?", parameters=(to_ms(now),)
            )
        )[0]

    # -- inboxes -----------------------------------------------------------

    async def create_inbox(self, inbox: Inbox) -> Inbox:
        async with self._transaction() as writer:
            previous = await (
                await writer.execute(
                    "SELECT expires_at FROM inboxes WHERE address = ?", (inbox.address,)
                )
            ).fetchone()
            if previous is not None:
                if previous[0] > to_ms(inbox.created_at):
                    raise AddressTaken(inbox.address)
                inbox = replace(inbox, claims_from=from_ms(previous[0]))
                self._forget(
                    list(
                        await (
                            await writer.execute(
                                "DELETE FROM messages WHERE address = ? AND received_at < ? "
                                "RETURNING address, id, stored",
                                (inbox.address, previous[0]),
                            )
                        ).fetchall()
                    )
                )
            await writer.execute(
                "INSERT OR REPLACE INTO inboxes (address, token_hash, created_at, expires_at, "
                "claims_from, password_hash) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    inbox.address,
                    inbox.token_hash,
                    to_ms(inbox.created_at),
                    to_ms(inbox.expires_at),
                    to_ms(inbox.claims_from),
                    inbox.password_hash,
                ),
            )
        return inbox

    async def inbox(self, address: str) -> Inbox:
        row = await self._maybe(
            "SELECT address, token_hash, created_at, expires_at, "
            "claims_from, password_hash FROM inboxes WHERE address = ?",
            (address,),
        )
        if row is None:
            raise NotFound(address)
        return Inbox(
            row[0], row[1], from_ms(row[2]), from_ms(row[3]), from_ms(row[4]), row[5] or None
        )

    async def update_inbox(self, inbox: Inbox) -> None:
        async with self._writing:
            cursor = await self._write().execute(
                "UPDATE inboxes SET expires_at = ? WHERE address = ?",
                (to_ms(inbox.expires_at), inbox.address),
            )
        if cursor.rowcount == 0:
            raise NotFound(inbox.address)

    # -- messages ------------------------------------------------------------

    async def add(self, summaries: list[MessageSummary], raw: bytes) -> Stored:
        check_fits(summaries, raw, self._max_bytes)
        return await self._adds.submit(PendingAdd(summaries, raw))

    async def _commit(self, batch: list[PendingAdd]) -> list[Stored | BaseException]:
        # One writer commits batches in the order their ids were made: ids already follow
        # commit order, so they are kept as proposed.
        async with self._writing:
            return await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[PendingAdd]) -> list[Stored | BaseException]:
        writer = self._write()
        results: list[Stored | BaseException] = []
        await writer.execute("BEGIN IMMEDIATE")
        try:
            rows = [(summary, job.raw) for job in batch for summary in job.summaries]
            for summary, _ in rows:
                await self._count(summary.address)  # counted before this batch's rows land
            await writer.executemany(
                f"INSERT INTO messages ({SUMMARY_COLUMNS}, stored) VALUES ({_PLACEHOLDERS})",
                [(*summary_values(summary), len(raw)) for summary, raw in rows],
            )
            await writer.executemany(
                "INSERT INTO bodies VALUES (?, ?, ?)",
                [(summary.address, summary.id, raw) for summary, raw in rows],
            )
            for summary, raw in rows:
                self._messages += 1
                self._bytes += len(raw)
                self._counts[summary.address] += 1
            evicted = await self._make_room(writer, {summary.address for summary, _ in rows})
            results = [
                job.stored(evicted if number == 0 else []) for number, job in enumerate(batch)
            ]
            await writer.execute("COMMIT")
        except BaseException as error:
            if writer.in_transaction:  # SQLite ends the transaction itself on SQLITE_FULL
                await writer.execute("ROLLBACK")
            await self._recount()
            if (
                isinstance(error, sqlite3.OperationalError)
                and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            ):
                raise StoreFull("the disk or the database quota is full") from error
            raise
        return results

    async def _count(self, address: str) -> int:
        """Messages held for an address (counted once, then kept up to date)."""
        if address not in self._counts:
            self._counts[address] = (
                await self._one(
                    "SELECT count(*) FROM messages WHERE address = ?", self._write(), (address,)
                )
            )[0]
        return self._counts[address]

    def _now(self) -> int:
        return to_ms(self._clock())

    async def summaries(
        self, address: str, *, before: str | None = None, limit: int = 50, since: datetime = EPOCH
    ) -> list[MessageSummary]:
        rows = await self._all(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE address = ? AND (? IS NULL OR id < ?)"
            " AND received_at >= ? AND expires_at > ? ORDER BY id DESC LIMIT ?",
            (address, before, before, to_ms(since), self._now(), limit),
        )
        return [summary_of(row) for row in rows]

    async def usage(self, address: str, *, since: datetime = EPOCH) -> tuple[int, int]:
        row = await self._one(
            "SELECT count(*), coalesce(sum(stored), 0) FROM messages "
            "WHERE address = ? AND received_at >= ? AND expires_at > ?",
            parameters=(address, to_ms(since), self._now()),
        )
        return row[0], row[1]

    async def summary(
        self, address: str, message_id: str, *, since: datetime = EPOCH
    ) -> MessageSummary:
        row = await self._maybe(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE address = ? "
            "AND id = ? AND received_at >= ? AND expires_at > ?",
            (address, message_id, to_ms(since), self._now()),
        )
        if row is None:
            raise NotFound(message_id)
        return summary_of(row)

    async def raw(self, address: str, message_id: str, *, since: datetime = EPOCH) -> bytes:
        row = await self._maybe(
            "SELECT b.raw FROM bodies b JOIN messages m ON m.address = b.address AND "
            "m.id = b.id WHERE b.address = ? AND b.id = ? AND m.received_at >= ? "
            "AND m.expires_at > ?",
            (address, message_id, to_ms(since), self._now()),
        )
        if row is None:
            raise NotFound(message_id)
        return bytes(row[0])

    async def mark_seen(
        self, address: str, message_id: str, seen: bool, *, since: datetime = EPOCH
    ) -> MessageSummary:
        async with self._writing:
            cursor = await self._write().execute(
                "UPDATE messages SET seen = ? WHERE address = ? AND id = ? AND received_at >= ? "
                "AND expires_at > ?",
                (seen, address, message_id, to_ms(since), self._now()),
            )
        if cursor.rowcount == 0:
            raise NotFound(message_id)
        return await self.summary(address, message_id)

    async def set_auth(self, messages: list[tuple[str, str]], auth: str) -> list[MessageSummary]:
        updated = []
        async with self._transaction() as writer:
            for address, message_id in messages:
                cursor = await writer.execute(
                    f"UPDATE messages SET auth = ? WHERE address = ? AND id = ? "
                    f"RETURNING {SUMMARY_COLUMNS}",
                    (auth, address, message_id),
                )
                updated += [summary_of(row) for row in await cursor.fetchall()]
        return updated

    async def delete(self, address: str, message_id: str, *, since: datetime = EPOCH) -> None:
        rows = await self._returning(
            "DELETE FROM messages WHERE address = ? AND id = ? AND received_at >= ? "
            "AND expires_at > ? RETURNING address, id, stored",
            (address, message_id, to_ms(since), self._now()),
        )
        if not rows:
            raise NotFound(message_id)
        self._forget(rows)

    async def burn_inbox(self, address: str, at: datetime) -> list[str]:
        async with self._transaction() as writer:
            # Ended and told first: its hooks go, and the messages' deletes are told to none.
            ended = await (
                await writer.execute(
                    "UPDATE inboxes SET expires_at = ?, end_told = 1 WHERE address = ? AND "
                    "expires_at > ? AND end_told = 0 RETURNING created_at",
                    (to_ms(at), address, to_ms(at)),
                )
            ).fetchone()
            if ended is not None:
                await tell_end(writer, address, ended[0], to_ms(at), "inbox.burned", to_ms(at))
            rows = list(
                await (
                    await writer.execute(
                        "DELETE FROM messages WHERE address = ? RETURNING address, id, stored",
                        (address,),
                    )
                ).fetchall()
            )
        self._forget(rows)
        self._counts.pop(address, None)
        return [row[1] for row in rows]

    async def key(self, name: str, new: bytes) -> bytes:
        async with self._transaction() as writer:
            await writer.execute(
                "INSERT OR IGNORE INTO keys (name, value) VALUES (?, ?)", (name, new)
            )
            row = await (
                await writer.execute("SELECT value FROM keys WHERE name = ?", (name,))
            ).fetchone()
        assert row is not None
        return bytes(row[0])

    # -- plumbing ------------------------------------------------------------

    def _write(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def _recount(self) -> None:
        row = await self._one(
            "SELECT count(*), coalesce(sum(stored), 0) FROM messages", self._write()
        )
        self._messages, self._bytes = row[0], row[1]
        self._counts.clear()  # a rolled-back batch: count again when next needed

    async def _returning(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        """Run a writing statement on the writer (a transaction of its own); its RETURNING
        rows."""
        async with self._writing:
            return list(await (await self._write().execute(sql, parameters)).fetchall())

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._writing:
            writer = self._write()
            await writer.execute("BEGIN IMMEDIATE")
            try:
                yield writer
            except BaseException:
                if writer.in_transaction:
                    await writer.execute("ROLLBACK")
                await self._recount()
                raise
            await writer.execute("COMMIT")

    async def _all(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return list(await (await self._reader.execute(sql, parameters)).fetchall())

    async def _maybe(self, sql: str, parameters: tuple[object, ...] = ()) -> Any:
        rows = await self._all(sql, parameters)
        return rows[0] if rows else None

    async def _one(
        self,
        sql: str,
        connection: aiosqlite.Connection | None = None,
        parameters: tuple[object, ...] = (),
    ) -> Any:
        target = connection or self._reader or self._write()
        row = await (await target.execute(sql, parameters)).fetchone()
        assert row is not None
        return row
