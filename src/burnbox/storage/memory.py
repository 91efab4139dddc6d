"""The in-memory store: RAM only, the default. A restart wipes everything.

Layout: one insertion-ordered dict per address (message id → (record, raw), the record
being the summary packed into one bytes object by `packed`, which halves what a summary
costs in RAM), and one deque of (address, id) in arrival order, which is also expiry order
because every message gets the same TTL at ingest. The deque is the age index
for eviction and purging; entries of messages deleted early are skipped lazily
when they reach its head. When a message goes, nothing else refers to it.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from dataclasses import replace
from datetime import datetime

from burnbox.ids import Clock, system_clock
from burnbox.model import EPOCH, Delivery, Inbox, MessageSummary, StoreStats, Webhook
from burnbox.storage import packed
from burnbox.storage.base import (
    EXPIRED_INBOX_MEMORY,
    AddressTaken,
    NotFound,
    Stored,
    check_fits,
)
from burnbox.storage.memory_webhooks import MemoryWebhooks

_Stored = tuple[bytes, bytes]  # (packed summary, raw message)


class MemoryStore:
    def __init__(
        self, *, max_bytes: int, inbox_max_messages: int, clock: Clock = system_clock
    ) -> None:
        self._clock = clock  # reads hide what has expired, purged or not
        self._max_bytes = max_bytes
        self._inbox_max = inbox_max_messages
        self._inboxes: dict[str, Inbox] = {}
        self._boxes: dict[str, dict[str, _Stored]] = {}
        self._arrivals: deque[tuple[str, str]] = deque()
        self._bytes = 0
        self._count = 0
        self._stale = 0  # arrivals entries whose message is already gone
        self._live_inboxes = 0  # as of the last refresh_stats()
        self._webhooks = MemoryWebhooks()
        # Inbox ends in time order, for telling each one once (end_webhooks): (end, address),
        # pushed at every create and extend; an entry whose inbox moved on is skipped.
        self._ends: list[tuple[datetime, str]] = []
        self._told: set[str] = set()  # addresses whose current inbox's end was told
        self._keys: dict[str, bytes] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._inboxes.clear()
        self._boxes.clear()
        self._arrivals.clear()
        self._bytes = self._count = 0

    async def ping(self) -> bool:
        return True

    def stats(self) -> StoreStats:
        return StoreStats(self._count, self._bytes, self._live_inboxes)

    async def refresh_stats(self, now: datetime) -> None:
        # Messages and bytes are always current (one process writes this store).
        self._live_inboxes = sum(inbox.expires_at > now for inbox in self._inboxes.values())

    async def create_inbox(self, inbox: Inbox) -> Inbox:
        current = self._inboxes.get(inbox.address)
        if current is not None:
            if current.expires_at > inbox.created_at:
                raise AddressTaken(inbox.address)
            inbox = replace(inbox, claims_from=current.expires_at)
            self._drop_received_before(inbox.address, current.expires_at)
        self._inboxes[inbox.address] = inbox
        self._told.discard(inbox.address)
        heapq.heappush(self._ends, (inbox.expires_at, inbox.address))
        return inbox

    async def inbox(self, address: str) -> Inbox:
        try:
            return self._inboxes[address]
        except KeyError:
            raise NotFound(address) from None

    async def update_inbox(self, inbox: Inbox) -> None:
        if inbox.address not in self._inboxes:
            raise NotFound(inbox.address)
        self._inboxes[inbox.address] = inbox
        heapq.heappush(self._ends, (inbox.expires_at, inbox.address))

    async def add(self, summaries: list[MessageSummary], raw: bytes) -> Stored:
        size = len(raw)
        check_fits(summaries, raw, self._max_bytes)
        evicted: list[tuple[str, str]] = []
        for summary in summaries:
            # One copy of an address string per inbox, not one per message in the age index.
            address = sys.intern(summary.address)
            box = self._boxes.get(address)
            if box is None:
                box = self._boxes[address] = {}
            while len(box) >= self._inbox_max:
                evicted.append(self._remove(address, next(iter(box))))
            while self._bytes + size > self._max_bytes:
                evicted.append(self._evict_oldest())
            box[summary.id] = (packed.pack(summary), raw)
            if self._webhooks.hooks:
                inbox = self._inboxes.get(address)
                told = address in self._told
                self._webhooks.message_event("message.received", summary, inbox, told)
            self._arrivals.append((address, summary.id))
            self._bytes += size
            self._count += 1
        return Stored([summary.id for summary in summaries], evicted)

    async def summaries(
        self,
        address: str,
        *,
        before: str | None = None,
        limit: int = 50,
        since: datetime = EPOCH,
    ) -> list[MessageSummary]:
        box = self._boxes.get(address, {})
        result: list[MessageSummary] = []
        now = self._clock()
        for message_id in reversed(box):
            record = box[message_id][0]
            if (before is not None and message_id >= before) or not _visible(record, since, now):
                continue
            result.append(packed.unpack(address, message_id, record))
            if len(result) >= limit:
                break
        return result

    async def usage(self, address: str, *, since: datetime = EPOCH) -> tuple[int, int]:
        now = self._clock()
        held = [
            raw
            for record, raw in self._boxes.get(address, {}).values()
            if _visible(record, since, now)
        ]
        return len(held), sum(map(len, held))

    async def summary(
        self, address: str, message_id: str, *, since: datetime = EPOCH
    ) -> MessageSummary:
        return packed.unpack(address, message_id, self._stored(address, message_id, since)[0])

    async def raw(self, address: str, message_id: str, *, since: datetime = EPOCH) -> bytes:
        return self._stored(address, message_id, since)[1]

    async def mark_seen(
        self, address: str, message_id: str, seen: bool, *, since: datetime = EPOCH
    ) -> MessageSummary:
        record, raw = self._stored(address, message_id, since)
        updated = replace(packed.unpack(address, message_id, record), seen=seen)
        self._boxes[address][message_id] = (packed.pack(updated), raw)
        return updated

    async def set_auth(self, messages: list[tuple[str, str]], auth: str) -> list[MessageSummary]:
        updated = []
        for address, message_id in messages:
            stored = self._boxes.get(address, {}).get(message_id)
            if stored is not None:
                summary = replace(packed.unpack(address, message_id, stored[0]), auth=auth)
                self._boxes[address][message_id] = (packed.pack(summary), stored[1])
                updated.append(summary)
        return updated

    async def delete(self, address: str, message_id: str, *, since: datetime = EPOCH) -> None:
        self._stored(address, message_id, since)
        self._remove(address, message_id)

    async def burn_inbox(self, address: str, at: datetime) -> list[str]:
        inbox = self._inboxes.get(address)
        if inbox is not None and inbox.expires_at > at:
            inbox = self._inboxes[address] = replace(inbox, expires_at=at)
            self._told.add(address)
            self._webhooks.tell_end(inbox, "inbox.burned", at)
        return [message_id for _, message_id in self._drop_received_before(address, None)]

    async def purge_expired(self, now: datetime) -> list[tuple[str, str]]:
        purged: list[tuple[str, str]] = []
        while self._arrivals:
            address, message_id = self._arrivals[0]
            stored = self._boxes.get(address, {}).get(message_id)
            if stored is not None and packed.expires_at(stored[0]) > now:
                break
            if stored is None:
                self._pop_stale()
            else:
                purged.append(self._pop_oldest())
        forgotten = now - EXPIRED_INBOX_MEMORY
        for address, inbox in list(self._inboxes.items()):
            if inbox.expires_at <= now:  # its mail goes at its end; its record an hour on
                purged += self._drop_received_before(address, inbox.expires_at)
            if inbox.expires_at <= forgotten:
                del self._inboxes[address]
                self._told.discard(address)
                purged.append((address, ""))
        return purged

    def _drop_received_before(self, address: str, moment: datetime | None) -> list[tuple[str, str]]:
        """Remove an address's mail received before `moment` (all of it for None)."""
        box = self._boxes.get(address, {})
        gone = [
            (address, message_id)
            for message_id, (record, _raw) in box.items()
            if moment is None or packed.received_at(record) < moment
        ]
        for _, message_id in gone:
            self._forget(address, message_id)
        self._stale += len(gone)
        self._compact()
        return gone

    def _stored(self, address: str, message_id: str, since: datetime = EPOCH) -> _Stored:
        stored = self._boxes.get(address, {}).get(message_id)
        if stored is None or not _visible(stored[0], since, self._clock()):
            raise NotFound(message_id)
        return stored

    def _evict_oldest(self) -> tuple[str, str]:
        while True:
            address, message_id = self._arrivals[0]
            if message_id in self._boxes.get(address, {}):
                return self._pop_oldest()
            self._pop_stale()

    def _pop_oldest(self) -> tuple[str, str]:
        address, message_id = self._arrivals.popleft()
        self._forget(address, message_id)
        return address, message_id

    def _pop_stale(self) -> None:
        self._arrivals.popleft()
        self._stale -= 1

    def _remove(self, address: str, message_id: str) -> tuple[str, str]:
        """Forget a message out of age order; its arrivals entry becomes stale."""
        self._forget(address, message_id)
        self._stale += 1
        self._compact()
        return address, message_id

    def _forget(self, address: str, message_id: str) -> None:
        box = self._boxes[address]
        record, raw = box.pop(message_id)
        if self._webhooks.hooks:
            summary = packed.unpack(address, message_id, record)
            inbox = self._inboxes.get(address)
            told = address in self._told
            self._webhooks.message_event("message.deleted", summary, inbox, told)
        if not box:
            del self._boxes[address]
        self._bytes -= len(raw)
        self._count -= 1

    def _compact(self) -> None:
        # Keep the age index proportional to what is stored: rebuild it once most of
        # it points at messages that were deleted before their time.
        if self._stale > 1024 and self._stale * 2 > len(self._arrivals):
            self._arrivals = deque(
                entry for entry in self._arrivals if entry[1] in self._boxes.get(entry[0], {})
            )
            self._stale = 0

    async def key(self, name: str, new: bytes) -> bytes:
        return self._keys.setdefault(name, new)  # dies with the process, as the inboxes do

    # -- webhooks ------------------------------------------------------------

    async def add_webhook(self, hook: Webhook) -> None:
        self._webhooks.add(hook)

    async def webhooks(self, address: str) -> list[Webhook]:
        return self._webhooks.of(address)

    async def delete_webhook(self, address: str, webhook_id: str) -> None:
        self._webhooks.delete(address, webhook_id)

    async def end_webhooks(self, now: datetime) -> int:
        told = 0
        while self._ends and self._ends[0][0] <= now:
            end, address = heapq.heappop(self._ends)
            inbox = self._inboxes.get(address)
            if inbox is None or inbox.expires_at != end or address in self._told:
                continue  # extended, made again, forgotten, or told already (burned)
            self._told.add(address)
            self._webhooks.tell_end(inbox, "inbox.expired", now)
            told += 1
        return told + self._webhooks.end_orphans(now, self._inboxes)

    async def claim_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        return self._webhooks.claim(now, lease_until, limit)

    async def settle_delivery(
        self,
        delivery: Delivery,
        status: str,
        at: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        self._webhooks.settle(delivery, status, at, delivered=delivered, retry_at=retry_at)

    async def release_delivery(self, delivery: Delivery, at: datetime) -> None:
        self._webhooks.release(delivery, at)

    async def trim_outbox(self, per_hook: int, total: int) -> int:
        return self._webhooks.trim(per_hook, total)


def _visible(record: bytes, since: datetime, now: datetime) -> bool:
    """Received within the inbox's claim, and not expired (purged or not yet)."""
    return packed.received_at(record) >= since and packed.expires_at(record) > now
