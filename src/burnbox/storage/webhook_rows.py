"""Webhook rows ↔ values, for the SQL stores (their tables: postgres 006_webhooks.sql and
007_told_ends.sql, sqlite 004_webhooks.sql and 005_told_ends.sql)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from burnbox.model import Delivery, Webhook, at_ms

# Columns in the order the row readers below expect.
HOOK_COLUMNS = (
    "id, address, inbox_created, url, secret, events, include_body, created_at, last_status, "
    "last_attempt, delivered, failed"
)
DELIVERY_COLUMNS = (
    "id, webhook_id, url, secret, include_body, kind, address, message_id, payload, "
    "created_at, attempts, event_id"
)
ENDED_PAYLOAD_KEY = "address"


def hook_of(row: Sequence[Any], events: Sequence[str], pending: int = 0) -> Webhook:
    return Webhook(
        id=row[0],
        address=row[1],
        inbox_created=at_ms(row[2]),
        url=row[3],
        secret=row[4],
        events=tuple(events),
        include_body=bool(row[6]),
        created_at=at_ms(row[7]),
        last_status=row[8],
        last_attempt=at_ms(row[9]) if row[9] else None,
        delivered=row[10],
        failed=row[11],
        pending=pending,
    )


def delivery_of(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=int(row[0]),
        webhook_id=row[1],
        url=row[2],
        secret=row[3],
        include_body=bool(row[4]),
        kind=row[5],
        address=row[6],
        message_id=row[7],
        payload=row[8],
        created_at=at_ms(row[9]),
        attempts=int(row[10]),
        event_id=row[11],
    )


def ended_payload(address: str) -> str:
    return json.dumps({ENDED_PAYLOAD_KEY: address})
