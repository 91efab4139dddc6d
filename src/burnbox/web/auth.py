"""Who may read an inbox: the token from `Authorization: Bearer` or the inbox's cookie."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import Path, Request

from burnbox.model import Inbox
from burnbox.storage.base import NotFound
from burnbox.web.errors import NOT_FOUND

if TYPE_CHECKING:
    from burnbox.web.services import WebServices

AddressPath = Annotated[str, Path(min_length=3, max_length=320, description="The address.")]
MAX_TOKEN = 200


def cookie_name(address: str) -> str:
    """One cookie per inbox; the name hides the address."""
    return "burnbox_" + hashlib.sha256(address.lower().encode()).hexdigest()[:20]


def presented_token(headers: Mapping[str, str], cookies: Mapping[str, str],
                    address: str) -> tuple[str | None, bool]:
    """(token, whether it came from a cookie)."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()[:MAX_TOKEN], False
    cookie = cookies.get(cookie_name(address))
    return (cookie[:MAX_TOKEN], True) if cookie else (None, False)


def readable_inbox(services: WebServices) -> Callable[[Request, str], Awaitable[Inbox]]:
    """A FastAPI dependency: the inbox named in the path, if the caller may read it."""

    async def dependency(request: Request, address: AddressPath) -> Inbox:
        token, by_cookie = presented_token(request.headers, request.cookies, address)
        if by_cookie and request.method not in {"GET", "HEAD"} and not services.origin_allowed(
                request.headers.get("origin"), request.headers.get("host")):
            raise NOT_FOUND  # a cross-site write riding on a cookie: answer as to anyone
        try:
            return await services.inboxes.open(address, token)
        except NotFound:
            raise NOT_FOUND from None

    return dependency
