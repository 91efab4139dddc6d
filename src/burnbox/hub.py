"""In-process pub/sub of inbox events.

`publish` never awaits and never blocks: each subscriber has a bounded queue,
and a subscriber whose queue is full is dropped (it reconnects and catches up
from its last event id). Nothing is kept for an inbox nobody watches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from burnbox.model import MessageSummary

# "seen" and "updated" carry a message's summary again: its seen flag, or its sender checks'
# results (recorded after it was stored).
EventKind = Literal["message", "deleted", "expired", "seen", "updated"]
SUBSCRIBER_QUEUE = 256  # events a subscriber may fall behind before it is dropped


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    address: str
    message_id: str  # "" for an event about the whole inbox
    summary: MessageSummary | None = None


_WAKE = Event("expired", "", "")  # queued only to wake a dropped reader; never handed out


class SubscriberDropped(Exception):
    """The subscriber fell too far behind; it should reconnect and catch up."""


class Subscription:
    def __init__(self, address: str, queue_size: int) -> None:
        self.address = address
        self.dropped = False
        self._queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)

    def offer(self, event: Event) -> bool:
        """Queue an event; False (and dropped) when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            return False
        return True

    def drop(self) -> None:
        """End the subscription: next() raises SubscriberDropped, at once if it waits."""
        self.dropped = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the reader anyway
            self._queue.put_nowait(_WAKE)

    async def next(self) -> Event:
        if self.dropped:
            raise SubscriberDropped(self.address)
        event = await self._queue.get()
        if self.dropped:
            raise SubscriberDropped(self.address)
        return event


class Hub:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}
        # Set by a cross-node relay: called (without waiting) for every event published here.
        self.outbox: Callable[[Event], None] | None = None
        # Told the number of subscriptions whenever it changes (the push_subscribers gauge,
        # which must be set, not computed at scrape time, to be summed over workers).
        self.on_count: Callable[[int], None] | None = None
        self._count = 0

    @property
    def subscriber_count(self) -> int:
        return self._count

    def watched(self, address: str) -> bool:
        return address in self._subscribers

    def publish(self, event: Event) -> None:
        """An event that happened on this node: to local subscribers and to other nodes."""
        self.receive(event)
        if self.outbox is not None:
            self.outbox(event)

    def receive(self, event: Event) -> None:
        """An event for local subscribers only (it came from another node)."""
        subscribers = self._subscribers.get(event.address)
        if not subscribers:
            return
        for subscription in list(subscribers):
            if not subscription.offer(event):
                self._remove(subscription)

    def drop_all(self) -> None:
        """End every subscription here: each client reconnects and catches up from the
        store (used when events from other nodes may have been missed)."""
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.drop()
                self._remove(subscription)

    @asynccontextmanager
    async def subscribe(self, address: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(address, self._queue_size)
        self._subscribers.setdefault(address, set()).add(subscription)
        self._counted(1)
        try:
            yield subscription
        finally:
            self._remove(subscription)

    def _remove(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.address)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.address]
            self._counted(-1)

    def _counted(self, change: int) -> None:
        self._count += change
        if self.on_count is not None:
            self.on_count(self._count)
