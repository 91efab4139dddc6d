"""What goes from the SQLite store, and when: the oldest mail past an inbox's cap or the
store's byte cap (within the batch that went over, on the one writer, so the counts stay
exact), and expired mail and long-ended inbox records at each purge. A mixin of
SqliteStore, apart because it is a job of its own.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from burnbox.storage.base import EXPIRED_INBOX_MEMORY, PURGE_BATCH, StoreError
from burnbox.storage.rows import to_ms

if TYPE_CHECKING:
    import aiosqlite


class SqliteRoom:
    if TYPE_CHECKING:  # what SqliteStore provides
        _counts: dict[str, int]
        _inbox_max: int
        _max_bytes: int
        _messages: int
        _bytes: int

        async def _returning(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]: ...

    async def _make_room(
        self, writer: aiosqlite.Connection, addresses: set[str]
    ) -> list[tuple[str, str]]:
        """Oldest first: each inbox down to its cap, then the store down to its byte cap."""
        gone: list[tuple[str, str]] = []
        for address in addresses:
            if self._counts.get(address, 0) > self._inbox_max:
                gone += await self._evict(
                    writer, "WHERE address = ?", (address,), self._counts[address] - self._inbox_max
                )
        while self._bytes > self._max_bytes and self._messages:
            gone += await self._evict(writer, "", (), 1)
        return gone

    async def _evict(
        self, writer: aiosqlite.Connection, where: str, parameters: tuple[str, ...], count: int
    ) -> list[tuple[str, str]]:
        rows = list(
            await (
                await writer.execute(
                    "DELETE FROM messages WHERE (address, id) IN (SELECT address, id FROM messages "
                    f"{where} ORDER BY id LIMIT ?) RETURNING address, id, stored",
                    (*parameters, count),
                )
            ).fetchall()
        )
        self._forget(rows)
        return [(row[0], row[1]) for row in rows]

    def _forget(self, rows: list[Any]) -> None:
        """Account for deleted (address, id, stored) rows."""
        for address, _id, size in rows:
            self._messages -= 1
            self._bytes -= size
            if address in self._counts:
                self._counts[address] -= 1

    async def purge_expired(self, now: datetime) -> list[tuple[str, str]]:
        try:
            return await self._purge(now)
        except sqlite3.Error as error:  # the database's fault: the reaper tries again later
            raise StoreError(type(error).__name__) from error

    async def _purge(self, now: datetime) -> list[tuple[str, str]]:
        moment = to_ms(now)
        purged: list[tuple[str, str]] = []
        for select in (
            "SELECT address, id FROM messages WHERE expires_at <= ? LIMIT ?",
            # every message an ended inbox held, received before its end
            "SELECT m.address, m.id FROM messages m JOIN inboxes i ON i.address = "
            "m.address WHERE i.expires_at <= ? AND m.received_at < i.expires_at "
            "LIMIT ?",
        ):
            while True:  # small batches: the writer is shared with ingest
                rows = await self._returning(
                    f"DELETE FROM messages WHERE (address, id) IN ({select}) "
                    "RETURNING address, id, stored",
                    (moment, PURGE_BATCH),
                )
                self._forget(rows)
                purged += [(row[0], row[1]) for row in rows]
                if len(rows) < PURGE_BATCH:
                    break
        forgotten = await self._returning(
            "DELETE FROM inboxes WHERE expires_at <= ? RETURNING address",
            (to_ms(now - EXPIRED_INBOX_MEMORY),),
        )
        purged += [(row[0], "") for row in forgotten]
        return purged
