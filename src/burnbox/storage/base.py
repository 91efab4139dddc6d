"""The Store protocol: the one seam every backend implements, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from burnbox.model import EPOCH, Delivery, Inbox, MessageSummary, StoreStats, Webhook

# Rows one purge statement deletes (SQL stores): ingest shares the writer or the tables,
# and never waits long behind a purge.
PURGE_BATCH = 500
# How long the record of an expired or burned inbox is kept after its end. Its mail goes at
# once; the record stays so that an inbox made again at the address claims only mail from
# the end on, and any message received before the end but committed after it (a delivery
# in flight; none lasts this long) is still recognised as the old inbox's and purged.
EXPIRED_INBOX_MEMORY = timedelta(hours=1)


class StoreError(Exception):
    """A fault on the store's side; SMTP answers it with 451 4.3.0."""


class NotFound(StoreError):
    """No such inbox or message (or one the caller may not see)."""


class AddressTaken(StoreError):
    """A live inbox already holds that address."""


class StoreFull(StoreError):
    """The store cannot take this message now (SMTP 452 4.3.1)."""


class TooLargeForStore(StoreError):
    """The message can never fit: its copies, one per inbox, exceed the store's whole byte
    cap. Evicting cannot make room, so trying again cannot help (SMTP 552 5.3.4)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What add() did: the id each message was stored under (in the order of the
    summaries given) and the (address, message id) pairs evicted to make room."""

    ids: list[str]
    evicted: list[tuple[str, str]]


def check_fits(summaries: list[MessageSummary], raw: bytes, max_bytes: int) -> None:
    """The contract's TooLargeForStore for a message no eviction could make room for."""
    if len(raw) * len(summaries) > max_bytes:
        raise TooLargeForStore("message larger than the store")


class Store(Protocol):
    async def open(self) -> None:
        """Connect and prepare; called once at start."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the store can serve requests now (readiness)."""

    def stats(self) -> StoreStats:
        """Counts for metrics: a snapshot, current after refresh_stats()."""

    async def refresh_stats(self, now: datetime) -> None:
        """Read the counts afresh: other processes write a shared store, and a count that
        scans a table is read here rather than after every write (called before a scrape).
        Inboxes are counted if live at `now`."""

    async def create_inbox(self, inbox: Inbox) -> Inbox:
        """Store a new inbox; returns it as stored. Raises AddressTaken when a live inbox
        holds the address. An expired or burned one's record is replaced: the new inbox
        claims mail from that one's end on, and the old one's mail is deleted now."""

    async def inbox(self, address: str) -> Inbox:
        """The inbox's record, live or not (see Inbox.expires_at). Raises NotFound."""

    async def update_inbox(self, inbox: Inbox) -> None:
        """Replace a live inbox's record (its expiry); raises NotFound."""

    async def add(self, summaries: list[MessageSummary], raw: bytes) -> Stored:
        """Store one message for each summary's inbox, sharing `raw`.

        Durable before it returns. Within an inbox, ids follow commit order: a
        message committed after another has the greater id, so "everything newer
        than the id I last saw" is exact. A store shared by several writers keeps
        that by giving a message a later id than the one proposed when another
        writer committed a greater one first (a clock behind, a slower commit).
        Evicts to make room (per-inbox count cap, global byte cap).
        Raises TooLargeForStore when the message can never fit, StoreFull when it cannot
        now (a full disk).
        """

    # The reads and changes below see only mail received at or after `since` (an inbox's
    # `claims_from`): whatever else is stored for the address is as good as absent.

    async def summaries(
        self,
        address: str,
        *,
        before: str | None = None,
        limit: int = 50,
        since: datetime = EPOCH,
    ) -> list[MessageSummary]:
        """Newest first; `before` is a message id (exclusive cursor)."""

    async def usage(self, address: str, *, since: datetime = EPOCH) -> tuple[int, int]:
        """(messages, bytes) held for an address."""

    async def summary(
        self, address: str, message_id: str, *, since: datetime = EPOCH
    ) -> MessageSummary:
        """Raises NotFound."""

    async def raw(self, address: str, message_id: str, *, since: datetime = EPOCH) -> bytes:
        """Raises NotFound."""

    async def mark_seen(
        self, address: str, message_id: str, seen: bool, *, since: datetime = EPOCH
    ) -> MessageSummary:
        """Set the seen flag; returns the updated summary. Raises NotFound."""

    async def delete(self, address: str, message_id: str, *, since: datetime = EPOCH) -> None:
        """Raises NotFound."""

    async def set_auth(self, messages: list[tuple[str, str]], auth: str) -> list[MessageSummary]:
        """The sender checks' results for these (address, message id) copies of one message;
        the summaries updated (those still held)."""

    async def burn_inbox(self, address: str, at: datetime) -> list[str]:
        """End an inbox at `at` and delete all mail held for its address now; returns the
        ids of the messages that went. Its record stays (as expired) for
        EXPIRED_INBOX_MEMORY, like an expired one's. If it was live, its end is told in the
        same transaction (inbox.burned, to its hooks and the node-wide ones), and its hooks
        go first: they hear the burn, not each message going."""

    async def purge_expired(self, now: datetime) -> list[tuple[str, str]]:
        """Remove what is past its time; returns the (address, message id) pairs purged.

        Messages past their own expiry go, and so does every message an expired inbox
        held (received before its end). The records of inboxes that ended more than
        EXPIRED_INBOX_MEMORY ago go too: their pairs carry message id "".
        """

    async def key(self, name: str, new: bytes) -> bytes:
        """The deployment's key called `name`: the first caller's `new` is kept, and every
        later caller (any node) gets that same one."""

    # -- webhooks (webhooks.py): registrations, and an outbox written in the same
    # transaction as the event (a message stored or deleted, an inbox's end) ------------

    async def add_webhook(self, hook: Webhook) -> None:
        """Register `hook`, or replace the one with its id (the node-wide one, at start)."""

    async def webhooks(self, address: str) -> list[Webhook]:
        """An address's hooks, oldest first, each with its count of pending deliveries."""

    async def delete_webhook(self, address: str, webhook_id: str) -> None:
        """Remove a hook and what it has pending. Raises NotFound."""

    async def end_webhooks(self, now: datetime) -> int:
        """Tell each inbox end that has come by `now` and was not told yet (inbox.expired),
        once across every node: to that inbox's hooks and to the node-wide ones made before
        it ended; the inbox's hooks then go, and so do hooks whose inbox is gone or was made
        again. The node-wide hook hears what every inbox's own hook would: neither hears the
        mail of an inbox whose end was told being deleted after it. Returns how many ends
        were told (and orphaned hooks removed)."""

    async def claim_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Up to `limit` deliveries due by `now`, oldest first, each held until
        `lease_until`: every other worker and node skips it meanwhile."""

    async def settle_delivery(
        self,
        delivery: Delivery,
        status: str,
        at: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        """An attempt's outcome: delivered (it goes), to be retried at `retry_at`, or given
        up (neither: it goes, counted as failed). The hook records `status` and `at`."""

    async def release_delivery(self, delivery: Delivery, at: datetime) -> None:
        """Give a claimed delivery back, untried: due again at `at` (its host was busy)."""

    async def trim_outbox(self, per_hook: int, total: int) -> int:
        """Drop the oldest pending deliveries beyond `per_hook` per hook and `total` in
        all; returns how many went."""
