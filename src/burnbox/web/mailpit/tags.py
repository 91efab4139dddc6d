"""Mailpit's tag routes: set the tags of messages (`PUT /api/v1/tags`), list them, rename
and delete a tag (tagging.py keeps them)."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from burnbox.sink import SINK
from burnbox.storage.base import NotFound
from burnbox.web.deps import Services
from burnbox.web.mailpit.common import SameSite, body_of, ok, strings_of
from burnbox.web.mailpit.tagging import MAX_TAG, clean, in_use, remember
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])
TagPath = Annotated[str, Path(min_length=1, max_length=MAX_TAG * 3)]


@router.get("/api/v1/tags", summary="Mailpit: every tag in use.")
async def listed(services: Services) -> list[str]:
    every = await services.inboxes.messages(SINK, limit=100_000)
    return in_use(services, [summary.id for summary in every])


@router.put("/api/v1/tags", summary="Mailpit: set the tags of messages.", dependencies=[SameSite])
async def set_tags(request: Request, services: Services) -> Response:
    body = await body_of(request)
    tags = clean(strings_of(body, "tags"))
    for message_id in strings_of(body, "ids"):
        await _retag(services, message_id, tags)
    return ok()


@router.put("/api/v1/tags/{tag}", summary="Mailpit: rename a tag.", dependencies=[SameSite])
async def rename(tag: TagPath, request: Request, services: Services) -> Response:
    name = clean([str((await body_of(request)).get("name", ""))])
    await _replace(services, tag, name)
    return ok()


@router.delete("/api/v1/tags/{tag}", summary="Mailpit: remove a tag.", dependencies=[SameSite])
async def delete(tag: TagPath, services: Services) -> Response:
    await _replace(services, tag, [])
    return ok()


async def _replace(services: WebServices, tag: str, by: list[str]) -> None:
    """Every message carrying `tag` (ignoring case) carries `by` instead; then one `prune`
    event (clients list again), as Mailpit sends for a tag renamed or deleted."""
    if services.sink is None:
        return
    carrying = [
        message_id
        for message_id, tags in services.sink.tags.items()
        if any(existing.lower() == tag.lower() for existing in tags)
    ]
    for message_id in carrying:
        kept = services.sink.tags[message_id]
        others = [existing for existing in kept if existing.lower() != tag.lower()]
        remember(services, message_id, clean(others + by))
    services.inboxes.announce_reload(SINK.address)


async def _retag(services: WebServices, message_id: str, tags: list[str]) -> None:
    try:
        summary, _ = await services.inboxes.message(SINK, message_id)
    except NotFound:
        return  # Mailpit tags what it finds
    remember(services, message_id, tags)
    services.inboxes.announce_update(summary)  # Mailpit's `update` event, with the tags
