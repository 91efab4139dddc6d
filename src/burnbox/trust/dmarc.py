"""DMARC (RFC 7489): is the domain in From: the one that SPF or DKIM vouched for?

The From domain's policy is looked up at `_dmarc.<domain>`, then at its organizational
domain's (the Public Suffix List, from the `publicsuffixlist` package). The result is
`pass` when an SPF pass or a DKIM pass is aligned with From (the same organizational
domain; the same domain exactly where the policy says `s`), `fail` otherwise, `none`
when the domain publishes no policy, and the errors' words when DNS or the record fails.
Alignment is worked out even without a policy: the page's mark uses it (results.py).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from burnbox.trust.resolver import DnsFailure, Lookups

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

POLICIES = ("none", "quarantine", "reject")
DOMAINS_KEPT = 4096  # organizational domains worked out, the most recently used
# `Name <local@domain>` or a bare address, with nothing in the name that could hide a
# second address (quotes, commas, comments, groups): most From fields; the rest are
# parsed in full.
_PLAIN_FROM = re.compile(r"\s*(?:[^\"(),:;<>@\\]*<)?[^\s\"(),:;<>@\\]+@([^\s\"(),:;<>@\\]+?)>?\s*")


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str  # pass, fail, none, temperror, permerror
    from_domain: str  # "" when From has not exactly one address
    policy: str = ""  # p= of the record that applied ("" without one)
    aligned: bool = False  # an SPF or DKIM pass for the From domain, policy or not


@cache
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList  # 0.15 s and a few MiB, on first use

    return PublicSuffixList()


@lru_cache(maxsize=DOMAINS_KEPT)
def organizational(domain: str) -> str:
    """The registrable domain (`mail.example.co.uk` → `example.co.uk`)."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


def from_domain(value: str) -> str:
    """The domain of the one address in a From field ("" for none or several, which DMARC
    cannot judge: 6.6.1)."""
    plain = _PLAIN_FROM.fullmatch(value)
    if plain is not None and value.count("<") == value.count(">"):
        return plain.group(1).lower().rstrip(".")
    found = [address for _, address in email.utils.getaddresses([value]) if "@" in address]
    if len(found) != 1:
        return ""
    return found[0].rpartition("@")[2].strip().lower().rstrip(".")


def aligned(one: str, other: str, strict: bool) -> bool:
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    if not one or not other:
        return False
    return one == other if strict else organizational(one) == organizational(other)


async def evaluate(
    author: str, spf: tuple[str, str], dkim: list[tuple[str, str]], dns: Lookups
) -> Outcome:
    """`author`: the From domain; `spf`: (result, the domain it judged); `dkim`: (result,
    d=) for each signature."""
    if not author:
        return Outcome("permerror", "")
    try:
        record = await _record(author, dns)
    except DnsFailure:
        return Outcome("temperror", author)
    policy = _tags(record) if record else {}
    if record and policy.get("p") not in POLICIES and "rua" not in policy:
        return Outcome("permerror", author)
    strict_spf, strict_dkim = policy.get("aspf") == "s", policy.get("adkim") == "s"
    spf_aligned = spf[0] == "pass" and aligned(spf[1], author, strict_spf)
    dkim_aligned = any(r == "pass" and aligned(d, author, strict_dkim) for r, d in dkim)
    passed = spf_aligned or dkim_aligned
    if not record:
        return Outcome("none", author, aligned=passed)
    shown = policy.get("p", "none") if policy.get("p") in POLICIES else "none"
    return Outcome("pass" if passed else "fail", author, shown, passed)


async def _record(author: str, dns: Lookups) -> str:
    """The policy record for the From domain, or its organizational domain's; "" for
    none (or several, which count as none: 6.6.3)."""
    for domain in dict.fromkeys((author, organizational(author))):
        found = [
            text
            for text in await dns.query(f"_dmarc.{domain}", "TXT")
            if text.replace(" ", "").lower().startswith("v=dmarc1")
        ]
        if found:
            return found[0] if len(found) == 1 else ""
    return ""


def _tags(record: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in record.split(";"):
        name, equals, value = item.partition("=")
        if equals:
            found.setdefault(name.strip().lower(), value.strip().lower())
    return found
