"""Mailpit's `POST /api/v1/message/{ID}/release`: the message sent on through the
operator's relay to the recipients named, each allowed by BURNBOX_SINK_RELAY_ALLOW
(qa/release.py). Errors are 400 with one line of text, as Mailpit's; success is `ok`."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from fastapi import APIRouter, Request, Response

from burnbox.qa.release import ReleaseRefused, outgoing
from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web.deps import Services
from burnbox.web.mailpit.common import Failed, IdPath, SameSite, body_of, ok, strings_of

router = APIRouter(tags=["Mailpit"])  # included in sink mode only


@router.post(
    "/api/v1/message/{message_id}/release",
    summary="Mailpit: send the message on through the configured relay.",
    dependencies=[SameSite],
)
async def release(message_id: IdPath, request: Request, services: Services) -> Response:
    relay = services.sink.relay if services.sink is not None else None
    if relay is None:
        raise Failed(400, "Message relay is not enabled")
    try:  # not `latest` here, as Mailpit
        _, raw = await services.inboxes.message(SINK, message_id)
    except NotFound:
        raise Failed(404, "message not found") from None
    try:
        recipients = relay.recipients(strings_of(await body_of(request), "to"))
        sender, message = outgoing(raw)
        await relay.send(sender, recipients, message)
    except ReleaseRefused as refused:
        raise Failed(400, str(refused)) from None
    return ok()
