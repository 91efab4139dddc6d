"""The PostgreSQL store's webhooks: registrations and the outbox (schema/postgres/006_webhooks.sql,
whose triggers write message events in the message's own transaction). A mixin of
PostgresStore, apart because it is a second job: the store keeps mail, this keeps who is
told. Claims use FOR UPDATE SKIP LOCKED, so every worker and node takes different events.
What the dispatcher calls in its loop raises StoreError when the database is away
(postgres_outage.py), which it waits out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from burnbox.model import Delivery, Webhook
from burnbox.storage.base import NotFound
from burnbox.storage.postgres_outage import outage_is_store_error
from burnbox.storage.rows import to_ms
from burnbox.storage.webhook_rows import DELIVERY_COLUMNS, HOOK_COLUMNS, delivery_of, hook_of

if TYPE_CHECKING:
    import asyncpg


ENDS_AT_ONCE = 500  # inbox ends told in one transaction


async def tell_ends(connection: Any, ended: list[Any], kind: str, now: int) -> None:
    """Inbox ends, (address, created, ended at) in milliseconds (-1 for one never told), to
    each inbox's own hooks and the node-wide ones made by then; the inboxes' hooks then go."""
    if not ended:
        return
    addresses, created, ends = ([row[n] for row in ended] for n in range(3))
    await connection.execute(
        "INSERT INTO webhook_outbox (webhook_id, url, secret, include_body, kind, address, "
        "message_id, payload, created_at, next_at) SELECT w.id, w.url, w.secret, "
        "w.include_body, $1, e.address, '', json_build_object('address', e.address)::text, "
        "$2, $2 FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS e(address, created, "
        "ended) JOIN webhooks w ON (w.address = e.address AND w.inbox_created = e.created) "
        "OR (w.address = '*' AND w.created_at <= e.ended) WHERE $1 = ANY (w.events) "
        "ORDER BY e.ended, w.id",
        kind,
        now,
        addresses,
        created,
        ends,
    )
    await connection.execute(
        "DELETE FROM webhooks w USING unnest($1::text[], $2::bigint[]) AS e(address, created) "
        "WHERE w.address = e.address AND w.inbox_created = e.created",
        addresses,
        created,
    )


class PostgresWebhooks:
    if TYPE_CHECKING:  # what PostgresStore provides

        def _ready(self) -> asyncpg.Pool: ...
        async def _fetch(self, sql: str, *arguments: object) -> list[Any]: ...
        async def _execute(self, sql: str, *arguments: object) -> str: ...

    async def add_webhook(self, hook: Webhook) -> None:
        await self._execute(
            f"INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO UPDATE SET "
            "url = excluded.url, secret = excluded.secret, events = excluded.events, "
            "include_body = excluded.include_body",
            hook.id,
            hook.address,
            to_ms(hook.inbox_created),
            hook.url,
            hook.secret,
            list(hook.events),
            hook.include_body,
            to_ms(hook.created_at),
            hook.last_status,
            to_ms(hook.last_attempt) if hook.last_attempt else 0,
            hook.delivered,
            hook.failed,
        )

    async def webhooks(self, address: str) -> list[Webhook]:
        rows = await self._fetch(
            f"SELECT {HOOK_COLUMNS}, (SELECT count(*) FROM webhook_outbox o "
            "WHERE o.webhook_id = w.id) FROM webhooks w WHERE address = $1 ORDER BY created_at",
            address,
        )
        return [hook_of(row, row[5], row[12]) for row in rows]

    async def delete_webhook(self, address: str, webhook_id: str) -> None:
        async with self._ready().acquire() as connection, connection.transaction():
            gone = await connection.fetchval(
                "DELETE FROM webhooks WHERE id = $1 AND address = $2 RETURNING 1",
                webhook_id,
                address,
            )
            if gone is None:
                raise NotFound(webhook_id)
            await connection.execute("DELETE FROM webhook_outbox WHERE webhook_id = $1", webhook_id)

    @outage_is_store_error
    async def end_webhooks(self, now: datetime) -> int:
        async with self._ready().acquire() as connection, connection.transaction():
            if not await connection.fetchval("SELECT EXISTS (SELECT 1 FROM webhooks)"):
                return 0  # nobody to tell: a hook made later hears only ends after it was made
            # SKIP LOCKED: two nodes' dispatchers never tell one end twice.
            ended = await connection.fetch(
                "UPDATE inboxes SET end_told = true WHERE address IN (SELECT address FROM "
                "inboxes WHERE NOT end_told AND expires_at <= $1 ORDER BY expires_at LIMIT $2 "
                "FOR UPDATE SKIP LOCKED) RETURNING address, created_at, expires_at",
                to_ms(now),
                ENDS_AT_ONCE,
            )
            await tell_ends(connection, ended, "inbox.expired", to_ms(now))
            # Hooks whose inbox went untold (never in a live node): told, and removed.
            orphans = await connection.fetch(
                "SELECT address, inbox_created, -1 FROM webhooks w WHERE address != '*' AND "
                "NOT EXISTS (SELECT 1 FROM inboxes i WHERE i.address = w.address AND "
                "i.created_at = w.inbox_created) FOR UPDATE SKIP LOCKED"
            )
            await tell_ends(connection, orphans, "inbox.expired", to_ms(now))
        return len(ended) + len(orphans)

    @outage_is_store_error
    async def claim_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        # SKIP LOCKED: every worker and node claims different deliveries; the lease keeps a
        # claimed one from the others until it is settled (or its claimer died).
        rows = await self._fetch(
            "UPDATE webhook_outbox SET next_at = $1 WHERE id IN (SELECT id FROM webhook_outbox "
            "WHERE next_at <= $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {DELIVERY_COLUMNS}",
            to_ms(lease_until),
            to_ms(now),
            limit,
        )
        return sorted((delivery_of(row) for row in rows), key=lambda delivery: delivery.id)

    @outage_is_store_error
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
        async with self._ready().acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE webhooks SET last_status = $1, last_attempt = $2, "
                "delivered = delivered + $3, failed = failed + $4 WHERE id = $5",
                status,
                to_ms(at),
                int(delivered),
                int(failed),
                delivery.webhook_id,
            )
            if retry_at is None:
                await connection.execute("DELETE FROM webhook_outbox WHERE id = $1", delivery.id)
            else:
                await connection.execute(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $1, created_at = "
                    "CASE WHEN created_at = 0 THEN $2 ELSE created_at END WHERE id = $3",
                    to_ms(retry_at),
                    to_ms(at),
                    delivery.id,
                )

    @outage_is_store_error
    async def release_delivery(self, delivery: Delivery, at: datetime) -> None:
        await self._execute(
            "UPDATE webhook_outbox SET next_at = $1 WHERE id = $2", to_ms(at), delivery.id
        )

    @outage_is_store_error
    async def trim_outbox(self, per_hook: int, total: int) -> int:
        rows = await self._fetch(
            "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM (SELECT id, "
            "row_number() OVER (PARTITION BY webhook_id ORDER BY id DESC) AS place, "
            "row_number() OVER (ORDER BY id DESC) AS overall FROM webhook_outbox) ranked "
            "WHERE place > $1 OR overall > $2) RETURNING id",
            per_hook,
            total,
        )
        return len(rows)
