"""Mailpit's REST API v1 over sink mode's shared view (its swagger.json and the behaviour
its clients rely on, ../shared/conformance/mailpit/README.md). Served in sink mode only,
which needs BURNBOX_ACCESS=public; writes from another site's page are refused, as on
MailHog's paths.

Mailpit answers successes with 200 (JSON, or text/plain `ok`) and errors with a one-line
text/plain body; its clients treat anything else as failure, so these paths answer as it
does rather than with burnbox's JSON errors.

`owned` holds the two routes MailHog's API also has (GET and DELETE /api/v1/messages):
the app includes it before MailHog's router when BURNBOX_SINK_API=mailpit.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from burnbox import mime
from burnbox.model import MessageSummary
from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web import downloads
from burnbox.web.auth import cross_site
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import shapes
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])  # included in sink mode only
owned = APIRouter(tags=["Mailpit"])  # the paths MailHog's API has too
WHOLE = 100_000  # "every message": the sink holds no more (its per-inbox cap bounds it)
MAX_BODY = 1024 * 1024  # a PUT or DELETE body: IDs and flags
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]


class Failed(Exception):
    """Answered as Mailpit answers: the status and one line of text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def answer(failure: Failed) -> PlainTextResponse:
    return PlainTextResponse(failure.text, status_code=failure.status, headers=PRIVATE)


def ok() -> PlainTextResponse:
    return PlainTextResponse("ok", headers=PRIVATE)


def same_site(request: Request, services: Services) -> None:
    if cross_site(request.headers, request.url.scheme, services.allowed_origins):
        raise Failed(403, "Forbidden: not from another site's page")


SameSite = Depends(same_site)


# -- the list and what acts on all of it -----------------------------------------------------


@owned.get("/api/v1/messages", summary="Mailpit: a page of message summaries, newest first.")
async def list_messages(
    services: Services,
    start: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[str, Query(max_length=40)] = "",
) -> JSONResponse:
    paging = shapes.paging(start, limit)
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    page = every if paging.limit == 0 else every[paging.start : paging.start + paging.limit]
    unread = sum(1 for summary in every if not summary.seen)
    items = [await _summary(services, summary) for summary in page]
    return JSONResponse(
        {
            "total": len(every),
            "unread": unread,
            "count": len(items),
            "messages_count": len(every),
            "messages_unread": unread,
            "start": paging.start,
            "tags": [],
            "messages": items,
        },
        headers=PRIVATE,
    )


@owned.delete(
    "/api/v1/messages",
    summary="Mailpit: delete the messages whose `IDs` are given, or every message.",
    dependencies=[SameSite],
)
async def delete_messages(request: Request, services: Services) -> Response:
    ids = _strings(await _body(request), "ids")  # no body, or no IDs: all, as Mailpit
    if not ids:
        await services.inboxes.clear(SINK)
        return ok()
    for message_id in ids:
        try:
            await services.inboxes.delete_message(SINK, message_id)
        except NotFound:
            continue  # Mailpit deletes what it finds
    return ok()


@router.put(
    "/api/v1/messages",
    summary="Mailpit: mark messages read or unread: those whose `IDs` are given, or all.",
    dependencies=[SameSite],
)
async def set_read(request: Request, services: Services) -> Response:
    body = await _body(request)
    ids, read = _strings(body, "ids"), body.get("read", False)
    if body.get("search"):
        raise Failed(400, "search is not supported here yet: give IDs")
    if not isinstance(read, bool):
        raise Failed(400, "Read must be true or false")
    targets = ids or [summary.id for summary in await services.inboxes.messages(SINK, limit=WHOLE)]
    for message_id in targets:
        try:
            await services.inboxes.mark_seen(SINK, message_id, read)
        except NotFound:
            continue
    return ok()


# -- one message ----------------------------------------------------------------------------


@router.get("/api/v1/message/{message_id}", summary="Mailpit: one message; marks it read.")
async def message(message_id: IdPath, services: Services) -> JSONResponse:
    summary, raw = await load(services, message_id)
    if not summary.seen:
        await services.inboxes.mark_seen(SINK, summary.id, True)
    shaped = await services.parse_pool.run(len(raw), shapes.message, summary, raw)
    return JSONResponse(shaped, headers=PRIVATE)


@router.get("/api/v1/message/{message_id}/headers", summary="Mailpit: every header.")
async def headers(message_id: IdPath, services: Services) -> JSONResponse:
    _, raw = await load(services, message_id)
    shaped = await services.parse_pool.run(len(raw), shapes.header_map, raw)
    return JSONResponse(shaped, headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/raw",
    summary="Mailpit: the message as received, as text.",
    response_class=PlainTextResponse,
)
async def source(message_id: IdPath, services: Services) -> Response:
    _, raw = await load(services, message_id)
    # text/plain as Mailpit; nosniff (SecurityHeaders) keeps a browser from rendering it.
    return Response(raw, media_type="text/plain; charset=utf-8", headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/part/{part_id}",
    summary="Mailpit: one attachment or inline part, decoded (served as a download).",
)
async def attachment(
    message_id: IdPath,
    part_id: Annotated[str, Path(max_length=12, pattern=r"^[0-9]+$")],
    services: Services,
) -> Response:
    _, raw = await load(services, message_id)
    parts = await services.parse_pool.run(len(raw), mime.attachment_payloads, raw)
    for item, data in parts:
        if shapes.part_id(item) == part_id:
            return downloads.download(data, item.content_type, item.filename, "part")
    raise Failed(404, "part not found")


# -- helpers --------------------------------------------------------------------------------


async def load(services: WebServices, message_id: str) -> tuple[MessageSummary, bytes]:
    """The message; `latest` is the newest, as Mailpit."""
    if message_id == "latest":
        newest = await services.inboxes.messages(SINK, limit=1)
        if not newest:
            raise Failed(404, "message not found")
        message_id = newest[0].id
    try:
        return await services.inboxes.message(SINK, message_id)
    except NotFound:
        raise Failed(404, "message not found") from None


async def _summary(services: WebServices, summary: MessageSummary) -> shapes.Json:
    _, raw = await load(services, summary.id)
    shaped: shapes.Json = await services.parse_pool.run(len(raw), shapes.summary, summary, raw)
    return shaped


async def _body(request: Request) -> dict[str, Any]:
    """The JSON body with its keys lower-cased (Go's decoder matches them ignoring case);
    {} for none or for anything that is not a JSON object, as Mailpit reads it."""
    data = await request.body()
    if len(data) > MAX_BODY:
        raise Failed(400, "request body too large")
    try:
        found = json.loads(data) if data.strip() else {}
    except ValueError:
        return {}
    return (
        {str(key).lower(): value for key, value in found.items()} if isinstance(found, dict) else {}
    )


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
