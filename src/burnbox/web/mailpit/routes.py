"""Mailpit's REST API v1 over sink mode's shared view (its swagger.json and the behaviour
its clients rely on, ../shared/conformance/mailpit/README.md). Served in sink mode only,
which needs BURNBOX_ACCESS=public; writes from another site's page are refused, as on
MailHog's paths.

`owned` holds the two routes MailHog's API also has (GET and DELETE /api/v1/messages):
the app includes it before MailHog's router when BURNBOX_SINK_API=mailpit.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from burnbox import mime
from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web import downloads
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import links, shapes, thumbs
from burnbox.web.mailpit.common import (
    WHOLE,
    Failed,
    IdPath,
    SameSite,
    body_of,
    load,
    ok,
    page_of,
    strings_of,
    username_of,
)
from burnbox.web.mailpit.queries import matching, pick, received_before
from burnbox.web.mailpit.tagging import tags_of
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])  # included in sink mode only
PartPath = Annotated[str, Path(max_length=12, pattern=r"^[0-9]+$")]
Latest = Annotated[str, Query(max_length=2000, description="with `latest`: the newest match")]
owned = APIRouter(tags=["Mailpit"])  # the paths MailHog's API has too


# -- the list and what acts on all of it -----------------------------------------------------


@owned.get("/api/v1/messages", summary="Mailpit: a page of message summaries, newest first.")
async def list_messages(
    services: Services,
    start: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    paging = shapes.paging(start, limit)
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    shown = received_before(every, before)  # the totals are the whole mailbox's
    page = shown if paging.limit == 0 else shown[paging.start : paging.start + paging.limit]
    return JSONResponse(await page_of(services, every, page, paging.start), headers=PRIVATE)


@owned.delete(
    "/api/v1/messages",
    summary="Mailpit: delete the messages whose `IDs` are given, or every message.",
    dependencies=[SameSite],
)
async def delete_messages(request: Request, services: Services) -> Response:
    ids = strings_of(await body_of(request), "ids")  # no body, or no IDs: all, as Mailpit
    if not ids:
        _deleted(services, await services.inboxes.clear(SINK))
        return ok()
    for message_id in ids:
        try:
            await services.inboxes.delete_message(SINK, message_id)
        except NotFound:
            continue  # Mailpit deletes what it finds
        _deleted(services, 1)
    return ok()


def _deleted(services: WebServices, count: int) -> None:
    if services.sink is not None:
        services.sink.stats.deleted += count


@router.put(
    "/api/v1/messages",
    summary="Mailpit: mark messages read or unread: those whose `IDs` are given, or all.",
    dependencies=[SameSite],
)
async def set_read(request: Request, services: Services) -> Response:
    body = await body_of(request)
    ids, read, query = strings_of(body, "ids"), body.get("read", False), body.get("search")
    if not isinstance(read, bool):
        raise Failed(400, "Read must be true or false")
    if ids and query:
        raise Failed(400, "You may not specify both IDs and a search")
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    if isinstance(query, str) and query:
        every = await matching(services, every, query, str(body.get("tz") or ""))
    targets = ids or [summary.id for summary in every]
    for message_id in targets:
        try:
            await services.inboxes.mark_seen(SINK, message_id, read)
        except NotFound:
            continue
    return ok()


# -- one message ----------------------------------------------------------------------------


@router.get("/api/v1/message/{message_id}", summary="Mailpit: one message; marks it read.")
async def message(message_id: IdPath, services: Services, query: Latest = "") -> JSONResponse:
    summary, raw = await pick(services, message_id, query)
    if not summary.seen:
        await services.inboxes.mark_seen(SINK, summary.id, True)
    username, tags = username_of(services, summary.id), tags_of(services, summary.id, raw)
    shaped = await services.parse_pool.run(len(raw), shapes.message, summary, raw, username, tags)
    return JSONResponse(shaped, headers=PRIVATE)


@router.get("/api/v1/message/{message_id}/headers", summary="Mailpit: every header.")
async def headers(message_id: IdPath, services: Services, query: Latest = "") -> JSONResponse:
    _, raw = await pick(services, message_id, query)
    shaped = await services.parse_pool.run(len(raw), shapes.header_map, raw)
    return JSONResponse(shaped, headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/raw",
    summary="Mailpit: the message as received, as text.",
    response_class=PlainTextResponse,
)
async def source(message_id: IdPath, services: Services, query: Latest = "") -> Response:
    _, raw = await pick(services, message_id, query)
    # text/plain as Mailpit; nosniff (SecurityHeaders) keeps a browser from rendering it.
    return Response(raw, media_type="text/plain; charset=utf-8", headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/part/{part_id}/thumb",
    summary="Mailpit: a 180x120 JPEG thumbnail of an image part (blank for other parts).",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 400: {"content": {"text/plain": {}}}},
)
async def thumb(message_id: IdPath, part_id: PartPath, services: Services) -> Response:
    try:  # not `latest` here, and errors are 400, as Mailpit
        _, raw = await services.inboxes.message(SINK, message_id)
    except NotFound:
        raise Failed(400, "message not found") from None
    parts = await services.parse_pool.run(len(raw), mime.attachment_payloads, raw)
    for item, data in parts:
        if shapes.part_id(item) == part_id:
            picture = await services.parse_pool.run(len(data), thumbs.thumbnail, data)
            return Response(picture, media_type="image/jpeg", headers=PRIVATE)
    raise Failed(400, "part not found")


@router.get(
    "/api/v1/message/{message_id}/link-check",
    summary="Mailpit: the status of each link (loopback hosts, or those allowed); reads it.",
)
async def link_check(
    message_id: IdPath, services: Services, follow: Annotated[str, Query(max_length=8)] = ""
) -> JSONResponse:
    summary, raw = await load(services, message_id)
    if not summary.seen:
        await services.inboxes.mark_seen(SINK, summary.id, True)
    urls = await services.parse_pool.run(len(raw), links.links_of, raw)
    allow = services.sink.link_check_allow if services.sink is not None else ()
    report = await links.check(urls, follow.lower() in ("true", "1"), allow)
    return JSONResponse(report, headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/part/{part_id}",
    summary="Mailpit: one attachment or inline part, decoded (served as a download).",
)
async def attachment(
    message_id: IdPath,
    part_id: PartPath,
    services: Services,
) -> Response:
    _, raw = await load(services, message_id)
    parts = await services.parse_pool.run(len(raw), mime.attachment_payloads, raw)
    for item, data in parts:
        if shapes.part_id(item) == part_id:
            return downloads.download(data, item.content_type, item.filename, "part")
    raise Failed(404, "part not found")


# -- helpers --------------------------------------------------------------------------------
