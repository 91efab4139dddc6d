"""Webhooks: who registers them, what they are told, and how it is signed.

A registration belongs to one inbox's lifetime and goes with it; the node-wide one
(BURNBOX_WEBHOOK_URL) hears every inbox. Events: message.received (the summary with the
codes and links burnbox found, the text only when the registration asked), message.deleted,
inbox.expired, inbox.burned. The store writes each event to an outbox in the transaction
that caused it (storage); dispatch.py delivers them.

Signed as the Standard Webhooks specification says: headers webhook-id, webhook-timestamp
and webhook-signature, `v1,` + base64 HMAC-SHA256 over "id.timestamp.body" with the
secret's key (`whsec_` + base64), shown once at registration. Three lines of the stdlib's
hmac; tests/test_webhooks.py verifies them with the `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from burnbox import codes, mime
from burnbox.destinations import IpNetwork, resolve
from burnbox.ids import Clock
from burnbox.model import NODE_WIDE, Delivery, Inbox, Webhook, at_ms
from burnbox.storage.base import NotFound, Store

EVENTS = ("message.received", "message.deleted", "inbox.expired", "inbox.burned")
MAX_PER_INBOX = 5
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
NODE_WIDE_ID = "node"
MAX_TEXT = 100_000  # characters of text a delivery carries when the body is asked for


class TooManyWebhooks(Exception):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(delivery: Delivery, timestamp: int, body: bytes) -> dict[str, str]:
    event_id = delivery.event_id  # the same on every retry, unique across restarts and nodes
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(delivery.secret, event_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "burnbox-webhooks",
    }


def _iso(milliseconds: Any) -> str:
    return at_ms(int(milliseconds)).isoformat().replace("+00:00", "Z")


def message_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """The summary the store wrote with the event, as the API shows one."""
    return {
        "id": stored.get("id", ""),
        "from": stored.get("from", ""),
        "to": stored.get("to", ""),
        "subject": stored.get("subject", ""),
        "snippet": stored.get("snippet", ""),
        "size": stored.get("size", 0),
        "attachments": stored.get("attachments", 0),
        "message_id": stored.get("message_id", ""),
        "received_at": _iso(stored.get("received_at", 0)),
        "expires_at": _iso(stored.get("expires_at", 0)),
    }


def found_in(raw: bytes, subject: str, with_text: bool) -> dict[str, Any]:
    """Codes and links of a message (and its text, if asked). Module-level: ParsePool runs
    it in a worker for a large message."""
    view = mime.full_view(raw)
    found = codes.extract(subject, view.text, view.html)
    extra: dict[str, Any] = {
        "codes": found.codes,
        "links": [{"url": link.url, "text": link.text} for link in found.links],
    }
    if with_text:
        extra["text"] = view.text[:MAX_TEXT]
    return extra


def body(delivery: Delivery, at: datetime, extra: dict[str, Any]) -> bytes:
    stored = json.loads(delivery.payload)
    data: dict[str, Any] = {"inbox": delivery.address}
    if delivery.kind.startswith("message."):
        data["message"] = message_fields(stored)
        data.update(extra)
    event = {
        "type": delivery.kind,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(event, separators=(",", ":")).encode()


class WebhookService:
    """Registrations through the API, and the node-wide one."""

    def __init__(self, store: Store, clock: Clock, allow: tuple[IpNetwork, ...]) -> None:
        self._store = store
        self._clock = clock
        self.allow = allow

    async def register(
        self, inbox: Inbox, url: str, events: tuple[str, ...], include_body: bool
    ) -> Webhook:
        """Raises RefusedDestination (the URL may not be called) or TooManyWebhooks."""
        await resolve(url, self.allow)  # refused at once, with its reason
        if len(await self._store.webhooks(inbox.address)) >= MAX_PER_INBOX:
            raise TooManyWebhooks(inbox.address)
        hook = Webhook(
            id="wh_" + secrets.token_urlsafe(12),
            address=inbox.address,
            inbox_created=inbox.created_at,
            url=url.strip(),
            secret=new_secret(),
            events=tuple(event for event in EVENTS if event in events),
            include_body=include_body,
            created_at=self._clock(),
        )
        await self._store.add_webhook(hook)
        return hook

    async def of(self, inbox: Inbox) -> list[Webhook]:
        return [
            hook
            for hook in await self._store.webhooks(inbox.address)
            if hook.inbox_created == inbox.created_at
        ]

    async def remove(self, inbox: Inbox, webhook_id: str) -> None:
        """Raises NotFound."""
        await self._store.delete_webhook(inbox.address, webhook_id)

    async def node_wide(self, url: str, secret: str, events: tuple[str, ...]) -> None:
        """The node's own hook as configured (or none)."""
        if not url:
            with contextlib.suppress(NotFound):  # there was none
                await self._store.delete_webhook(NODE_WIDE, NODE_WIDE_ID)
            return
        hook = Webhook(
            id=NODE_WIDE_ID,
            address=NODE_WIDE,
            inbox_created=at_ms(0),
            url=url,
            secret=secret,
            events=events,
            include_body=False,
            created_at=self._clock(),
        )
        await self._store.add_webhook(hook)
