"""FastAPI dependencies: the services, the client's IP, and the inbox a request may read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from burnbox.model import Inbox
from burnbox.storage.base import NotFound
from burnbox.web.auth import cross_site, presented_token
from burnbox.web.errors import NOT_FOUND, ApiError
from burnbox.web.services import WebServices

AddressPath = Annotated[str, Path(min_length=3, max_length=320, description="The address.")]


def services_of(connection: HTTPConnection) -> WebServices:
    services: WebServices = connection.app.state.services
    return services


Services = Annotated[WebServices, Depends(services_of)]


def client_ip(connection: HTTPConnection) -> str:
    """The peer, or what a trusted proxy said it was (uvicorn's proxy headers)."""
    return connection.client.host if connection.client else ""


def rate_limited(retry_after: float, message: str) -> ApiError:
    return ApiError(429, "rate_limited", message, {"Retry-After": str(max(1, round(retry_after)))})


async def open_inbox(
    connection: HTTPConnection, services: WebServices, address: str, token: str | None
) -> Inbox:
    """The inbox, if `token` (an inbox token, an account token or a handle) may read it."""
    return await counted_open(
        connection, services, lambda: services.inboxes.open(address[:320], token)
    )


async def counted_open(
    connection: HTTPConnection, services: WebServices, opening: Callable[[], Awaitable[Inbox]]
) -> Inbox:
    """The inbox `opening` finds. Every refusal (no inbox, a wrong token or handle) counts
    against the client's IP; past its budget, the client is told 429 before anything is
    looked at, so a guesser learns nothing more, and cannot tell missing from forbidden."""
    ip, now = client_ip(connection), services.clock().timestamp()
    wait = services.failed_reads.blocked(ip, now)
    if wait is not None:
        services.metrics.reads_refused.inc()
        raise rate_limited(wait, "Too many failed reads; try again later.")
    try:
        return await opening()
    except NotFound:
        services.failed_reads.take(ip, now)
        raise NOT_FOUND from None


async def readable_inbox(request: Request, address: AddressPath, services: Services) -> Inbox:
    """The inbox named in the path, if the caller may read it."""
    token, by_cookie = presented_token(request.headers, request.cookies, address)
    if (
        by_cookie
        and request.method not in {"GET", "HEAD"}
        and cross_site(request.headers, request.url.scheme, services.allowed_origins)
    ):
        raise NOT_FOUND  # a cross-site write riding on a cookie: answer as to anyone
    return await open_inbox(request, services, address, token)


Readable = Annotated[Inbox, Depends(readable_inbox)]
