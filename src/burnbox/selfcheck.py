"""Before a node says "ready": ask its own listeners, as a client would, whether they answer.

A bound socket proves nothing: the kernel accepts connections on it even while the server
behind it is dead. So the SMTP listener must send its 220 greeting, and the HTTP server must
answer GET /healthz with 200, on the addresses a client would use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

ANSWER_TIMEOUT = 10.0  # seconds a listener may take to answer its first client


class NotAnswering(Exception):
    """A listener accepted the connection but did not answer as it should."""


def reachable_host(host: str) -> str:
    """Where a client on this machine reaches a listener bound to `host`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name: connect to it as given
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


async def _exchange(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(reachable_host(host), port)
    try:
        if request:
            writer.write(request)
            await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def smtp_answers(host: str, port: int) -> None:
    line = await asyncio.wait_for(_exchange(host, port, b""), ANSWER_TIMEOUT)
    if not line.startswith(b"220"):
        raise NotAnswering("the SMTP listener did not greet")


async def http_answers(host: str, port: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: burnbox\r\nConnection: close\r\n\r\n"
    line = await asyncio.wait_for(_exchange(host, port, request), ANSWER_TIMEOUT)
    if line.split(b" ")[1:2] != [b"200"]:
        raise NotAnswering("the HTTP server did not answer /healthz")
