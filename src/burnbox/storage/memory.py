"""The in-memory store: RAM only, the default. A restart wipes everything.

Layout: one insertion-ordered dict per address (message id → (record, raw), the record
being the summary packed into one bytes object by `packed`, which halves what a summary
costs in RAM), and one deque of (address, id) in arrival order, which is also expiry order
because every message gets the same TTL at ingest. The deque is the age index
for eviction and purging; entries of messages deleted early are skipped lazily
when they reach its head. When a message goes, nothing else refers to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import datetime

from burnbox.model import Inbox, MessageSummary, StoreStats
from burnbox.storage import packed
from burnbox.storage.base import AddressTaken, NotFound, Stored, check_fits

_Stored = tuple[bytes, bytes]  # (packed summary, raw message)


class MemoryStore:
    def __init__(self, *, max_bytes: int, inbox_max_messages: int) -> None:
        self._max_bytes = max_bytes
        self._inbox_max = inbox_max_messages
        self._inboxes: dict[str, Inbox] = {}
        self._boxes: dict[str, dict[str, _Stored]] = {}
        self._arrivals: deque[tuple[str, str]] = deque()
        self._bytes = 0
        self._count = 0
        self._stale = 0  # arrivals entries whose message is already gone

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
        return StoreStats(self._count, self._bytes, len(self._inboxes))

    async def refresh_stats(self) -> None:
        return None  # one process writes this store: its counts are always current

    async def create_inbox(self, inbox: Inbox) -> None:
        current = self._inboxes.get(inbox.address)
        if current is not None and current.expires_at > inbox.created_at:
            raise AddressTaken(inbox.address)
        self._inboxes[inbox.address] = inbox

    async def inbox(self, address: str) -> Inbox:
        try:
            return self._inboxes[address]
        except KeyError:
            raise NotFound(address) from None

    async def update_inbox(self, inbox: Inbox) -> None:
        if inbox.address not in self._inboxes:
            raise NotFound(inbox.address)
        self._inboxes[inbox.address] = inbox

    async def add(self, summaries: list[MessageSummary], raw: bytes) -> Stored:
        size = len(raw)
        check_fits(summaries, raw, self._max_bytes)
        evicted: list[tuple[str, str]] = []
        for summary in summaries:
            box = self._boxes.get(summary.address)
            if box is None:
                box = self._boxes[summary.address] = {}
            while len(box) >= self._inbox_max:
                evicted.append(self._remove(summary.address, next(iter(box))))
            while self._bytes + size > self._max_bytes:
                evicted.append(self._evict_oldest())
            # Share the address string of the box key: one copy per inbox, not per message.
            box[summary.id] = (packed.pack(summary), raw)
            self._arrivals.append((summary.address, summary.id))
            self._bytes += size
            self._count += 1
        return Stored([summary.id for summary in summaries], evicted)

    async def summaries(
        self, address: str, *, before: str | None = None, limit: int = 50
    ) -> list[MessageSummary]:
        box = self._boxes.get(address, {})
        result: list[MessageSummary] = []
        for message_id in reversed(box):
            if before is not None and message_id >= before:
                continue
            result.append(packed.unpack(address, message_id, box[message_id][0]))
            if len(result) >= limit:
                break
        return result

    async def usage(self, address: str) -> tuple[int, int]:
        box = self._boxes.get(address, {})
        return len(box), sum(len(raw) for _record, raw in box.values())

    async def summary(self, address: str, message_id: str) -> MessageSummary:
        return packed.unpack(address, message_id, self._stored(address, message_id)[0])

    async def raw(self, address: str, message_id: str) -> bytes:
        return self._stored(address, message_id)[1]

    async def mark_seen(self, address: str, message_id: str, seen: bool) -> MessageSummary:
        record, raw = self._stored(address, message_id)
        updated = replace(packed.unpack(address, message_id, record), seen=seen)
        self._boxes[address][message_id] = (packed.pack(updated), raw)
        return updated

    async def delete(self, address: str, message_id: str) -> None:
        self._stored(address, message_id)
        self._remove(address, message_id)

    async def delete_inbox(self, address: str) -> int:
        self._inboxes.pop(address, None)
        box = self._boxes.pop(address, {})
        for _record, raw in box.values():
            self._bytes -= len(raw)
        self._count -= len(box)
        self._stale += len(box)
        self._compact()
        return len(box)

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
        for address in [a for a, inbox in self._inboxes.items() if inbox.expires_at <= now]:
            purged.extend((address, message_id) for message_id in self._boxes.get(address, {}))
            await self.delete_inbox(address)
            purged.append((address, ""))
        return purged

    def _stored(self, address: str, message_id: str) -> _Stored:
        try:
            return self._boxes[address][message_id]
        except KeyError:
            raise NotFound(message_id) from None

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
        _record, raw = box.pop(message_id)
        if not box:
            del self._boxes[address]
        self._bytes -= len(raw)
        self._count -= 1

    def _compact(self) -> None:
        # Keep the age index proportional to what is stored: rebuild it once most of
        # it points at messages that were deleted before their time.
        if self._stale > 1024 and self._stale * 2 > len(self._arrivals):
            self._arrivals = deque(
                entry for entry in self._arrivals if entry[1] in self._boxes.get(entry[0], {}))
            self._stale = 0
