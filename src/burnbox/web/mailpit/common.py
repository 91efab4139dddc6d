"""What Mailpit's routes share: its way of answering (200 with JSON or text/plain `ok`; errors
as one line of text/plain, which its clients expect rather than burnbox's JSON errors), the
same-site rule for writes, loading a message (`latest` too), and the list's body."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import json
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import PlainTextResponse

from burnbox.model import MessageSummary
from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web.auth import cross_site
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import shapes, tagging
from burnbox.web.services import WebServices

WHOLE = 100_000  # "every message": the sink holds no more (its per-inbox cap bounds it)
MAX_BODY = 1024 * 1024  # a PUT or DELETE body: IDs, flags, tags
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


async def summary_json(services: WebServices, summary: MessageSummary) -> shapes.Json:
    _, raw = await load(services, summary.id)
    username, tags = username_of(services, summary.id), tagging.tags_of(services, summary.id, raw)
    head = raw.split(b"\r\n\r\n", 1)[0]  # a list item needs the headers only
    shaped: shapes.Json = await services.parse_pool.run(
        len(head), shapes.summary, summary, head, username, tags
    )
    return shaped


def username_of(services: WebServices, message_id: str) -> str:
    """Who sent it through Mailpit's send, as this node recorded it ("" for SMTP mail)."""
    return services.sink.usernames.get(message_id, "") if services.sink is not None else ""


async def page_of(
    services: WebServices, every: list[MessageSummary], page: list[MessageSummary], start: int
) -> dict[str, Any]:
    """A list's or a search's body: the mailbox's totals, and this page."""
    unread = sum(1 for summary in every if not summary.seen)
    items = [await summary_json(services, summary) for summary in page]
    in_use = tagging.in_use(services, [summary.id for summary in every])
    return {
        "total": len(every),
        "unread": unread,
        "count": len(items),
        "messages_count": len(every),
        "messages_unread": unread,
        "start": start,
        "tags": in_use,
        "messages": items,
    }


async def body_of(request: Request, *, strict: bool = False) -> dict[str, Any]:
    """The JSON body with its keys lower-cased (Go's decoder matches them ignoring case);
    {} for none. Anything that is not a JSON object is {} too, as Mailpit reads most
    bodies, or with `strict` a 400, as it reads the ones that set something."""
    data = await request.body()
    if len(data) > MAX_BODY:
        raise Failed(400, "request body too large")
    try:
        found = json.loads(data) if data.strip() else {}
    except ValueError:
        found = None
    if not isinstance(found, dict):
        if strict:
            raise Failed(400, "invalid JSON: expected an object")
        return {}
    return {str(key).lower(): value for key, value in found.items()}


def strings_of(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
