"""Push over HTTP: Server-Sent Events and WebSocket, both from feeds.Feeds (long-poll is the
`wait` of GET …/messages, in api.py)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from burnbox.feeds import Feed
from burnbox.hub import Event, Subscription
from burnbox.sink import SINK_ADDRESS
from burnbox.web.auth import cross_site, presented_token
from burnbox.web.deps import Readable, Services, client_ip, open_inbox, services_of
from burnbox.web.errors import ApiError, error_responses
from burnbox.web.limits import TooManyStreams
from burnbox.web.services import WebServices
from burnbox.web.wire import Summary

router = APIRouter(prefix="/api", tags=["push"])
RECONNECT_MS = 2000  # what SSE clients wait before reconnecting
WS_UNREADABLE = 4404  # close code: an inbox the caller may not read (or that has ended)
WS_TOO_MANY = 4429  # close code: too many push streams from this client, or in all
WS_CROSS_SITE = 1008  # policy violation: a page of another site (cross-site hijacking)
WS_CATCH_UP = 1013  # "try again later": the stream fell behind; reconnect with ?after=


class HeldStream(StreamingResponse):
    """A stream that gives its place back however it ends (done, client gone, shutdown)."""

    def __init__(
        self, content: AsyncIterator[str], release: Callable[[], None], **options: object
    ) -> None:
        super().__init__(content, **options)  # type: ignore[arg-type]
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def payload(event: Event) -> dict[str, object]:
    if event.summary is not None:
        return Summary.of(event.summary).model_dump(mode="json", by_alias=True)
    return {"id": event.message_id or None}


def sse_frame(event: Event | None) -> str:
    if event is None:
        return ": heartbeat\n\n"
    event_id = f"id: {event.message_id}\n" if event.kind == "message" else ""
    return f"{event_id}event: {event.kind}\ndata: {json.dumps(payload(event))}\n\n"


@router.get(
    "/inboxes/{address}/events",
    response_class=StreamingResponse,
    summary="Server-Sent Events: message, deleted, seen, expired; heartbeats.",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404, 422, 429)},
)
async def events(
    request: Request,
    inbox: Readable,
    services: Services,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    try:
        release = services.streams.take(client_ip(request))
    except TooManyStreams:
        raise ApiError(
            429, "rate_limited", "Too many push streams from your address.", {"Retry-After": "5"}
        ) from None

    async def stream() -> AsyncIterator[str]:
        async with services.feeds.feed(inbox) as feed:
            yield f"retry: {RECONNECT_MS}\n\n"  # first bytes: the client is subscribed
            async for event in feed.events(last_event_id):
                yield sse_frame(event)

    return HeldStream(
        stream(),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@router.websocket("/inboxes/{address}/ws")
async def websocket(socket: WebSocket, address: str) -> None:
    services = services_of(socket)
    if cross_site(socket.headers, socket.url.scheme, services.allowed_origins):
        await socket.close(code=WS_CROSS_SITE)
        return
    token, _ = presented_token(socket.headers, socket.cookies, address)
    try:
        inbox = await open_inbox(socket, services, address, token)
        release = services.streams.take(client_ip(socket))
    except (ApiError, TooManyStreams) as refused:
        if isinstance(refused, ApiError) and refused.status != 429:
            await socket.close(code=WS_UNREADABLE)  # refused at the handshake, as if absent
        else:  # accepted only to say why: a client can wait and try again
            await socket.accept()
            await socket.close(code=WS_TOO_MANY, reason="too many; try again later")
        return
    try:
        async with services.feeds.feed(inbox) as feed:
            await socket.accept()  # subscribed first: nothing after the accept is missed
            after = socket.query_params.get("after", "")[:64] or None
            await _serve(socket, feed, after)
    finally:
        release()


async def _serve(socket: WebSocket, feed: Feed, after: str | None) -> None:
    async def pump() -> None:
        async for event in feed.events(after):
            if event is not None:  # uvicorn pings the socket itself
                await socket.send_json({"event": event.kind, "data": payload(event)})
        # The inbox ended, or this stream fell behind (or missed other nodes' events) and
        # must reconnect to catch up.
        await socket.close(code=WS_UNREADABLE if feed.inbox_gone else WS_CATCH_UP)

    await pump_until_closed(socket, pump())


async def pump_until_closed(socket: WebSocket, pump: Coroutine[Any, Any, None]) -> None:
    """Run `pump` (which sends) until it ends or the client leaves: an idle stream sends
    nothing, so only reading tells us the client has gone."""
    tasks = {asyncio.ensure_future(pump), asyncio.ensure_future(_until_closed(socket))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


SinkPump = Callable[[WebSocket, WebServices, Subscription], Coroutine[Any, Any, None]]


async def serve_sink_feed(socket: WebSocket, pump: SinkPump) -> None:
    """A live feed of sink mode's shared view (Mailpit's and MailHog's): subscribed before
    the socket is taken, so nothing is missed; `pump` sends until the client leaves."""
    services = services_of(socket)
    if services.sink is None:
        await socket.close(code=WS_UNREADABLE)
        return
    async with services.feeds.arrivals(SINK_ADDRESS) as subscription:
        release = await take_socket(socket, services)
        if release is None:
            return
        try:
            await pump_until_closed(socket, pump(socket, services, subscription))
        finally:
            release()


async def take_socket(socket: WebSocket, services: WebServices) -> Callable[[], None] | None:
    """A push WebSocket for a view that needs no token (sink mode's): closed at the
    handshake from another site's page, accepted only to be closed with 4429 past the
    stream limits (None, in both cases); otherwise accepted, and its place's release."""
    if cross_site(socket.headers, socket.url.scheme, services.allowed_origins):
        await socket.close(code=WS_CROSS_SITE)
        return None
    try:
        release = services.streams.take(client_ip(socket))
    except TooManyStreams:
        await socket.accept()
        await socket.close(code=WS_TOO_MANY, reason="too many; try again later")
        return None
    await socket.accept()
    return release


async def _until_closed(socket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    try:
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        return
