"""The one lock order of the PostgreSQL store: whoever deletes or inserts messages first
locks the counter rows of the inboxes it touches, in address order (docs/architecture.md,
"One lock order, so no deadlock")."""

from __future__ import annotations

from typing import Any


async def lock_counters(connection: Any, addresses: list[str]) -> None:
    """Lock the counter rows of these inboxes, in address order, before deleting any of their
    messages. Every writer (a delivery batch, a purge, a burn) takes them first and in that
    order, so no two of them can each hold a row the other waits for."""
    await connection.execute(
        "SELECT 1 FROM address_counts WHERE address = ANY($1::text[]) ORDER BY address FOR UPDATE",
        sorted(addresses),
    )
