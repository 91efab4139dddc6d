"""The SQLite store's webhooks: registrations and the outbox (schema/sqlite/004_webhooks.sql,
whose triggers write message events in the message's own transaction). A mixin of
SqliteStore, apart because it is a second job: the store keeps mail, this keeps who is told."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from burnbox.model import Delivery, Webhook
from burnbox.storage.base import NotFound
from burnbox.storage.rows import to_ms
from burnbox.storage.webhook_rows import (
    DELIVERY_COLUMNS,
    HOOK_COLUMNS,
    delivery_of,
    ended_payload,
    hook_of,
)

if TYPE_CHECKING:
    import aiosqlite


ENDS_AT_ONCE = 500  # inbox ends told in one transaction (the writer is shared with ingest)


async def tell_end(
    writer: aiosqlite.Connection, address: str, created: int, ended: int, kind: str, now: int
) -> None:
    """An inbox's end (`ended`, milliseconds; -1 for one that was never told) to its own
    hooks and the node-wide ones made by then; its hooks then go."""
    await writer.execute(
        "INSERT INTO webhook_outbox (webhook_id, url, secret, include_body, kind, address, "
        "message_id, payload, created_at, next_at) SELECT id, url, secret, include_body, ?, ?, "
        "'', ?, ?, ? FROM webhooks WHERE ((address = ? AND inbox_created = ?) OR "
        "(address = '*' AND created_at <= ?)) AND (' ' || events || ' ') LIKE ? ORDER BY id",
        (kind, address, ended_payload(address), now, now, address, created, ended, f"% {kind} %"),
    )
    await writer.execute(
        "DELETE FROM webhooks WHERE address = ? AND inbox_created = ?", (address, created)
    )


async def _rows(
    writer: aiosqlite.Connection, sql: str, parameters: tuple[object, ...] = ()
) -> list[Any]:
    return list(await (await writer.execute(sql, parameters)).fetchall())


class SqliteWebhooks:
    if TYPE_CHECKING:  # what SqliteStore provides
        _writing: asyncio.Lock

        def _write(self) -> aiosqlite.Connection: ...
        async def _all(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]: ...
        async def _returning(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]: ...
        def _transaction(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def add_webhook(self, hook: Webhook) -> None:
        async with self._writing:
            await self._write().execute(
                f"INSERT OR REPLACE INTO webhooks ({HOOK_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hook.id,
                    hook.address,
                    to_ms(hook.inbox_created),
                    hook.url,
                    hook.secret,
                    " ".join(hook.events),
                    int(hook.include_body),
                    to_ms(hook.created_at),
                    hook.last_status,
                    to_ms(hook.last_attempt) if hook.last_attempt else 0,
                    hook.delivered,
                    hook.failed,
                ),
            )

    async def webhooks(self, address: str) -> list[Webhook]:
        rows = await self._all(
            f"SELECT {HOOK_COLUMNS}, (SELECT count(*) FROM webhook_outbox o "
            "WHERE o.webhook_id = w.id) FROM webhooks w WHERE address = ? ORDER BY created_at",
            (address,),
        )
        return [hook_of(row, row[5].split(), row[12]) for row in rows]

    async def delete_webhook(self, address: str, webhook_id: str) -> None:
        async with self._transaction() as writer:
            cursor = await writer.execute(
                "DELETE FROM webhooks WHERE id = ? AND address = ?", (webhook_id, address)
            )
            if cursor.rowcount == 0:
                raise NotFound(webhook_id)
            await writer.execute("DELETE FROM webhook_outbox WHERE webhook_id = ?", (webhook_id,))

    async def end_webhooks(self, now: datetime) -> int:
        if not await self._any("webhooks"):
            return 0  # nobody to tell: a hook made later hears only ends after it was made
        async with self._transaction() as writer:
            ended = await _rows(
                writer,
                "UPDATE inboxes SET end_told = 1 WHERE address IN (SELECT address FROM inboxes "
                "WHERE end_told = 0 AND expires_at <= ? ORDER BY expires_at LIMIT ?) "
                "RETURNING address, created_at, expires_at",
                (to_ms(now), ENDS_AT_ONCE),
            )
            for address, created, expires in ended:
                await tell_end(writer, address, created, expires, "inbox.expired", to_ms(now))
            orphans = await _rows(
                writer,
                "SELECT address, inbox_created FROM webhooks w WHERE address != '*' AND NOT "
                "EXISTS (SELECT 1 FROM inboxes i WHERE i.address = w.address AND "
                "i.created_at = w.inbox_created)",
            )
            for address, created in orphans:  # their inbox went untold: never in a live node
                await tell_end(writer, address, created, -1, "inbox.expired", to_ms(now))
        return len(ended) + len(orphans)

    async def claim_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        if not await self._any("webhook_outbox"):
            return []
        # One process writes a SQLite store: holding the writer is the claim.
        rows = await self._returning(
            "UPDATE webhook_outbox SET next_at = ? WHERE id IN (SELECT id FROM webhook_outbox "
            f"WHERE next_at <= ? ORDER BY id LIMIT ?) RETURNING {DELIVERY_COLUMNS}",
            (to_ms(lease_until), to_ms(now), limit),
        )
        return sorted((delivery_of(row) for row in rows), key=lambda delivery: delivery.id)

    async def settle_delivery(
        self,
        delivery: Delivery,
        status: str,
        at: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        failed = not delivered and retry_at is None
        async with self._transaction() as writer:
            await writer.execute(
                "UPDATE webhooks SET last_status = ?, last_attempt = ?, delivered = delivered + ?, "
                "failed = failed + ? WHERE id = ?",
                (status, to_ms(at), int(delivered), int(failed), delivery.webhook_id),
            )
            if retry_at is None:
                await writer.execute("DELETE FROM webhook_outbox WHERE id = ?", (delivery.id,))
            else:
                await writer.execute(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?, created_at = "
                    "CASE WHEN created_at = 0 THEN ? ELSE created_at END WHERE id = ?",
                    (to_ms(retry_at), to_ms(at), delivery.id),
                )

    async def release_delivery(self, delivery: Delivery, at: datetime) -> None:
        await self._returning(
            "UPDATE webhook_outbox SET next_at = ? WHERE id = ? RETURNING id",
            (to_ms(at), delivery.id),
        )

    async def trim_outbox(self, per_hook: int, total: int) -> int:
        if not await self._any("webhook_outbox"):
            return 0
        rows = await self._returning(
            "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM (SELECT id, "
            "row_number() OVER (PARTITION BY webhook_id ORDER BY id DESC) AS place, "
            "row_number() OVER (ORDER BY id DESC) AS overall FROM webhook_outbox) "
            "WHERE place > ? OR overall > ?) RETURNING id",
            (per_hook, total),
        )
        return len(rows)

    async def _any(self, table: str) -> bool:
        """Whether `table` has a row, read on the reader: the dispatcher asks twice a
        second, and an idle node must not take the one writer's lock each time."""
        rows = await self._all(f"SELECT EXISTS (SELECT 1 FROM {table})")
        return bool(rows[0][0])
