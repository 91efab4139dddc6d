"""Inbox handles through the API (handles.py): made with the inbox's token, then usable
wherever a token is (as the bearer); `GET /api/handle` says which inbox one opens, for a
client that holds nothing else (the MCP tools)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from burnbox.web.api import info_of
from burnbox.web.auth import presented_token
from burnbox.web.deps import Readable, Services, counted_open
from burnbox.web.errors import error_responses
from burnbox.web.wire import InboxInfo

router = APIRouter(prefix="/api", tags=["inboxes"])


class HandleOut(BaseModel):
    handle: str = Field(
        description="Opens this inbox wherever a token does (`Authorization: Bearer`), on "
        "every node, until the inbox ends; reveals nothing of it."
    )
    address: str
    expires_at: datetime


@router.post(
    "/inboxes/{address}/handle",
    status_code=201,
    response_model=HandleOut,
    summary="A handle for this inbox: a capability that reveals nothing (what agents hold).",
    responses=error_responses(404, 429),
)
async def make_handle(inbox: Readable, services: Services) -> HandleOut:
    handle = await services.inboxes.handle(inbox)
    return HandleOut(handle=handle, address=inbox.address, expires_at=inbox.expires_at)


@router.get(
    "/handle",
    response_model=InboxInfo,
    summary="The inbox the bearer handle opens (404 for a forged one or an ended inbox).",
    responses=error_responses(404, 429),
)
async def handle_info(request: Request, services: Services) -> InboxInfo:
    handle, _ = presented_token(request.headers, {}, "")
    inbox = await counted_open(
        request, services, lambda: services.inboxes.open_handle(handle or "")
    )
    return await info_of(services, inbox)
