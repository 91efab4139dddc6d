"""The Store protocol: the one seam every backend implements, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from burnbox.model import Inbox, MessageSummary, StoreStats

# Rows one purge statement deletes (SQL stores): ingest shares the writer or the tables,
# and never waits long behind a purge.
PURGE_BATCH = 500


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

    async def refresh_stats(self) -> None:
        """Read the counts afresh: other processes write a shared store, and a count that
        scans a table is read here rather than after every write (called before a scrape)."""

    async def create_inbox(self, inbox: Inbox) -> None:
        """Raises AddressTaken when a live inbox holds the address."""

    async def inbox(self, address: str) -> Inbox:
        """Raises NotFound."""

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

    async def summaries(
        self, address: str, *, before: str | None = None, limit: int = 50
    ) -> list[MessageSummary]:
        """Newest first; `before` is a message id (exclusive cursor)."""

    async def usage(self, address: str) -> tuple[int, int]:
        """(messages, bytes) held for an address."""

    async def summary(self, address: str, message_id: str) -> MessageSummary:
        """Raises NotFound."""

    async def raw(self, address: str, message_id: str) -> bytes:
        """Raises NotFound."""

    async def mark_seen(self, address: str, message_id: str, seen: bool) -> MessageSummary:
        """Set the seen flag; returns the updated summary. Raises NotFound."""

    async def delete(self, address: str, message_id: str) -> None:
        """Raises NotFound."""

    async def delete_inbox(self, address: str) -> int:
        """Delete an inbox and all its mail; returns how many messages went."""

    async def purge_expired(self, now: datetime) -> list[tuple[str, str]]:
        """Remove what is past its expiry; returns the (address, message id) pairs purged.

        Expired inboxes go too (their pairs carry message id "").
        """
