"""ARC (RFC 8617): does the chain of custody that forwarders added verify? Only for mail
that carries one, which is rare, so dkimpy does it (its arc_verify), in a thread, with its
DNS asked of the event loop's resolver (and so cached and bounded as every other query)."""

from __future__ import annotations

import asyncio

from burnbox.trust.resolver import QUERY_TIMEOUT, CacheMiss, DnsFailure, Lookups

RESULTS = ("pass", "fail", "none")


def carries_chain(section: bytes) -> bool:
    return b"arc-seal" in section.lower()


async def verify(raw: bytes, section: bytes, dns: Lookups) -> str:
    """pass, fail or none (no chain), temperror when DNS failed, permerror otherwise."""
    if not carries_chain(section):
        return "none"
    if dns.cache_only:
        raise CacheMiss("ARC is checked in the background")
    import dkim  # type: ignore[import-untyped]  # on first use: most nodes never see a chain

    loop = asyncio.get_running_loop()

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        text = name.decode() if isinstance(name, bytes) else name
        asked = asyncio.run_coroutine_threadsafe(dns.query(text.rstrip("."), "TXT"), loop)
        records = asked.result(QUERY_TIMEOUT * 2)
        return records[0].encode() if records else b""

    try:
        chain, _, _ = await asyncio.to_thread(dkim.arc_verify, raw, dnsfunc=dnsfunc)
    except (DnsFailure, TimeoutError):
        return "temperror"
    except Exception:  # dkimpy's own errors on a malformed chain
        return "permerror"
    result = chain.decode() if isinstance(chain, bytes) else str(chain)
    return result if result in RESULTS else "permerror"
