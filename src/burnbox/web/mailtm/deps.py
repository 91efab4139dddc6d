"""What the mail.tm routes need: the request budget, the account a bearer token opens, and
which format the client asked for."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from burnbox.model import Inbox
from burnbox.storage.base import NotFound
from burnbox.web.auth import MAX_TOKEN
from burnbox.web.deps import Services, client_ip
from burnbox.web.mailtm.errors import BAD_TOKEN, NO_TOKEN, MailtmError
from burnbox.web.mailtm.shapes import wants_plain
from burnbox.web.services import WebServices

_ASCII_SPACE = " \t"


def too_many(retry_after: float) -> MailtmError:
    return MailtmError(
        429, "Too many requests.", headers={"Retry-After": str(max(1, round(retry_after)))}
    )


async def within_budget(connection: HTTPConnection, services: Services) -> None:
    """mail.tm's limit: so many requests a second per client IP (BURNBOX_MAILTM_RATE)."""
    wait = services.account_requests.take(client_ip(connection), services.clock().timestamp())
    if wait is not None:
        raise too_many(wait)


def bearer(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return ""
    return header[7:].strip(_ASCII_SPACE)[:MAX_TOKEN]


async def open_account(connection: HTTPConnection, services: WebServices) -> Inbox:
    """The account's inbox the bearer token opens. A wrong token counts against the
    client's failed-read budget, as a wrong inbox token does."""
    token = bearer(connection)
    if not token:
        raise NO_TOKEN
    ip, now = client_ip(connection), services.clock().timestamp()
    wait = services.failed_reads.blocked(ip, now)
    if wait is not None:
        services.metrics.reads_refused.inc()
        raise too_many(wait)
    try:
        inbox = await services.inboxes.open_account(token)
    except NotFound:
        services.failed_reads.take(ip, now)
        raise BAD_TOKEN from None
    # And so many a second per account, however many addresses its requests come from.
    wait = services.per_account_requests.take(inbox.address, now)
    if wait is not None:
        raise too_many(wait)
    return inbox


async def signed_in(request: Request, services: Services) -> Inbox:
    return await open_account(request, services)


def plain_json(request: Request) -> bool:
    return wants_plain(request.headers.get("accept", ""))


Account = Annotated[Inbox, Depends(signed_in)]
Plain = Annotated[bool, Depends(plain_json)]
