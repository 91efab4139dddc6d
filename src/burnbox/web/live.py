"""Instant push: long-poll, Server-Sent Events and WebSocket, all fed by the hub.

Every stream subscribes before it looks at the store, so nothing published in
between is missed; message events carry the message id as their event id, and
ids sort by arrival, so `Last-Event-ID` catch-up is exact: everything newer.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases,
# which are local to the router builder, as real objects.

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Header, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from burnbox.hub import Event, Hub, SubscriberDropped, Subscription
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import NotFound, Store
from burnbox.web.auth import presented_token, readable_inbox
from burnbox.web.errors import error_responses
from burnbox.web.wire import Summary

if TYPE_CHECKING:
    from burnbox.web.services import WebServices

HEARTBEAT = 15.0  # seconds between SSE comments that keep proxies from closing the stream
RECONNECT_MS = 2000  # what SSE clients wait before reconnecting
CATCH_UP_PAGE = 100
WS_UNREADABLE = 4404  # close code for an inbox the caller may not read (or that is gone)
WS_CATCH_UP = 1013  # "try again later": the stream fell behind; reconnect with ?after=


class Live:
    def __init__(self, store: Store, hub: Hub) -> None:
        self._store = store
        self._hub = hub

    async def newer(self, address: str, after: str) -> list[MessageSummary]:
        """Every message newer than `after`, oldest first."""
        found: list[MessageSummary] = []
        before: str | None = None
        while True:
            page = await self._store.summaries(address, before=before, limit=CATCH_UP_PAGE)
            fresh = [summary for summary in page if summary.id > after]
            found.extend(fresh)
            if len(fresh) < len(page) or len(page) < CATCH_UP_PAGE:
                return list(reversed(found))
            before = page[-1].id

    async def wait_newer(self, address: str, after: str | None, wait: float,
                         limit: int) -> list[MessageSummary]:
        """Messages newer than `after` (newest first); waits up to `wait` s for one."""
        async with self._hub.subscribe(address) as subscription:
            found = await self._newest(address, after, limit)
            if found or not wait:
                return found
            try:
                async with asyncio.timeout(wait):
                    while (await subscription.next()).kind != "message":
                        pass
            except (TimeoutError, SubscriberDropped):
                pass
            return await self._newest(address, after, limit)

    async def _newest(self, address: str, after: str | None, limit: int) -> list[MessageSummary]:
        page = await self._store.summaries(address, limit=limit)
        return [summary for summary in page if after is None or summary.id > after]

    def deleted(self, address: str, message_id: str) -> None:
        self._hub.publish(Event("deleted", address, message_id))

    def seen(self, summary: MessageSummary) -> None:
        self._hub.publish(Event("seen", summary.address, summary.id, summary))

    @asynccontextmanager
    async def feed(self, address: str) -> AsyncIterator["Feed"]:
        """Subscribed from the moment this is entered: tell the client only then."""
        async with self._hub.subscribe(address) as subscription:
            yield Feed(self, address, subscription)


class Feed:
    """One client's view of an inbox's events."""

    def __init__(self, live: Live, address: str, subscription: Subscription) -> None:
        self._live = live
        self._address = address
        self._subscription = subscription
        self.inbox_gone = False  # set when the stream ended because the inbox went

    async def events(self, last_event_id: str | None) -> AsyncIterator[Event | None]:
        """Missed messages after `last_event_id`, then live events until the inbox goes;
        None is a heartbeat (nothing happened for HEARTBEAT seconds)."""
        last = last_event_id or ""
        if last_event_id:
            for summary in await self._live.newer(self._address, last_event_id):
                last = summary.id
                yield Event("message", self._address, summary.id, summary)
        async for event in _follow(self._subscription):
            if event is not None and event.kind == "message" and event.message_id <= last:
                continue  # already sent during catch-up
            yield event
            if event is not None and event.kind == "expired" and not event.message_id:
                self.inbox_gone = True
                return


async def _follow(subscription: Subscription) -> AsyncIterator[Event | None]:
    """Events as they come, and None when HEARTBEAT seconds pass without one."""
    while True:
        try:
            async with asyncio.timeout(HEARTBEAT):
                event = await subscription.next()
        except TimeoutError:
            yield None
            continue
        except SubscriberDropped:
            return  # the client fell behind: it reconnects and catches up
        yield event


async def _until_closed(socket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    try:
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        return


def payload(event: Event) -> dict[str, object]:
    if event.summary is not None:
        return Summary.of(event.summary).model_dump(mode="json", by_alias=True)
    return {"id": event.message_id or None}


def sse_frame(event: Event | None) -> str:
    if event is None:
        return ": heartbeat\n\n"
    event_id = f"id: {event.message_id}\n" if event.kind == "message" else ""
    return f"{event_id}event: {event.kind}\ndata: {json.dumps(payload(event))}\n\n"


def build_live_router(services: "WebServices") -> APIRouter:
    router = APIRouter(prefix="/api", tags=["push"])
    Readable = Annotated[Inbox, Depends(readable_inbox(services))]  # noqa: N806 - a type alias

    @router.get("/inboxes/{address}/events", response_class=StreamingResponse,
                summary="Server-Sent Events: message, deleted, seen, expired; heartbeats.",
                responses={200: {"content": {"text/event-stream": {}}},
                           **error_responses(404, 422)})
    async def events(inbox: Readable,
                     last_event_id: Annotated[str | None, Header(max_length=64)] = None,
                     ) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            async with services.live.feed(inbox.address) as feed:
                yield f"retry: {RECONNECT_MS}\n\n"  # first bytes: the client is subscribed
                async for event in feed.events(last_event_id):
                    yield sse_frame(event)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={
            "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})

    @router.websocket("/inboxes/{address}/ws")
    async def websocket(socket: WebSocket, address: str) -> None:
        if not services.origin_allowed(socket.headers.get("origin"), socket.headers.get("host")):
            await socket.close(code=1008)  # cross-site WebSocket hijacking
            return
        token, _ = presented_token(socket.headers, socket.cookies, address)
        try:
            inbox = await services.inboxes.open(address[:320], token)
        except NotFound:
            await socket.close(code=WS_UNREADABLE)
            return
        after = socket.query_params.get("after", "")[:64] or None
        async with services.live.feed(inbox.address) as feed:
            await socket.accept()  # subscribed first: nothing after the accept is missed

            async def pump() -> None:
                async for event in feed.events(after):
                    if event is not None:  # uvicorn pings the socket itself
                        await socket.send_json({"event": event.kind, "data": payload(event)})
                # The inbox went, or this stream fell behind (or missed other nodes' events)
                # and must reconnect to catch up.
                await socket.close(code=WS_UNREADABLE if feed.inbox_gone else WS_CATCH_UP)

            # An idle feed sends nothing, so only reading tells us the client has left.
            tasks = {asyncio.ensure_future(pump()), asyncio.ensure_future(_until_closed(socket))}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    return router
