"""mail.tm's REST routes over burnbox's inboxes: domains, accounts, tokens, messages,
sources and attachments. An account is an inbox made with a password; every read and
change goes through the InboxService, as burnbox's own API's do."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from burnbox import accounts, mime
from burnbox.accounts import account_id
from burnbox.addressing import AddressError
from burnbox.model import Inbox, MessageSummary
from burnbox.storage.base import AddressTaken, NotFound
from burnbox.web import downloads
from burnbox.web.deps import Services, client_ip
from burnbox.web.downloads import PRIVATE
from burnbox.web.frame import message_parts, render_cost
from burnbox.web.mailtm import shapes
from burnbox.web.mailtm.deps import Account, Plain, too_many, within_budget
from burnbox.web.mailtm.errors import NOT_FOUND, MailtmError, documented
from burnbox.web.mailtm.shapes import LD, PLAIN, Json
from burnbox.web.services import WebServices

router = APIRouter(dependencies=[Depends(within_budget)])
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
Page = Annotated[int, Query(ge=1, le=1000)]


class Credentials(BaseModel):
    address: str = Field(max_length=320)
    password: str = Field(max_length=accounts.MAX_PASSWORD)


class SeenChange(BaseModel):
    seen: bool = True


def document(
    content: Json | list[Json], plain: bool, status: int = 200, *, mail: bool = False
) -> JSONResponse:
    """A JSON-LD or plain JSON answer; one that carries mail is never cached on the way."""
    headers = PRIVATE if mail else None
    return JSONResponse(
        content, status_code=status, media_type=PLAIN if plain else LD, headers=headers
    )


# -- domains ---------------------------------------------------------------------------


@router.get("/domains", summary="The domains accounts can be made at.", responses=documented(422))
async def domains(services: Services, plain: Plain, page: Page = 1) -> JSONResponse:
    names = list(services.domains.creatable)
    shown = names[(page - 1) * shapes.PAGE_SIZE : page * shapes.PAGE_SIZE]
    members = [(f"/domains/{shapes.domain_id(name)}", shapes.domain(name)) for name in shown]
    return document(
        shapes.collection("Domain", "/domains", members, len(names), page, plain), plain
    )


@router.get("/domains/{domain_id}", summary="One domain.", responses=documented(404, 422))
async def domain(domain_id: IdPath, services: Services, plain: Plain) -> JSONResponse:
    for name in services.domains.creatable:
        if shapes.domain_id(name) == domain_id:
            fields = shapes.domain(name)
            return document(
                shapes.resource("Domain", f"/domains/{domain_id}", fields, plain), plain
            )
    raise NOT_FOUND


# -- accounts and tokens ---------------------------------------------------------------


@router.post(
    "/accounts",
    status_code=201,
    summary="Make an account (a burnbox inbox).",
    responses=documented(400, 413, 422, ok=201),
)
async def create_account(
    request: Request, wanted: Credentials, services: Services, plain: Plain
) -> JSONResponse:
    retry_after = services.creations.take(client_ip(request), services.clock().timestamp())
    if retry_after is not None:
        raise too_many(retry_after)
    try:
        inbox = await services.inboxes.create_account(wanted.address, wanted.password)
    except AddressError as error:
        raise _violation("address", f"This value is not valid ({error.reason}).") from None
    except accounts.BadPassword as error:
        raise _violation("password", error.reason) from None
    except AddressTaken:
        raise _violation("address", "This value is already used.") from None
    return document(await _account(services, inbox, plain), plain, 201)


@router.post(
    "/token", summary="A bearer token for an account.", responses=documented(400, 401, 413, 422)
)
async def token(request: Request, wanted: Credentials, services: Services) -> JSONResponse:
    ip, now = client_ip(request), services.clock().timestamp()
    wait = services.failed_reads.blocked(ip, now)  # a password guesser's budget
    if wait is not None:
        raise too_many(wait)
    try:
        inbox, issued = await services.inboxes.sign_in(wanted.address, wanted.password)
    except NotFound:
        services.failed_reads.take(ip, now)
        raise MailtmError(401, "Invalid credentials.") from None
    return JSONResponse({"id": account_id(inbox), "token": issued}, headers=PRIVATE)


@router.get("/me", summary="The signed-in account.", responses=documented(401))
async def me(inbox: Account, services: Services, plain: Plain) -> JSONResponse:
    return document(await _account(services, inbox, plain), plain)


@router.get(
    "/accounts/{identifier}",
    summary="An account: only one's own.",
    responses=documented(401, 403, 422),
)
async def get_account(
    identifier: IdPath, inbox: Account, services: Services, plain: Plain
) -> JSONResponse:
    _own(identifier, inbox)
    return document(await _account(services, inbox, plain), plain)


@router.delete(
    "/accounts/{identifier}",
    status_code=204,
    response_class=Response,
    summary="Delete an account: burns its inbox and all its mail.",
    responses=documented(401, 403, 422, ok=None),
)
async def delete_account(identifier: IdPath, inbox: Account, services: Services) -> Response:
    _own(identifier, inbox)
    await services.inboxes.burn(inbox)
    return Response(status_code=204)


def _own(identifier: str, inbox: Inbox) -> None:
    if identifier != account_id(inbox):
        raise MailtmError(403, "Access Denied.")


def _violation(field: str, message: str) -> MailtmError:
    return MailtmError(422, f"{field}: {message}", violations=[(field, message)])


async def account_fields(services: WebServices, inbox: Inbox, *, deleted: bool = False) -> Json:
    _, used = await services.inboxes.usage(inbox)
    return shapes.account(inbox, account_id(inbox), used, services.account_quota, deleted=deleted)


async def _account(services: WebServices, inbox: Inbox, plain: bool) -> Json:
    fields = await account_fields(services, inbox)
    return shapes.resource("Account", f"/accounts/{fields['id']}", fields, plain)


# -- messages ----------------------------------------------------------------------------


@router.get(
    "/messages",
    summary="The account's messages, 30 a page, newest first.",
    responses=documented(401, 422),
)
async def messages(
    inbox: Account, services: Services, plain: Plain, page: Page = 1
) -> JSONResponse:
    count, _ = await services.inboxes.usage(inbox)
    found = await services.inboxes.messages(inbox, limit=page * shapes.PAGE_SIZE)
    owner = account_id(inbox)
    members = [
        (f"/messages/{summary.id}", shapes.message_item(summary, owner))
        for summary in found[(page - 1) * shapes.PAGE_SIZE :]
    ]
    body = shapes.collection("Message", "/messages", members, count, page, plain)
    return document(body, plain, mail=True)


@router.get(
    "/messages/{message_id}",
    summary="One message, with its text and sanitised HTML.",
    responses=documented(401, 404, 422),
)
async def message(
    message_id: IdPath, inbox: Account, services: Services, plain: Plain
) -> JSONResponse:
    summary, raw = await _load(services, inbox, message_id)
    base = f"/messages/{summary.id}/attachment/{shapes.ATTACHMENT_PREFIX}"
    view, rendered, found = await services.parse_pool.run(
        render_cost(raw), message_parts, raw, summary.subject, False, base
    )
    fields = shapes.message_full(
        summary,
        account_id(inbox),
        view.headers,
        view.text,
        rendered.html,
        view.attachments,
        [link.url for link in found.links],
    )
    body = shapes.resource("Message", f"/messages/{summary.id}", fields, plain)
    return document(body, plain, mail=True)


@router.patch(
    "/messages/{message_id}",
    summary="Mark a message seen, as mail.tm does: with no body (what its clients send) or "
    '`{}`, it is marked seen; merge-patch JSON `{"seen": false}` marks it unseen.',
    responses=documented(400, 401, 404, 413, 422),
)
async def mark_seen(
    message_id: IdPath,
    inbox: Account,
    services: Services,
    plain: Plain,
    change: Annotated[SeenChange | None, Body()] = None,
) -> JSONResponse:
    seen = change.seen if change is not None else True
    try:
        summary = await services.inboxes.mark_seen(inbox, message_id, seen)
    except NotFound:
        raise NOT_FOUND from None
    fields = shapes.message_item(summary, account_id(inbox))
    return document(shapes.resource("Message", f"/messages/{summary.id}", fields, plain), plain)


@router.delete(
    "/messages/{message_id}",
    status_code=204,
    response_class=Response,
    summary="Delete one.",
    responses=documented(401, 404, 422, ok=None),
)
async def delete_message(message_id: IdPath, inbox: Account, services: Services) -> Response:
    try:
        await services.inboxes.delete_message(inbox, message_id)
    except NotFound:
        raise NOT_FOUND from None
    return Response(status_code=204)


@router.get(
    "/sources/{message_id}",
    summary="A message's source, as text in JSON.",
    responses=documented(401, 404, 422),
)
async def source(
    message_id: IdPath, inbox: Account, services: Services, plain: Plain
) -> JSONResponse:
    summary, raw = await _load(services, inbox, message_id)
    fields: Json = {
        "id": summary.id,
        "downloadUrl": f"/messages/{summary.id}/download",
        "data": raw.decode("utf-8", "replace"),
    }
    body = shapes.resource("Source", f"/sources/{summary.id}", fields, plain)
    return document(body, plain, mail=True)


@router.get(
    "/messages/{message_id}/download",
    response_class=Response,
    summary="The message as received (.eml).",
    responses={200: {"content": {"message/rfc822": {}}}, **documented(401, 404, 422, ok=None)},
)
async def download(message_id: IdPath, inbox: Account, services: Services) -> Response:
    _, raw = await _load(services, inbox, message_id)
    return downloads.eml(raw, message_id)


@router.get(
    "/messages/{message_id}/attachment/{attachment_id}",
    response_class=Response,
    summary="One attachment, as a download.",
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **documented(401, 404, 422, ok=None),
    },
)
async def attachment(
    message_id: IdPath,
    attachment_id: Annotated[str, Path(max_length=32)],
    inbox: Account,
    services: Services,
) -> Response:
    index = shapes.attachment_index(attachment_id)
    if index is None:
        raise NOT_FOUND
    _, raw = await _load(services, inbox, message_id)
    found = await services.parse_pool.run(len(raw), mime.attachment_bytes, raw, index)
    if found is None:
        raise NOT_FOUND
    described, content = found
    return downloads.attachment(
        content, described.content_type, described.filename, f"part-{index}"
    )


async def _load(
    services: WebServices, inbox: Inbox, message_id: str
) -> tuple[MessageSummary, bytes]:
    try:
        return await services.inboxes.message(inbox, message_id)
    except NotFound:
        raise NOT_FOUND from None
