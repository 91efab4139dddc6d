"""burnbox's own REST API under /api: inboxes, messages, attachments.

Each route is a small module-level function; what it needs comes through the dependencies
in deps.py. Routes read and change mail only through the InboxService, which publishes the
events, so no route can forget one.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from burnbox import mime
from burnbox.addressing import AddressError, parse_address
from burnbox.feeds import InboxEnded
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import AddressTaken, NotFound
from burnbox.web import downloads
from burnbox.web.auth import cookie_name, cross_site
from burnbox.web.deps import Readable, Services, client_ip, rate_limited
from burnbox.web.downloads import PRIVATE
from burnbox.web.errors import NOT_FOUND, ApiError, error_responses
from burnbox.web.frame import frame_page, frame_policy, message_parts, qr_svg, render_cost
from burnbox.web.limits import TooManyStreams
from burnbox.web.services import WebServices
from burnbox.web.wire import (
    AttachmentOut,
    Domains,
    InboxCreated,
    InboxInfo,
    LinkOut,
    MessageOut,
    NewInbox,
    SeenPatch,
    Summary,
    SummaryPage,
)

router = APIRouter(prefix="/api", tags=["inboxes"])
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
Cursor = Annotated[str | None, Query(max_length=64, pattern=r"^[0-9A-Za-z]+$")]
Remote = Annotated[str, Query(pattern="^(allow|block)$")]


@router.get("/domains", response_model=Domains, summary="Domains new inboxes can use.")
async def domains(services: Services) -> Domains:
    return Domains(domains=list(services.domains.creatable))


@router.post(
    "/inboxes",
    status_code=201,
    response_model=InboxCreated,
    summary="Create an inbox: a random address, or a chosen local part.",
    responses=error_responses(400, 403, 409, 413, 422, 429),
)
async def create_inbox(
    request: Request, response: Response, services: Services, wanted: NewInbox | None = None
) -> InboxCreated:
    if cross_site(request.headers, request.url.scheme, services.allowed_origins):
        # A form on another site would spend the visitor's IP's creation budget.
        raise ApiError(403, "cross_origin", "Inboxes are not created from other sites.")
    retry_after = services.creations.take(client_ip(request), services.clock().timestamp())
    if retry_after is not None:
        raise rate_limited(retry_after, "Too many new inboxes; try again later.")
    wanted = wanted or NewInbox()
    try:
        inbox, token = await services.inboxes.create(wanted.local_part, wanted.domain)
    except AddressError as error:
        raise ApiError(422, "invalid_address", f"Address not accepted: {error.reason}.") from None
    except AddressTaken:
        raise ApiError(409, "address_taken", "That address is in use.") from None
    lifetime = _seconds_left(services, inbox)
    if wanted.cookie:
        # Max-Age, which a browser prefers, counts from the browser's own clock; Expires
        # (for the oldest clients) is a date on ours, right only if the clocks agree.
        response.set_cookie(
            cookie_name(inbox.address),
            token,
            httponly=True,
            samesite="strict",
            path="/api/",
            secure=request.url.scheme == "https",
            max_age=lifetime,
            expires=inbox.expires_at,
        )
    return InboxCreated(
        address=inbox.address, token=token, expires_at=inbox.expires_at, expires_in=lifetime
    )


@router.get(
    "/inboxes/{address}",
    response_model=InboxInfo,
    summary="An inbox's state.",
    responses=error_responses(404, 429),
)
async def inbox_info(inbox: Readable, services: Services) -> InboxInfo:
    return await info_of(services, inbox)


@router.post(
    "/inboxes/{address}/extend",
    response_model=InboxInfo,
    summary="Extend an inbox's life, up to the maximum.",
    responses=error_responses(404, 429),
)
async def extend(inbox: Readable, services: Services) -> InboxInfo:
    try:
        return await info_of(services, await services.inboxes.extend(inbox))
    except NotFound:
        raise NOT_FOUND from None


@router.delete(
    "/inboxes/{address}",
    status_code=204,
    response_class=Response,
    summary="Burn an inbox and all its mail now.",
    responses=error_responses(404),
)
async def burn(inbox: Readable, services: Services) -> Response:
    await services.inboxes.burn(inbox)
    response = Response(status_code=204)
    response.delete_cookie(cookie_name(inbox.address), path="/api/")
    return response


@router.get(
    "/inboxes/{address}/messages",
    response_model=SummaryPage,
    summary="Summaries: newest first, or with `after` the ones right after it, oldest "
    "first; `wait` long-polls for mail.",
    responses=error_responses(404, 422, 429),
)
async def messages(
    request: Request,
    inbox: Readable,
    services: Services,
    before: Cursor = None,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
) -> SummaryPage:
    if after is None and not wait:
        page = await services.inboxes.messages(inbox, before=before, limit=limit + 1)
        return _page(page[:limit], next_before=page[limit - 1].id if len(page) > limit else None)
    try:
        release = services.streams.take(client_ip(request))
    except TooManyStreams:
        raise rate_limited(5, "Too many push streams from your address.") from None
    try:
        found, more = await services.feeds.wait_newer(inbox, after, wait, limit)
    except InboxEnded:
        raise NOT_FOUND from None
    finally:
        release()
    if after is not None:  # oldest first; the next call passes `next_after` as `after`
        return _page(found, next_after=found[-1].id if more else None)
    return _page(found, next_before=found[-1].id if more else None)


@router.get(
    "/inboxes/{address}/messages/{message_id}",
    response_model=MessageOut,
    summary="One message: sanitised HTML, text, headers, attachments, codes, links.",
    responses=error_responses(404, 422, 429),
)
async def message(
    inbox: Readable,
    message_id: IdPath,
    services: Services,
    response: Response,
    remote: Remote = "block",
) -> MessageOut:
    summary, raw = await _load(services, inbox, message_id)
    base = f"/api/inboxes/{quote(inbox.address)}/messages/{summary.id}/attachments/"
    view, rendered, found = await services.parse_pool.run(
        render_cost(raw), message_parts, raw, summary.subject, remote == "allow", base
    )
    response.headers.update(PRIVATE)
    shown = Summary.of(summary)
    return MessageOut(
        summary=shown,
        authentication=shown.authentication,
        headers=view.headers,
        text=view.text,
        html=rendered.html,
        remote_blocked=rendered.blocked,
        styles_removed=rendered.styles_removed,
        attachments=[
            AttachmentOut(
                index=a.index,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                content_id=a.content_id,
                inline=a.inline,
                url=base + str(a.index),
            )
            for a in view.attachments
        ],
        codes=found.codes,
        links=[LinkOut(url=link.url, text=link.text) for link in found.links],
    )


@router.get(
    "/inboxes/{address}/messages/{message_id}/html",
    response_class=Response,
    summary="The sanitised HTML as a page for a sandboxed frame (no script at all).",
    responses={200: {"content": {"text/html": {}}}, **error_responses(404, 422)},
)
async def message_html(
    inbox: Readable, message_id: IdPath, services: Services, remote: Remote = "block"
) -> HTMLResponse:
    _, raw = await _load(services, inbox, message_id)
    page = await services.parse_pool.run(render_cost(raw), frame_page, raw, remote == "allow")
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": frame_policy(remote == "allow"),
            "X-Frame-Options": "SAMEORIGIN",
            **PRIVATE,
        },
    )


@router.get(
    "/qr/{address}",
    response_class=Response,
    tags=["inboxes"],
    summary="A QR code of an address, as SVG (an address is not a secret).",
    responses={200: {"content": {"image/svg+xml": {}}}, **error_responses(404)},
)
async def qr_code(
    address: Annotated[str, Path(min_length=3, max_length=320)], services: Services
) -> Response:
    try:
        normal = parse_address(address)
    except AddressError:
        raise NOT_FOUND from None
    if not services.domains.accepts(normal.domain):
        raise NOT_FOUND
    return Response(
        qr_svg(f"mailto:{normal}"),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get(
    "/inboxes/{address}/messages/{message_id}/raw",
    response_class=Response,
    summary="The message as received (message/rfc822).",
    responses={200: {"content": {"message/rfc822": {}}}, **error_responses(404)},
)
async def raw_message(inbox: Readable, message_id: IdPath, services: Services) -> Response:
    _, raw = await _load(services, inbox, message_id)
    return downloads.eml(raw, message_id)


@router.get(
    "/inboxes/{address}/messages/{message_id}/attachments/{index}",
    response_class=Response,
    summary="One attachment, as a download.",
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(404, 422)},
)
async def attachment(
    inbox: Readable,
    message_id: IdPath,
    services: Services,
    index: Annotated[int, Path(ge=0, le=10_000)],
) -> Response:
    _, raw = await _load(services, inbox, message_id)
    found = await services.parse_pool.run(len(raw), mime.attachment_bytes, raw, index)
    if found is None:
        raise NOT_FOUND
    described, content = found
    return downloads.attachment(
        content, described.content_type, described.filename, f"part-{index}"
    )


@router.delete(
    "/inboxes/{address}/messages/{message_id}",
    status_code=204,
    response_class=Response,
    summary="Delete one message.",
    responses=error_responses(404, 422),
)
async def delete_message(inbox: Readable, message_id: IdPath, services: Services) -> Response:
    try:
        await services.inboxes.delete_message(inbox, message_id)
    except NotFound:
        raise NOT_FOUND from None
    return Response(status_code=204)


@router.patch(
    "/inboxes/{address}/messages/{message_id}",
    response_model=Summary,
    summary="Mark a message seen or unseen.",
    responses=error_responses(400, 404, 413, 422),
)
async def patch_message(
    inbox: Readable, message_id: IdPath, change: SeenPatch, services: Services
) -> Summary:
    try:
        return Summary.of(await services.inboxes.mark_seen(inbox, message_id, change.seen))
    except NotFound:
        raise NOT_FOUND from None


def _page(
    found: list[MessageSummary], *, next_before: str | None = None, next_after: str | None = None
) -> SummaryPage:
    return SummaryPage(
        messages=[Summary.of(summary) for summary in found],
        next_before=next_before,
        next_after=next_after,
    )


async def info_of(services: WebServices, inbox: Inbox) -> InboxInfo:
    count, size = await services.inboxes.usage(inbox)
    return InboxInfo(
        address=inbox.address,
        created_at=inbox.created_at,
        expires_at=inbox.expires_at,
        expires_in=_seconds_left(services, inbox),
        messages=count,
        bytes=size,
    )


def _seconds_left(services: WebServices, inbox: Inbox) -> int:
    """An inbox's remaining life by our clock: what a client whose clock disagrees with
    ours counts down from."""
    return max(0, int((inbox.expires_at - services.clock()).total_seconds()))


async def _load(
    services: WebServices, inbox: Inbox, message_id: str
) -> tuple[MessageSummary, bytes]:
    try:
        return await services.inboxes.message(inbox, message_id)
    except NotFound:
        raise NOT_FOUND from None
