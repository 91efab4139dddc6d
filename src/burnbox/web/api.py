"""The REST API under /api: inboxes, messages, attachments."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases,
# which are local to the router builder, as real objects.

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from burnbox import mime
from burnbox.addressing import AddressError, parse_address
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import AddressTaken, NotFound
from burnbox.web.auth import cookie_name, readable_inbox
from burnbox.web.errors import NOT_FOUND, ApiError, error_responses
from burnbox.web.frame import frame_page, frame_policy, message_parts, qr_svg
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

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
SAFE_DOWNLOAD_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                                 "application/pdf", "text/plain", "text/calendar"})
_UNSAFE_FILENAME = re.compile(r"[^\w.\- ]+")


def build_router(services: WebServices) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["inboxes"])

    Readable = Annotated[Inbox, Depends(readable_inbox(services))]  # noqa: N806 - a type alias

    @router.get("/domains", response_model=Domains, summary="Domains new inboxes can use.")
    async def domains() -> Domains:
        return Domains(domains=list(services.domains.creatable))

    @router.post("/inboxes", status_code=201, response_model=InboxCreated,
                 summary="Create an inbox: a random address, or a chosen local part.",
                 responses=error_responses(400, 409, 413, 422, 429))
    async def create_inbox(request: Request, response: Response,
                           wanted: NewInbox | None = None) -> InboxCreated:
        wanted = wanted or NewInbox()
        client = request.client.host if request.client else ""
        retry_after = services.limiter.take(client, services.clock().timestamp())
        if retry_after is not None:
            raise ApiError(429, "rate_limited", "Too many new inboxes; try again later.",
                           {"Retry-After": str(max(1, round(retry_after)))})
        try:
            inbox, token = await services.inboxes.create(wanted.local_part, wanted.domain)
        except AddressError as error:
            raise ApiError(422, "invalid_address", f"Address not accepted: {error.reason}.") \
                from None
        except AddressTaken:
            raise ApiError(409, "address_taken", "That address is in use.") from None
        lifetime = _seconds_left(services, inbox)
        if wanted.cookie:
            # Max-Age, which a browser prefers, counts from the browser's own clock; Expires
            # (for the oldest clients) is a date on ours, right only if the clocks agree.
            response.set_cookie(cookie_name(inbox.address), token, httponly=True,
                                samesite="strict", path="/api/",
                                secure=request.url.scheme == "https",
                                max_age=lifetime, expires=inbox.expires_at)
        return InboxCreated(address=inbox.address, token=token, expires_at=inbox.expires_at,
                            expires_in=lifetime)

    @router.get("/inboxes/{address}", response_model=InboxInfo, summary="An inbox's state.",
                responses=error_responses(404))
    async def inbox_info(inbox: Readable) -> InboxInfo:
        return await _info(services, inbox)

    @router.post("/inboxes/{address}/extend", response_model=InboxInfo,
                 summary="Extend an inbox's life, up to the maximum.",
                 responses=error_responses(404))
    async def extend(inbox: Readable) -> InboxInfo:
        try:
            return await _info(services, await services.inboxes.extend(inbox))
        except NotFound:
            raise NOT_FOUND from None

    @router.delete("/inboxes/{address}", status_code=204, response_class=Response,
                   summary="Burn an inbox and all its mail now.", responses=error_responses(404))
    async def burn(request: Request, inbox: Readable) -> Response:
        await services.inboxes.burn(inbox)
        response = Response(status_code=204)
        response.delete_cookie(cookie_name(inbox.address), path="/api/")
        return response

    @router.get("/inboxes/{address}/messages", response_model=SummaryPage,
                summary="Summaries, newest first; `wait` long-polls for mail newer than `after`.",
                responses=error_responses(404, 422))
    async def messages(
        inbox: Readable,
        before: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9A-Za-z]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        after: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9A-Za-z]+$")] = None,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> SummaryPage:
        if after is not None or wait:
            newer = await services.live.wait_newer(inbox.address, after, wait, limit)
            return SummaryPage(messages=[Summary.of(s) for s in newer], next_before=None)
        page = await services.store.summaries(inbox.address, before=before, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return SummaryPage(messages=[Summary.of(s) for s in page],
                           next_before=page[-1].id if more else None)

    @router.get("/inboxes/{address}/messages/{message_id}", response_model=MessageOut,
                summary="One message: sanitised HTML, text, headers, attachments, codes, links.",
                responses=error_responses(404, 422))
    async def message(inbox: Readable, message_id: IdPath,
                      remote: Annotated[str, Query(pattern="^(allow|block)$")] = "block",
                      ) -> MessageOut:
        summary, raw = await _load(services, inbox, message_id)
        base = f"/api/inboxes/{quote(inbox.address)}/messages/{summary.id}/attachments/"
        view, rendered, found = await services.parse_pool.run(
            len(raw), message_parts, raw, summary.subject, remote == "allow", base)
        return MessageOut(
            summary=Summary.of(summary), headers=view.headers, text=view.text,
            html=rendered.html, remote_blocked=rendered.blocked,
            attachments=[AttachmentOut(index=a.index, filename=a.filename,
                                       content_type=a.content_type, size=a.size,
                                       content_id=a.content_id, inline=a.inline,
                                       url=base + str(a.index)) for a in view.attachments],
            codes=found.codes, links=[LinkOut(url=link.url, text=link.text)
                                      for link in found.links])

    @router.get("/inboxes/{address}/messages/{message_id}/html", response_class=Response,
                summary="The sanitised HTML as a page for a sandboxed frame (no script at all).",
                responses={200: {"content": {"text/html": {}}}, **error_responses(404, 422)})
    async def message_html(inbox: Readable, message_id: IdPath,
                           remote: Annotated[str, Query(pattern="^(allow|block)$")] = "block",
                           ) -> HTMLResponse:
        _, raw = await _load(services, inbox, message_id)
        page = await services.parse_pool.run(len(raw), frame_page, raw, remote == "allow")
        return HTMLResponse(page, headers={
            "Content-Security-Policy": frame_policy(remote == "allow"),
            "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private, no-store"})

    @router.get("/qr/{address}", response_class=Response, tags=["inboxes"],
                summary="A QR code of an address, as SVG (an address is not a secret).",
                responses={200: {"content": {"image/svg+xml": {}}}, **error_responses(404)})
    async def qr_code(address: Annotated[str, Path(min_length=3, max_length=320)]) -> Response:
        try:
            normal = parse_address(address)
        except AddressError:
            raise NOT_FOUND from None
        if not services.domains.accepts(normal.domain):
            raise NOT_FOUND
        return Response(qr_svg(f"mailto:{normal}"), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/inboxes/{address}/messages/{message_id}/raw", response_class=Response,
                summary="The message as received (message/rfc822).",
                responses={200: {"content": {"message/rfc822": {}}}, **error_responses(404)})
    async def raw_message(inbox: Readable, message_id: IdPath) -> Response:
        _, raw = await _load(services, inbox, message_id)
        return Response(raw, media_type="message/rfc822", headers={
            "Content-Disposition": f'attachment; filename="{message_id}.eml"',
            "Content-Security-Policy": "sandbox"})

    @router.get("/inboxes/{address}/messages/{message_id}/attachments/{index}",
                response_class=Response, summary="One attachment, as a download.",
                responses={200: {"content": {"application/octet-stream": {}}},
                           **error_responses(404, 422)})
    async def attachment(inbox: Readable, message_id: IdPath,
                         index: Annotated[int, Path(ge=0, le=10_000)]) -> Response:
        _, raw = await _load(services, inbox, message_id)
        found = await services.parse_pool.run(len(raw), mime.attachment_bytes, raw, index)
        if found is None:
            raise NOT_FOUND
        described, content = found
        kind = described.content_type if described.content_type in SAFE_DOWNLOAD_TYPES else (
            "application/octet-stream")
        name = _UNSAFE_FILENAME.sub("_", described.filename)[:150] or f"part-{index}"
        return Response(content, media_type=kind, headers={
            "Content-Disposition": f"attachment; filename=\"{name}\"; "
                                   f"filename*=UTF-8''{quote(described.filename[:150])}",
            "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"})

    @router.delete("/inboxes/{address}/messages/{message_id}", status_code=204,
                   response_class=Response, summary="Delete one message.",
                   responses=error_responses(404, 422))
    async def delete_message(inbox: Readable, message_id: IdPath) -> Response:
        try:
            await services.store.delete(inbox.address, message_id)
        except NotFound:
            raise NOT_FOUND from None
        services.live.deleted(inbox.address, message_id)
        return Response(status_code=204)

    @router.patch("/inboxes/{address}/messages/{message_id}", response_model=Summary,
                  summary="Mark a message seen or unseen.",
                  responses=error_responses(400, 404, 413, 422))
    async def patch_message(inbox: Readable, message_id: IdPath, change: SeenPatch) -> Summary:
        try:
            updated = await services.store.mark_seen(inbox.address, message_id, change.seen)
        except NotFound:
            raise NOT_FOUND from None
        services.live.seen(updated)
        return Summary.of(updated)

    return router


async def _info(services: WebServices, inbox: Inbox) -> InboxInfo:
    count, size = await services.store.usage(inbox.address)
    return InboxInfo(address=inbox.address, created_at=inbox.created_at,
                     expires_at=inbox.expires_at, expires_in=_seconds_left(services, inbox),
                     messages=count, bytes=size)


def _seconds_left(services: WebServices, inbox: Inbox) -> int:
    """An inbox's remaining life by our clock: what a client whose clock disagrees with
    ours counts down from."""
    return max(0, int((inbox.expires_at - services.clock()).total_seconds()))


async def _load(services: WebServices, inbox: Inbox,
                message_id: str) -> tuple[MessageSummary, bytes]:
    try:
        return (await services.store.summary(inbox.address, message_id),
                await services.store.raw(inbox.address, message_id))
    except NotFound:
        raise NOT_FOUND from None
