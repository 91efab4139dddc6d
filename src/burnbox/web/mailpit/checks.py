"""Mailpit's checks of one message that ask something outside the message: SpamAssassin's
verdict (`sa-check`, qa/spamd.py) and the email clients' support of its HTML and CSS
(`html-check`, qa/htmlcheck). The link check (links.py) is the third."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from burnbox import mime
from burnbox.qa import spamd
from burnbox.qa.htmlcheck import report
from burnbox.web.deps import Services
from burnbox.web.downloads import PRIVATE
from burnbox.web.mailpit.common import Failed, IdPath, load

router = APIRouter(tags=["Mailpit"])  # included in sink mode only
MAX_HTML = 4 * 1024 * 1024  # characters of HTML checked (3 s of work here); the rest is not


@router.get(
    "/api/v1/message/{message_id}/sa-check",
    summary="Mailpit: SpamAssassin's score and rules for the message (BURNBOX_SPAMASSASSIN).",
)
async def sa_check(message_id: IdPath, services: Services) -> JSONResponse:
    server = services.sink.spamd if services.sink is not None else None
    if server is None:
        raise Failed(400, "SpamAssassin is not enabled")
    _, raw = await load(services, message_id)
    return JSONResponse(await spamd.check(server, raw), headers=PRIVATE)


@router.get(
    "/api/v1/message/{message_id}/html-check",
    summary="Mailpit: how well email clients support the message's HTML and CSS (caniemail).",
)
async def html_check(message_id: IdPath, services: Services) -> JSONResponse:
    _, raw = await load(services, message_id)
    html = await services.parse_pool.run(len(raw), _html_of, raw)
    if not html:
        raise Failed(400, "message does not contain HTML")
    shaped = await services.parse_pool.run(len(html), report.check, html)
    return JSONResponse(shaped, headers=PRIVATE)


def _html_of(raw: bytes) -> str:
    return mime.full_view(raw).html[:MAX_HTML]
