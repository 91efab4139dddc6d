"""Mailpit's link check, `GET /api/v1/message/{ID}/link-check`: each http(s) link of a
message asked for its status, bounded, and never a way into the network burnbox sits in.

A link is asked only if every address its host resolves to is a loopback address, or its
host matches one of BURNBOX_SINK_LINK_CHECK_ALLOW's patterns (the operator widens it for
the hosts a QA setup uses); any other is reported as not checked, with status code 0.
Redirects (`follow=true`) are followed hop by hop, each hop checked the same way. Bounds:
LINKS_MAX links a message, ASKED_AT_ONCE at a time, TIMEOUT seconds each (to resolve, and
to answer), LINK_TOTAL seconds a link with its hops, MAX_HOPS hops; nothing of a body is
read.
"""

from __future__ import annotations

import asyncio
import fnmatch
import html as html_lib
import ipaddress
import re
import socket
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from burnbox import mime

LINKS_MAX = 50
ASKED_AT_ONCE = 5
TIMEOUT = 5.0
MAX_HOPS = 5
LINK_TOTAL = 15.0  # seconds for one link, all its hops included
_IN_HTML = re.compile(r"""(?:href|src)\s*=\s*["']?(https?://[^"'\s>]+)""", re.IGNORECASE)
_IN_TEXT = re.compile(r"https?://[^\s<>\"')]+", re.IGNORECASE)


def links_of(raw: bytes) -> list[str]:
    """The message's http(s) links, in order, once each, at most LINKS_MAX (pure)."""
    full = mime.full_view(raw)
    found = [html_lib.unescape(url) for url in _IN_HTML.findall(full.html)]
    found += _IN_TEXT.findall(full.text)
    return list(dict.fromkeys(found))[:LINKS_MAX]


async def check(links: list[str], follow: bool, allow: tuple[str, ...]) -> dict[str, Any]:
    gate = asyncio.Semaphore(ASKED_AT_ONCE)
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:

        async def one(url: str) -> dict[str, Any]:
            async with gate:
                try:  # a server that drips its answer is cut off too
                    code, status = await asyncio.wait_for(
                        _ask(client, url, follow, allow), LINK_TOTAL
                    )
                except TimeoutError:
                    code, status = 0, "error: timed out"
            return {"URL": url, "StatusCode": code, "Status": status}

        results = await asyncio.gather(*(one(url) for url in links))
    errors = sum(1 for item in results if not 200 <= item["StatusCode"] < 400)
    return {"Errors": errors, "Links": list(results)}


async def _ask(
    client: httpx.AsyncClient, url: str, follow: bool, allow: tuple[str, ...]
) -> tuple[int, str]:
    for _ in range(MAX_HOPS + 1):
        refusal = await _refused(url, allow)
        if refusal:
            return 0, refusal
        try:
            async with client.stream("GET", url) as answer:
                code, location = answer.status_code, answer.headers.get("location")
        except httpx.HTTPError as error:
            return 0, f"error: {type(error).__name__}"
        if not (follow and location and 300 <= code < 400):
            return code, _phrase(code)
        url = urljoin(url, location)
    return 0, "error: too many redirects"


async def _refused(url: str, allow: tuple[str, ...]) -> str:
    """Why this URL is not asked ("" when it may be)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "not checked: not an http(s) link"
    if any(fnmatch.fnmatchcase(host, pattern) for pattern in allow):
        return ""
    try:
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), TIMEOUT
        )
    except (OSError, UnicodeError):
        return "error: no such host"
    except TimeoutError:
        return "error: the host's name did not resolve in time"
    addresses = {ipaddress.ip_address(str(entry[4][0]).split("%")[0]) for entry in found}
    if addresses and all(address.is_loopback for address in addresses):
        return ""
    return "not checked: only loopback hosts are (BURNBOX_SINK_LINK_CHECK_ALLOW)"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"
