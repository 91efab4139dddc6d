"""A Mercure-compatible hub for one topic, `/accounts/{id}`: Server-Sent Events of the
account's messages as JSON-LD objects (new, seen, deleted) and of the account itself (its
`used` after each arrival, `isDeleted` at its end), as mail.tm's hub sends them. Fed by
feeds.Feeds, so it works across workers and nodes, and `Last-Event-ID` catches up exactly."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from burnbox.accounts import account_id
from burnbox.hub import Event
from burnbox.model import Inbox
from burnbox.web.deps import Services, client_ip
from burnbox.web.limits import TooManyStreams
from burnbox.web.live import RECONNECT_MS, HeldStream
from burnbox.web.mailtm import shapes
from burnbox.web.mailtm.deps import Account, too_many, within_budget
from burnbox.web.mailtm.errors import MailtmError, documented
from burnbox.web.mailtm.routes import account_fields
from burnbox.web.services import WebServices

router = APIRouter(dependencies=[Depends(within_budget)])
Topics = Annotated[list[str], Query(alias="topic", max_length=10)]


def frame(fields: shapes.Json, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {json.dumps(fields)}\n\n"


def message_frame(event: Event, owner: str) -> str:
    if event.summary is not None:
        fields = shapes.message_item(event.summary, owner)
        body = shapes.resource("Message", f"/messages/{event.summary.id}", fields, False)
        return frame(body, event.message_id if event.kind == "message" else None)
    gone = {"id": event.message_id, "isDeleted": True}
    return frame(shapes.resource("Message", f"/messages/{event.message_id}", gone, False))


async def account_frame(services: WebServices, inbox: Inbox, *, deleted: bool = False) -> str:
    if deleted:
        fields = shapes.account(inbox, account_id(inbox), 0, services.account_quota, deleted=True)
    else:
        fields = await account_fields(services, inbox)
    return frame(shapes.resource("Account", f"/accounts/{fields['id']}", fields, False))


@router.get(
    "/.well-known/mercure",
    response_class=StreamingResponse,
    summary="Mercure subscription to /accounts/{id}: the account's events as SSE.",
    responses={200: {"content": {"text/event-stream": {}}}, **documented(401, 403, 422, ok=None)},
)
async def subscribe(
    request: Request,
    inbox: Account,
    services: Services,
    topic: Topics,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    owner = account_id(inbox)
    if not topic or any(not item.endswith(f"/accounts/{owner}") for item in topic):
        raise MailtmError(403, "Access Denied.")
    try:
        release = services.streams.take(client_ip(request))
    except TooManyStreams:
        raise too_many(5) from None

    async def stream() -> AsyncIterator[str]:
        async with services.feeds.feed(inbox) as feed:
            yield f"retry: {RECONNECT_MS}\n\n"  # first bytes: the client is subscribed
            async for event in feed.events(last_event_id):
                if event is None:
                    yield ":\n\n"
                elif event.kind == "expired":
                    yield await account_frame(services, inbox, deleted=True)
                else:
                    yield message_frame(event, owner)
                    if event.kind == "message":
                        yield await account_frame(services, inbox)

    return HeldStream(
        stream(),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )
