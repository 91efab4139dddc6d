"""MailHog's API (v1 and v2) over sink mode's shared view, beside burnbox's own /api. Like
MailHog's, these routes carry no token: they exist only in sink mode, which needs
BURNBOX_ACCESS=public. Writes from another site's page are refused (they would otherwise
ride on a visitor's network position)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from burnbox.addressing import AddressError, parse_address
from burnbox.hub import SubscriberDropped, Subscription
from burnbox.model import MessageSummary
from burnbox.sink import SINK, SINK_ADDRESS, Envelope
from burnbox.storage.base import NotFound
from burnbox.web import downloads
from burnbox.web.auth import cross_site
from burnbox.web.deps import Services, client_ip
from burnbox.web.downloads import PRIVATE
from burnbox.web.errors import ApiError, error_responses
from burnbox.web.limits import TooManyStreams
from burnbox.web.live import RECONNECT_MS, WS_CATCH_UP, HeldStream, serve_sink_feed
from burnbox.web.mailhog import shapes
from burnbox.web.services import SinkAccess, WebServices

router = APIRouter(prefix="/api", tags=["MailHog"])  # included in sink mode only
V1_LIST = 1000  # messages v1's list returns at most, as MailHog's
HEARTBEAT = 15.0
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
NOT_FOUND = ApiError(404, "not_found", "No such message.")


def sink_of(services: Services) -> SinkAccess:
    if services.sink is None:  # not in sink mode: as if these routes did not exist
        raise ApiError(404, "not_found", "The MailHog API is served in sink mode only.")
    return services.sink


def paging_of(
    start: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[str, Query(max_length=40)] = "",
) -> shapes.Paging:
    """MailHog's one paging rule for every v2 list (read as text: MailHog never refuses a
    value, it falls back)."""
    return shapes.paging(start, limit)


def same_site(request: Request, services: Services) -> None:
    if cross_site(request.headers, request.url.scheme, services.allowed_origins):
        raise ApiError(403, "cross_origin", "Not from another site's page.")


Sink = Annotated[SinkAccess, Depends(sink_of)]
SameSite = Depends(same_site)
Paging = Annotated[shapes.Paging, Depends(paging_of)]


class Release(BaseModel):
    host: str = Field(max_length=255)
    port: str | int
    email: str = Field(max_length=320)


# -- v2 ---------------------------------------------------------------------------------


@router.get(
    "/v2/messages",
    summary="MailHog v2: a page of messages, newest first. As MailHog: a limit over 250 is "
    "250; a start or limit that is not a positive number is 0 and 50.",
)
async def messages_v2(services: Services, paging: Paging) -> JSONResponse:
    total = (await services.inboxes.usage(SINK))[0]
    start = min(paging.start, total)
    found = (await services.inboxes.messages(SINK, limit=start + paging.limit))[start:]
    return await _page(services, found, total, paging.start)


@router.get(
    "/v2/search",
    summary="MailHog v2: messages from, to or containing a text (paged as /v2/messages); 400 "
    "for another kind or an empty query, as MailHog.",
    responses={400: {"description": "No such kind, or no query."}},
)
async def search(
    services: Services,
    paging: Paging,
    kind: Annotated[str, Query(max_length=20)] = "",
    query: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    if kind not in shapes.SEARCH_KINDS or not query:
        return Response(status_code=400)  # MailHog answers these with an empty 400
    matching: list[MessageSummary] = []
    for summary in await services.inboxes.messages(SINK, limit=V1_LIST * 100):
        _, raw = await _load(services, summary.id)
        if shapes.matches(summary, raw, kind, query):
            matching.append(summary)
    start = min(paging.start, len(matching))
    found = matching[start : start + paging.limit]
    return await _page(services, found, len(matching), paging.start)


@router.get("/v2/jim", summary="MailHog's chaos monkey: never enabled here (404, as MailHog).")
async def jim(_: Sink) -> Response:
    raise ApiError(404, "not_found", "Jim is not enabled.")


@router.delete("/v2/jim", summary="Disable Jim: it is never enabled here (404).")
async def jim_off(_: Sink) -> Response:
    raise ApiError(404, "not_found", "Jim is not enabled.")


@router.post(
    "/v2/jim",
    summary="Enable Jim: not supported (burnbox injects no faults into real sessions).",
    responses=error_responses(501),
)
async def jim_on(_: Sink) -> Response:
    raise ApiError(501, "not_supported", "Jim is not supported by burnbox.")


# -- v1 ---------------------------------------------------------------------------------


@router.get("/v1/messages", summary="MailHog v1: the newest messages (up to 1000).")
async def messages_v1(services: Services) -> JSONResponse:
    found = await services.inboxes.messages(SINK, limit=V1_LIST)
    return JSONResponse([await _shape(services, summary) for summary in found], headers=PRIVATE)


@router.get("/v1/messages/{message_id}", summary="MailHog v1: one message.")
async def message_v1(message_id: IdPath, services: Services) -> JSONResponse:
    summary, raw = await _load(services, message_id)
    shaped = await services.parse_pool.run(len(raw), shapes.message, summary, raw)
    return JSONResponse(shaped, headers=PRIVATE)


@router.delete("/v1/messages", summary="MailHog v1: delete every message.", dependencies=[SameSite])
async def delete_all(services: Services) -> Response:
    await services.inboxes.clear(SINK)
    return Response(status_code=200)


@router.delete(
    "/v1/messages/{message_id}", summary="MailHog v1: delete one.", dependencies=[SameSite]
)
async def delete_one(message_id: IdPath, services: Services) -> Response:
    try:
        await services.inboxes.delete_message(SINK, message_id)
    except NotFound:
        raise NOT_FOUND from None
    return Response(status_code=200)


@router.get(
    "/v1/messages/{message_id}/download",
    response_class=Response,
    summary="MailHog v1: the message as received.",
    responses={200: {"content": {"message/rfc822": {}}}},
)
async def download(message_id: IdPath, services: Services) -> Response:
    _, raw = await _load(services, message_id)
    return downloads.eml(raw, message_id)


@router.get(
    "/v1/messages/{message_id}/mime/part/{number}/download",
    response_class=Response,
    summary="MailHog v1: one MIME part, decoded.",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def part(
    message_id: IdPath,
    number: Annotated[int, Path(ge=0, le=10_000)],
    services: Services,
) -> Response:
    _, raw = await _load(services, message_id)
    found = await services.parse_pool.run(len(raw), shapes.part_bytes, raw, number)
    if found is None:
        raise NOT_FOUND
    _, data = found
    # Served as bytes to download, never rendered here: the part is the sender's content.
    return downloads.download(
        data, "application/octet-stream", f"{message_id}-part-{number}", "part"
    )


@router.post(
    "/v1/messages/{message_id}/release",
    summary="Release a message to an SMTP server: only this node's own (a local delivery); "
    "burnbox never relays anywhere else. The body is JSON `{host, port, email}` (MailHog's "
    "clients send it without a content type).",
    dependencies=[SameSite],
    responses=error_responses(400, 404, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Release.model_json_schema()}},
        }
    },
)
async def release(message_id: IdPath, request: Request, services: Services, sink: Sink) -> Response:
    try:
        target = Release.model_validate_json(await request.body())
    except ValidationError:
        raise ApiError(422, "invalid_request", "Expected JSON {host, port, email}.") from None
    if not _is_own_smtp(target, sink):
        raise ApiError(400, "not_supported", "burnbox never relays: release goes only to itself.")
    try:
        recipient = parse_address(target.email.strip())
    except AddressError as error:
        raise ApiError(422, "invalid_address", f"Not an address: {error.reason}.") from None
    if not services.domains.accepts(recipient.domain):
        raise ApiError(422, "invalid_address", "That domain is reserved.")
    summary, raw = await _load(services, message_id)
    await sink.deliver([str(recipient)], raw, Envelope(summary.sender, (str(recipient),)))
    return Response(status_code=200)


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    summary="MailHog v1: Server-Sent Events, one per new message (its MailHog object).",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(request: Request, services: Services) -> StreamingResponse:
    try:
        release_stream = services.streams.take(client_ip(request))
    except TooManyStreams:
        raise ApiError(
            429, "rate_limited", "Too many push streams.", {"Retry-After": "5"}
        ) from None

    async def stream() -> AsyncIterator[str]:
        async with services.feeds.arrivals(SINK_ADDRESS) as subscription:
            yield f"retry: {RECONNECT_MS}\n\n"
            while True:
                try:
                    async with asyncio.timeout(HEARTBEAT):
                        event = await subscription.next()
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if event.kind != "message" or event.summary is None:
                    continue
                try:
                    shaped = await _shape(services, event.summary)
                except ApiError:
                    continue  # deleted or evicted meanwhile
                yield f"event: message\ndata: {json.dumps(shaped)}\n\n"

    return HeldStream(
        stream(),
        release_stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@router.websocket("/v2/websocket")
async def websocket(socket: WebSocket) -> None:
    """MailHog v2's live feed: each new message as its MailHog object, one text frame each."""
    await serve_sink_feed(socket, _push_arrivals)


async def _push_arrivals(
    socket: WebSocket, services: WebServices, subscription: Subscription
) -> None:
    while True:
        try:
            event = await subscription.next()
        except SubscriberDropped:
            await socket.close(code=WS_CATCH_UP)  # it fell behind: reconnect and list again
            return
        if event.kind == "message" and event.summary is not None:
            with contextlib.suppress(ApiError):  # deleted or evicted meanwhile
                await socket.send_text(json.dumps(await _shape(services, event.summary)))


# -- helpers ------------------------------------------------------------------------------


def _is_own_smtp(target: Release, sink: SinkAccess) -> bool:
    """Released to this node's SMTP side: a loopback name or this host's name, and the
    port it listens on. Anything else would be relaying."""
    host = target.host.strip().lower().strip("[]")
    own = host in {"localhost", "127.0.0.1", "::1", sink.hostname.lower()} or host.startswith(
        "127."
    )
    return own and str(target.port).strip() == str(sink.smtp_port())


async def _load(services: WebServices, message_id: str) -> tuple[MessageSummary, bytes]:
    try:
        return await services.inboxes.message(SINK, message_id)
    except NotFound:
        raise NOT_FOUND from None


async def _shape(services: WebServices, summary: MessageSummary) -> shapes.Json:
    _, raw = await _load(services, summary.id)
    result: shapes.Json = await services.parse_pool.run(len(raw), shapes.message, summary, raw)
    return result


async def _page(
    services: WebServices, found: list[MessageSummary], total: int, start: int
) -> JSONResponse:
    items = [await _shape(services, summary) for summary in found]
    body = {"total": total, "count": len(items), "start": start, "items": items}
    return JSONResponse(body, headers=PRIVATE)
