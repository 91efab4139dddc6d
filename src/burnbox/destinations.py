"""Where a webhook may be sent (SSRF defence): an http or https URL whose host resolves only
to public unicast addresses, or to addresses inside BURNBOX_WEBHOOK_ALLOW. The sender then
connects to the very address that was checked (a name is never resolved twice), so DNS
rebinding cannot point a checked name at an internal address.

Refused: loopback, private (RFC 1918, unique local), link-local (169.254.0.0/16, where cloud
metadata lives, and fe80::/10), multicast, unspecified, reserved, shared (100.64.0.0/10),
and the IPv4-mapped, 6to4 and Teredo forms of any of these.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2048
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(Exception):
    """`reason` is safe to show the registrant."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Destination:
    scheme: str
    host: str  # as written (the Host header and the TLS name)
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]  # what the host resolved to, all of them checked

    def url_for(self, address: str) -> str:
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_allow(cidrs: Sequence[str]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path and query) of an acceptable URL; RefusedDestination."""
    if len(url) > MAX_URL:
        raise RefusedDestination("the URL is too long")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise RefusedDestination("not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise RefusedDestination("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination("credentials in the URL are not allowed")
    if not parts.hostname:
        raise RefusedDestination("the URL has no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), target


def refusal(address: IpAddress, allow: Sequence[IpNetwork]) -> str | None:
    """Why `address` may not be connected to, or None."""
    if any(address in network for network in allow if network.version == address.version):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour, _teredo_client(address)):
            if embedded is not None:
                return refusal(embedded, allow)
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    ):
        return f"{address} is not a public address"
    return None


def _teredo_client(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    teredo = address.teredo
    return teredo[1] if teredo else None


async def resolve(url: str, allow: Sequence[IpNetwork]) -> Destination:
    """The URL's destination with every address its host resolves to, each allowed.
    Raises RefusedDestination."""
    scheme, host, port, target = split(url)
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            answers = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            raise RefusedDestination("the host does not resolve") from None
        found = [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]
    if not found:
        raise RefusedDestination("the host does not resolve")
    for address in found:
        why = refusal(address, allow)
        if why is not None:
            raise RefusedDestination(why)
    unique = tuple(dict.fromkeys(str(address) for address in found))
    return Destination(scheme, host, port, target, unique)
