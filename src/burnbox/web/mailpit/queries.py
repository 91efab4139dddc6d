"""Mailpit's search over the shared view: `GET` and `DELETE /api/v1/search`, and the
messages a search picks for `PUT /api/v1/messages` and `latest?query=`.

Mailpit keeps each message's search text at ingest; here it is worked out from the stored
message when a search first meets it (in the parse pool) and kept, bounded, by message id:
a message never changes, only its read flag, which is read from its summary each time.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import dataclasses
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from burnbox.model import MessageSummary
from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import search, shapes, tagging
from burnbox.web.mailpit.common import WHOLE, Failed, SameSite, load, ok, page_of
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])
KEPT = 20_000  # search fields kept, by message id
# By id and arrival: ids are unique, but a process may hold several apps (tests) whose ids
# come from the same sequence.
_kept: OrderedDict[tuple[str, float], search.Searchable] = OrderedDict()
Text = Annotated[str, Query(max_length=2000)]
Short = Annotated[str, Query(max_length=64)]


@router.get("/api/v1/search", summary="Mailpit: a page of the messages a search matches.")
async def find(
    services: Services,
    query: Text = "",
    start: Short = "",
    limit: Short = "",
    tz: Short = "",
    before: Short = "",
) -> JSONResponse:
    paging = shapes.paging(start, limit)
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    found = received_before(await matching(services, every, query, tz), before, tz)
    page = found[paging.start : paging.start + paging.limit]  # limit 0: none, as Mailpit
    body = await page_of(services, every, page, paging.start)
    body["messages_count"] = len(found)
    body["messages_unread"] = sum(1 for summary in found if not summary.seen)
    return JSONResponse(body, headers=PRIVATE)


@router.delete(
    "/api/v1/search",
    summary="Mailpit: delete every message a search matches.",
    dependencies=[SameSite],
)
async def delete_found(services: Services, query: Text = "", tz: Short = "") -> Response:
    every = await services.inboxes.messages(SINK, limit=WHOLE)
    for summary in await matching(services, every, query, tz):
        try:
            await services.inboxes.delete_message(SINK, summary.id)
        except NotFound:
            continue
        if services.sink is not None:
            services.sink.stats.deleted += 1
    return ok()


def received_before(
    summaries: list[MessageSummary], before: str, zone: str = ""
) -> list[MessageSummary]:
    """Those received strictly before `before` (Mailpit's undocumented list and search
    parameter); all of them when it is empty or not a date Mailpit's search would read."""
    moment = search.parse_date(before, search.zone_of(zone)) if before else None
    if moment is None:
        return summaries
    return [summary for summary in summaries if summary.received_at < moment]


async def pick(
    services: WebServices, message_id: str, query: str = ""
) -> tuple[MessageSummary, bytes]:
    """The message; `latest` with a search is the newest that matches, as Mailpit."""
    if message_id == "latest" and query:
        every = await services.inboxes.messages(SINK, limit=WHOLE)
        found = await matching(services, every, query)
        if not found:
            raise Failed(404, "message not found")
        message_id = found[0].id
    return await load(services, message_id)


async def matching(
    services: WebServices, every: list[MessageSummary], query: str, zone: str = ""
) -> list[MessageSummary]:
    """The messages (newest first) that match; Failed 400 for a blank query."""
    try:
        terms = search.parse(query)
    except search.EmptyQuery:
        raise Failed(400, "Error: no search query") from None
    found = []
    for summary in every:
        fields = await _fields(services, summary)
        if fields is not None and search.matches(terms, fields, zone):
            found.append(summary)
    return found


async def _fields(services: WebServices, summary: MessageSummary) -> search.Searchable | None:
    key = (summary.id, summary.received_at.timestamp())
    fields = _kept.get(key)
    if fields is None:
        try:
            _, raw = await services.inboxes.message(SINK, summary.id)
        except NotFound:
            return None  # deleted meanwhile
        fields = await services.parse_pool.run(len(raw), search.searchable, summary, raw)
        tagging.tags_of(services, summary.id, raw)  # its X-Tags, the first time
        _kept[key] = fields
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    tags = tuple(tagging.tags_of(services, summary.id))
    return dataclasses.replace(fields, read=summary.seen, tags=tags)
