"""Keeping abusive senders out of a public node: a message rate per client (an IPv6 client
counted by its /64, what one customer gets), DNS blocklists, and refused senders. Each
is off unless configured. No address, domain or IP is ever logged: callers count the
refusals by reason (metrics)."""

from __future__ import annotations

import asyncio
import ipaddress
from enum import Enum

from burnbox.ratelimit import RateLimiter
from burnbox.trust.resolver import DnsFailure, Resolver

LISTED = ipaddress.ip_network("127.0.0.0/8")  # what a blocklist answers for a listed client
# Answers some lists give for a query they refuse (an open resolver, a quota): not a listing.
LIST_ERRORS = ipaddress.ip_network("127.255.255.0/24")
BLOCKLIST_TIMEOUT = 2.0  # seconds a client's lookups may take before it is let through


class Refusal(Enum):
    RATE = "rate_limited"
    SENDER = "blocked_sender"


class Abuse:
    def __init__(
        self,
        resolver: Resolver,
        *,
        rate: tuple[int, float] | None,
        blocklists: tuple[str, ...],
        blocked_senders: tuple[str, ...],
    ) -> None:
        self._resolver = resolver
        self._rate = RateLimiter(*rate) if rate is not None else None
        self.blocklists = tuple(zone.strip(".").lower() for zone in blocklists)
        self._domains = {item.lower() for item in blocked_senders if "@" not in item}
        self._addresses = {item.lower() for item in blocked_senders if "@" in item}
        self.failed_open = 0  # lookups that did not answer in time (the client went through)

    def at_mail(self, client_ip: str, sender: str, now: float) -> Refusal | None:
        """Why a MAIL from this client and sender is refused (a refused sender first: it
        costs the client nothing of its rate), or None."""
        if self._blocked(sender):
            return Refusal.SENDER
        if self._rate is not None and self._rate.take(client_key(client_ip), now) is not None:
            return Refusal.RATE
        return None

    def _blocked(self, sender: str) -> bool:
        if not self._domains and not self._addresses:
            return False
        sender = sender.lower()
        domain = sender.rpartition("@")[2]
        parents = {".".join(domain.split(".")[n:]) for n in range(domain.count(".") + 1)}
        return (
            sender in self._addresses
            or domain in self._domains
            or any(f"*.{parent}" in self._domains for parent in parents)
        )

    async def listed(self, client_ip: str) -> bool | None:
        """Whether a blocklist lists the client: True, False, or None when none answered
        in time (let through, counted: a blocklist is never a reason to lose mail)."""
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        names = [f"{_reversed(address)}.{zone}" for zone in self.blocklists]
        try:
            async with asyncio.timeout(BLOCKLIST_TIMEOUT):
                answers = await asyncio.gather(*(self._resolver.query(n, "A") for n in names))
        except (DnsFailure, TimeoutError):
            self.failed_open += 1
            return None
        return any(_listing(record) for records in answers for record in records)


def client_key(client_ip: str) -> str:
    """Whose rate a message counts against: the address, or an IPv6 one's /64."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _reversed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.version == 4:
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def _listing(record: str) -> bool:
    try:
        answer = ipaddress.ip_address(record)
    except ValueError:
        return False
    return answer in LISTED and answer not in LIST_ERRORS
