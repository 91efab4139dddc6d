"""The RAM-only store's webhooks: registrations and an outbox, in this process (a restart
loses what is pending, as it loses the mail: documented in docs/webhooks.md)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from burnbox.model import NODE_WIDE, Delivery, Inbox, MessageSummary, Webhook, ms_of
from burnbox.storage.base import NotFound


@dataclass
class _Pending:
    delivery: Delivery
    next_at: datetime


class MemoryWebhooks:
    def __init__(self) -> None:
        self.hooks: dict[str, Webhook] = {}
        self._outbox: dict[int, _Pending] = {}
        self._next_id = 0

    def add(self, hook: Webhook) -> None:
        self.hooks[hook.id] = hook

    def of(self, address: str) -> list[Webhook]:
        found = [hook for hook in self.hooks.values() if hook.address == address]
        counts = {hook.id: 0 for hook in found}
        for pending in self._outbox.values():
            if pending.delivery.webhook_id in counts:
                counts[pending.delivery.webhook_id] += 1
        return sorted(
            (replace(hook, pending=counts[hook.id]) for hook in found), key=lambda h: h.created_at
        )

    def delete(self, address: str, webhook_id: str) -> None:
        hook = self.hooks.get(webhook_id)
        if hook is None or hook.address != address:
            raise NotFound(webhook_id)
        del self.hooks[webhook_id]
        self._drop(lambda delivery: delivery.webhook_id == webhook_id)

    def message_event(
        self, kind: str, summary: MessageSummary, inbox: Inbox | None, ended_told: bool
    ) -> None:
        """What the SQL stores' triggers do: tell the hooks of the inbox that held the
        address when the message came, and the node-wide hook, which hears what every
        inbox's own hook would: not the mail of an inbox whose end it was told going."""
        now = summary.received_at
        for hook in list(self.hooks.values()):
            if kind not in hook.events or hook.address not in (summary.address, NODE_WIDE):
                continue
            if hook.address != NODE_WIDE and not _belongs(summary, inbox, hook):
                continue
            if hook.address == NODE_WIDE and ended_told and _held_at_end(summary, inbox):
                continue
            self._enqueue(hook, kind, summary.address, summary.id, _payload(summary), now)

    def tell_end(self, inbox: Inbox, kind: str, now: datetime) -> None:
        """An inbox ended (burned or expired): its own hooks and the node-wide ones made
        before its end are told, then its hooks go."""
        for hook in list(self.hooks.values()):
            own = hook.address == inbox.address and hook.inbox_created == inbox.created_at
            if not own and not (hook.address == NODE_WIDE and hook.created_at <= inbox.expires_at):
                continue
            if kind in hook.events:
                payload = json.dumps({"address": inbox.address})
                self._enqueue(hook, kind, inbox.address, "", payload, now)
            if own:
                del self.hooks[hook.id]

    def end_orphans(self, now: datetime, live: dict[str, Inbox]) -> int:
        """Hooks whose inbox is gone or was made again without its end being told (never in
        a running node; kept for safety): told inbox.expired, and removed."""
        orphans = [
            hook
            for hook in self.hooks.values()
            if hook.address != NODE_WIDE
            and (hook.address not in live or live[hook.address].created_at != hook.inbox_created)
        ]
        for hook in orphans:
            if "inbox.expired" in hook.events:
                payload = json.dumps({"address": hook.address})
                self._enqueue(hook, "inbox.expired", hook.address, "", payload, now)
            del self.hooks[hook.id]
        return len(orphans)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        due = sorted(
            (item for item in self._outbox.values() if item.next_at <= now),
            key=lambda item: item.delivery.id,
        )[:limit]
        for item in due:
            item.next_at = lease_until
        return [item.delivery for item in due]

    def settle(
        self,
        delivery: Delivery,
        status: str,
        at: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        hook = self.hooks.get(delivery.webhook_id)
        if hook is not None:
            self.hooks[hook.id] = replace(
                hook,
                last_status=status,
                last_attempt=at,
                delivered=hook.delivered + delivered,
                failed=hook.failed + (not delivered and retry_at is None),
            )
        pending = self._outbox.get(delivery.id)
        if pending is None:
            return
        if delivered or retry_at is None:
            del self._outbox[delivery.id]
        else:
            first = pending.delivery.created_at if pending.delivery.attempts else at
            pending.delivery = replace(
                pending.delivery, attempts=pending.delivery.attempts + 1, created_at=first
            )
            pending.next_at = retry_at

    def release(self, delivery: Delivery, at: datetime) -> None:
        pending = self._outbox.get(delivery.id)
        if pending is not None:
            pending.next_at = at

    def trim(self, per_hook: int, total: int) -> int:
        ordered = sorted(self._outbox)
        seen: dict[str, int] = {}
        dropped = 0
        for delivery_id in reversed(ordered):  # newest first: the oldest go
            hook_id = self._outbox[delivery_id].delivery.webhook_id
            seen[hook_id] = seen.get(hook_id, 0) + 1
            if seen[hook_id] > per_hook or len(self._outbox) - dropped > total:
                del self._outbox[delivery_id]
                dropped += 1
        return dropped

    def _enqueue(
        self, hook: Webhook, kind: str, address: str, message_id: str, payload: str, now: datetime
    ) -> None:
        self._next_id += 1
        delivery = Delivery(
            self._next_id,
            hook.id,
            hook.url,
            hook.secret,
            hook.include_body,
            kind,
            address,
            message_id,
            payload,
            now,
            0,
            "evt_" + secrets.token_hex(16),  # as the SQL stores' column default makes them
        )
        self._outbox[delivery.id] = _Pending(delivery, now)

    def _drop(self, condition: object) -> None:
        assert callable(condition)
        for delivery_id in [key for key, item in self._outbox.items() if condition(item.delivery)]:
            del self._outbox[delivery_id]


def _belongs(summary: MessageSummary, inbox: Inbox | None, hook: Webhook) -> bool:
    return (
        inbox is not None
        and inbox.created_at == hook.inbox_created
        and inbox.claims_from <= summary.received_at < inbox.expires_at
    )


def _held_at_end(summary: MessageSummary, inbox: Inbox | None) -> bool:
    """The message was `inbox`'s when it ended (a burn takes what came in its last
    millisecond too)."""
    return inbox is not None and inbox.claims_from <= summary.received_at <= inbox.expires_at


def _payload(summary: MessageSummary) -> str:
    return json.dumps(
        {
            "id": summary.id,
            "address": summary.address,
            "received_at": ms_of(summary.received_at),
            "expires_at": ms_of(summary.expires_at),
            "size": summary.size,
            "from": summary.sender,
            "to": summary.to,
            "subject": summary.subject,
            "snippet": summary.snippet,
            "attachments": summary.attachments,
            "message_id": summary.message_id,
        }
    )
