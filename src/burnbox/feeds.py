"""What an inbox's watchers are told, without HTTP: catch-up, then live events, until the
inbox ends. The long-poll, SSE and WebSocket routes (and any other API surface) use it.

Every feed subscribes before it looks at the store, so nothing published in between is
missed; message events carry the message id as their event id, and ids follow commit order
within an inbox, so `Last-Event-ID` catch-up is exact: everything newer.

A feed ends when its inbox does: at a burn (the hub's "expired" event), and at its expiry
by a timer of its own (the reaper's event may come a minute later), after which the
inbox is read again in case it was extended. Nothing of an inbox is sent after its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from burnbox.hub import Event, Hub, SubscriberDropped, Subscription
from burnbox.ids import Clock
from burnbox.inboxes import InboxService
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import NotFound

HEARTBEAT = 15.0  # seconds between heartbeats that keep proxies from closing a stream


class InboxEnded(Exception):
    """The inbox was burned or expired while it was watched (an API answers 404)."""


def _ends_inbox(event: Event) -> bool:
    return event.kind == "expired" and not event.message_id


class Feeds:
    def __init__(self, inboxes: InboxService, hub: Hub, clock: Clock) -> None:
        self._inboxes = inboxes
        self._hub = hub
        self._clock = clock

    async def wait_newer(
        self, inbox: Inbox, after: str | None, wait: float, limit: int
    ) -> tuple[list[MessageSummary], bool]:
        """Long-poll: up to `limit` messages right after `after` (oldest first; with no
        `after`, the newest, newest first) and whether more follow; waits up to `wait`
        seconds for the first. Raises InboxEnded if the inbox ends meanwhile."""
        async with self._hub.subscribe(inbox.address) as subscription:
            found = await self._read(inbox, after, limit)
            if found[0] or not wait:
                return found
            try:
                async with asyncio.timeout(wait):
                    await self._next_message(inbox, subscription)
            except (TimeoutError, SubscriberDropped):
                pass
            return await self._read(await self.current(inbox), after, limit)

    async def _read(
        self, inbox: Inbox, after: str | None, limit: int
    ) -> tuple[list[MessageSummary], bool]:
        if after is not None:
            return await self._inboxes.newer(inbox, after, limit)
        page = await self._inboxes.messages(inbox, limit=limit + 1)
        return page[:limit], len(page) > limit

    async def _next_message(self, inbox: Inbox, subscription: Subscription) -> None:
        while True:
            left = self.seconds_left(inbox)
            try:
                async with asyncio.timeout(left):
                    event = await subscription.next()
            except TimeoutError:
                inbox = await self.current(inbox)  # its end came, or it was extended
                continue
            if _ends_inbox(event):
                raise InboxEnded(inbox.address)
            if event.kind == "message":
                return

    async def missed(self, inbox: Inbox, after: str) -> list[MessageSummary]:
        """Every message after `after`, oldest first (a reconnecting client's catch-up)."""
        return (await self._inboxes.newer(inbox, after, None))[0]

    async def current(self, inbox: Inbox) -> Inbox:
        """The inbox as it is now (extended, maybe); InboxEnded if it has ended."""
        try:
            return await self._inboxes.still_open(inbox)
        except NotFound:
            raise InboxEnded(inbox.address) from None

    def seconds_left(self, inbox: Inbox) -> float:
        return max((inbox.expires_at - self._clock()).total_seconds(), 0.0)

    def arrivals(self, address: str) -> AbstractAsyncContextManager[Subscription]:
        """Every event of an address from now on, raw: for a view that is no inbox (sink
        mode's), which has no lifetime to end a feed."""
        return self._hub.subscribe(address)

    @asynccontextmanager
    async def feed(self, inbox: Inbox) -> AsyncIterator[Feed]:
        """Subscribed from the moment this is entered: tell the client only then."""
        async with self._hub.subscribe(inbox.address) as subscription:
            yield Feed(self, inbox, subscription)


class Feed:
    """One client's view of an inbox's events."""

    def __init__(self, feeds: Feeds, inbox: Inbox, subscription: Subscription) -> None:
        self._feeds = feeds
        self._inbox = inbox
        self._subscription = subscription
        self.inbox_gone = False  # set when the feed ended because the inbox ended

    async def events(self, last_event_id: str | None) -> AsyncIterator[Event | None]:
        """Missed messages after `last_event_id`, then live events until the inbox ends
        (the last event is then its "expired"); None is a heartbeat (nothing happened for
        HEARTBEAT seconds). Ends early if this subscriber fell behind: its client
        reconnects and catches up."""
        last = last_event_id or ""
        if last_event_id:
            for summary in await self._feeds.missed(self._inbox, last_event_id):
                last = summary.id
                yield Event("message", self._inbox.address, summary.id, summary)
        while True:
            try:
                event = await self._next()
            except SubscriberDropped:
                return  # it fell behind: its client reconnects and catches up
            if event is not None and event.kind == "message" and event.message_id <= last:
                continue  # already sent during catch-up
            yield event
            if event is not None and _ends_inbox(event):
                self.inbox_gone = True
                return

    async def _next(self) -> Event | None:
        """The next event, None after HEARTBEAT quiet seconds, or the inbox's end."""
        left = self._feeds.seconds_left(self._inbox)
        try:
            async with asyncio.timeout(min(HEARTBEAT, left)):
                return await self._subscription.next()
        except TimeoutError:
            if left > HEARTBEAT:
                return None
        try:
            self._inbox = await self._feeds.current(self._inbox)
        except InboxEnded:
            return Event("expired", self._inbox.address, "")
        return None
