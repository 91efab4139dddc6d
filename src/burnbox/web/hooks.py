"""Webhooks of an inbox, through the API (token-authorised, as every inbox route)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from datetime import datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from burnbox.destinations import RefusedDestination
from burnbox.model import Webhook
from burnbox.storage.base import NotFound
from burnbox.web.deps import Readable, Services
from burnbox.web.errors import NOT_FOUND, ApiError, error_responses
from burnbox.web.services import WebServices
from burnbox.webhooks import EVENTS, TooManyWebhooks, WebhookService

router = APIRouter(prefix="/api", tags=["webhooks"])
Event = Literal["message.received", "message.deleted", "inbox.expired", "inbox.burned"]
ALL_EVENTS: tuple[Event, ...] = get_args(Event)
assert ALL_EVENTS == EVENTS  # one list of events: webhooks.EVENTS
HookId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=2048, description="http or https; must resolve to a public address."
    )
    events: list[Event] = Field(default_factory=lambda: list(ALL_EVENTS), max_length=4)
    include_body: bool = Field(False, description="Send the message's text with message.received.")


class WebhookInfo(BaseModel):
    id: str
    url: str
    events: list[str]
    include_body: bool
    created_at: datetime
    last_status: str = Field(description="The last attempt's HTTP status, or what went wrong.")
    last_attempt: datetime | None
    delivered: int
    failed: int = Field(description="Events given up after retrying for the retry time.")
    pending: int

    @classmethod
    def of(cls, hook: Webhook) -> "WebhookInfo":
        return cls(
            id=hook.id,
            url=hook.url,
            events=list(hook.events),
            include_body=hook.include_body,
            created_at=hook.created_at,
            last_status=hook.last_status,
            last_attempt=hook.last_attempt,
            delivered=hook.delivered,
            failed=hook.failed,
            pending=hook.pending,
        )


class WebhookCreated(BaseModel):
    id: str
    url: str
    events: list[str]
    include_body: bool
    created_at: datetime
    secret: str = Field(description="Signing secret (Standard Webhooks), shown this once.")


def _service(services: WebServices) -> WebhookService:
    if services.webhooks is None:
        raise NOT_FOUND
    return services.webhooks


@router.post(
    "/inboxes/{address}/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a URL to be told of this inbox's events (signed; see docs/webhooks.md).",
    responses=error_responses(400, 404, 409, 413, 422, 429),
)
async def register(inbox: Readable, wanted: NewWebhook, services: Services) -> WebhookCreated:
    try:
        hook = await _service(services).register(
            inbox, wanted.url, tuple(wanted.events), wanted.include_body
        )
    except RefusedDestination as refused:
        raise ApiError(
            422, "destination_refused", f"That URL cannot be called: {refused.reason}."
        ) from None
    except TooManyWebhooks:
        raise ApiError(
            409, "too_many_webhooks", "This inbox has as many webhooks as it may."
        ) from None
    return WebhookCreated(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        include_body=hook.include_body,
        created_at=hook.created_at,
        secret=hook.secret,
    )


@router.get(
    "/inboxes/{address}/webhooks",
    response_model=list[WebhookInfo],
    summary="This inbox's webhooks, with their last delivery status.",
    responses=error_responses(404, 429),
)
async def listed(inbox: Readable, services: Services) -> list[WebhookInfo]:
    return [WebhookInfo.of(hook) for hook in await _service(services).of(inbox)]


@router.delete(
    "/inboxes/{address}/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook (and what it has pending).",
    responses=error_responses(404, 422),
)
async def remove(inbox: Readable, webhook_id: HookId, services: Services) -> Response:
    try:
        await _service(services).remove(inbox, webhook_id)
    except NotFound:
        raise NOT_FOUND from None
    return Response(status_code=204)
