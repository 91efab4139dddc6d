"""Mailpit's /view pages: a message's HTML part byte for byte, or its text part.

The HTML is the sender's, unsanitised, as Mailpit serves it (its clients compare it byte for
byte), so the page carries a Content-Security-Policy that makes it harmless opened directly:
`sandbox` (an opaque origin, no scripts, no forms, no top navigation), and nothing loads but
inline styles and `data:` images: no remote request leaves, as in burnbox's own reader.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from burnbox.sink import SINK
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit import shapes
from burnbox.web.mailpit.common import Failed
from burnbox.web.mailpit.queries import pick
from burnbox.web.services import WebServices

router = APIRouter(tags=["Mailpit"])
ViewId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
SANDBOXED = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "font-src data:; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)
_ANCHOR = re.compile(r"<a(?=[\s>])", re.IGNORECASE)


@router.get(
    "/view/{message_id}.html",
    summary="Mailpit: the HTML part as a page (sandboxed: no script runs, nothing remote "
    "loads). `embed=1` opens links in a new tab, as Mailpit.",
    responses={200: {"content": {"text/html": {}}}, 404: {"content": {"text/plain": {}}}},
)
async def html(
    message_id: ViewId,
    services: Services,
    embed: Annotated[str, Query(max_length=8)] = "",
    query: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    summary, raw = await pick(services, message_id, query)
    page = await services.parse_pool.run(len(raw), shapes.html_of, raw)
    if not page:
        raise Failed(404, "no HTML part")
    await _read(services, summary.id, summary.seen)
    if embed == "1":
        page = _ANCHOR.sub('<a target="_blank" rel="noreferrer noopener"', page)
    headers = {**PRIVATE, "Content-Security-Policy": SANDBOXED}
    return Response(page.encode("utf-8"), media_type="text/html; charset=utf-8", headers=headers)


@router.get(
    "/view/{message_id}.txt",
    summary="Mailpit: the text part, as text/plain.",
    responses={200: {"content": {"text/plain": {}}}, 404: {"content": {"text/plain": {}}}},
)
async def text(
    message_id: ViewId, services: Services, query: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    summary, raw = await pick(services, message_id, query)
    body = await services.parse_pool.run(len(raw), shapes.text_of, raw)
    await _read(services, summary.id, summary.seen)
    return Response(body.encode("utf-8"), media_type="text/plain; charset=utf-8", headers=PRIVATE)


async def _read(services: WebServices, message_id: str, seen: bool) -> None:
    """Viewing a message reads it, as in Mailpit."""
    if not seen:
        await services.inboxes.mark_seen(SINK, message_id, True)
