"""DNS for the sender checks and the blocklists: dnspython's asyncio resolver (the system's
servers, or BURNBOX_DNS_SERVER), behind a cache of answers kept within their TTL.

Every check asks through a `Lookups` of its own: it counts the queries (a message may
cost at most MAX_LOOKUPS, whatever its records say) and may be cache-only, for the first
try at a message's checks, which must not wait for anything (checker.py). A resolver
that does not answer within its time is a `DnsFailure` (temperror), never a stall.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dns.asyncresolver

MAX_CACHED = 50_000  # names x types kept; the least recently used go first
MAX_TTL = 3600.0  # seconds an answer is kept at most, whatever its TTL says
NEGATIVE_TTL = 300.0  # seconds "no such name" or "no such record" is kept
QUERY_TIMEOUT = 2.0  # seconds one query may take (all of its tries)
MAX_LOOKUPS = 30  # queries one message's checks may make in all (SPF's 10 is its own)
Records = tuple[str, ...]


class DnsFailure(Exception):
    """The resolver did not answer (in time), or answered SERVFAIL: a temperror."""


class CacheMiss(Exception):
    """A cache-only lookup found nothing kept: the check must go to the network."""


class TooManyLookups(DnsFailure):
    """This message's checks have asked more than MAX_LOOKUPS queries: what is left of
    them ends as if DNS had failed (temperror)."""


class Resolver:
    """Cached queries. `server` is "host:port" or "[v6]:port", or None for the system's."""

    def __init__(self, server: str | None, *, timeout: float = QUERY_TIMEOUT) -> None:
        self._server = server
        self._timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[float, Records]] = OrderedDict()
        self._asking: dict[tuple[str, str], asyncio.Task[tuple[Records, float]]] = {}
        self.queries = 0  # sent to the network (what a test or a metric can watch)

    def cached(self, name: str, kind: str) -> Records | None:
        found = self.kept(name, kind)
        return None if found is None else found[1]

    def kept(self, name: str, kind: str) -> tuple[float, Records] | None:
        """(when it expires, on the monotonic clock; the records), if kept."""
        key = (name.lower().rstrip("."), kind)
        found = self._cache.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return found

    async def query(self, name: str, kind: str) -> Records:
        """The records of `kind` at `name` (TXT strings joined, addresses, MX as
        "preference exchange", PTR names); () for no such name or record. Raises
        DnsFailure.

        One query at a time per name and type (the others wait for it), each shielded:
        a caller that gives up (its budget ran out) leaves the query to end by its own
        timeout, which closes its socket; cancelled mid-flight, dnspython could leave one
        open (a leaked descriptor, and an event loop that cannot close)."""
        found = self.cached(name, kind)
        if found is not None:
            return found
        key = (name.lower().rstrip("."), kind)
        asking = self._asking.get(key)
        if asking is None:
            asking = self._asking[key] = asyncio.ensure_future(self._ask(name, kind))
            asking.add_done_callback(lambda done: self._answered(key, done))
        return (await asyncio.shield(asking))[0]

    def _answered(self, key: tuple[str, str], asked: asyncio.Task[tuple[Records, float]]) -> None:
        self._asking.pop(key, None)
        if not asked.cancelled() and asked.exception() is None:  # an error is only told
            records, ttl = asked.result()
            self._keep(key, records, ttl)

    async def close(self) -> None:
        """Let the queries in flight end (each within its own timeout)."""
        await asyncio.gather(*self._asking.values(), return_exceptions=True)

    async def _ask(self, name: str, kind: str) -> tuple[Records, float]:
        import dns.exception
        import dns.resolver

        self.queries += 1
        try:
            answer = await self._client().resolve(
                name, kind, search=False, raise_on_no_answer=False, lifetime=self._timeout
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return (), NEGATIVE_TTL
        except (dns.exception.DNSException, OSError) as error:
            raise DnsFailure(type(error).__name__) from None
        if answer.rrset is None:
            return (), NEGATIVE_TTL
        return tuple(_text(kind, rdata) for rdata in answer.rrset), float(answer.rrset.ttl)

    def _keep(self, key: tuple[str, str], records: Records, ttl: float) -> None:
        if ttl <= 0:
            return
        self._cache[key] = (time.monotonic() + min(ttl, MAX_TTL), records)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    def _client(self) -> dns.asyncresolver.Resolver:
        """Made on first use: dnspython's async resolver reads /etc/resolv.conf then, and
        a node with checks off never loads it."""
        if self._resolver is None:
            import dns.asyncresolver
            import dns.nameserver

            if self._server is None:
                self._resolver = dns.asyncresolver.Resolver()
            else:  # "host:port" or "[v6]:port" (settings_values.parse_dns_server)
                host, _, port = self._server.rpartition(":")
                self._resolver = dns.asyncresolver.Resolver(configure=False)
                self._resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host.strip("[]"), int(port))
                ]
            self._resolver.cache = None  # ours is in front of it
        return self._resolver


class Lookups:
    """One message's queries: counted, bounded, and cache-only if asked. `expires` is when
    the first of the answers used so far expires (monotonic): what was worked out from
    them holds until then."""

    def __init__(self, resolver: Resolver, *, cache_only: bool) -> None:
        self._resolver = resolver
        self.cache_only = cache_only
        self.count = 0
        self.expires = math.inf

    async def query(self, name: str, kind: str) -> Records:
        self.count += 1
        if self.count > MAX_LOOKUPS:
            raise TooManyLookups(name)
        found = self._resolver.kept(name, kind)
        if found is None and not self.cache_only:
            records = await self._resolver.query(name, kind)
            found = self._resolver.kept(name, kind) or (0.0, records)  # 0: not to be kept
        if found is None:
            raise CacheMiss(name)
        self.expires = min(self.expires, found[0])
        return found[1]


def _text(kind: str, rdata: object) -> str:
    if kind == "TXT":
        strings: list[bytes] = getattr(rdata, "strings", [])
        return b"".join(strings).decode("utf-8", "replace")
    if kind == "MX":
        exchange = str(getattr(rdata, "exchange", "")).rstrip(".")
        return f"{getattr(rdata, 'preference', 0)} {exchange}"
    if kind == "PTR":
        return str(getattr(rdata, "target", "")).rstrip(".")
    return str(rdata)
