"""The sender checks of one message, together: SPF for the MAIL FROM (or, for a bounce, the
HELO) identity and for the HELO name, every DKIM signature, DMARC for the From domain,
and ARC when the mail carries a chain; the RFC 8601 text that records them.

Two ways in. `now` tries them with only the answers the resolver keeps, and either
finishes at once (no DNS needed: the sender was seen lately) or says it cannot; it never
waits, so the deliverer can store the results with the message. `check` asks DNS, within
the time budget: a resolver that does not answer in time leaves `temperror`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
from collections.abc import Callable, Coroutine, Hashable
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from burnbox.trust import arc, dkim, dmarc, spf
from burnbox.trust.kept import Kept
from burnbox.trust.resolver import CacheMiss, Lookups, Resolver
from burnbox.trust.results import Results, method_results

BUDGET = 5.0  # seconds all of one message's checks may take
SPF_KEPT = 4096  # SPF results kept (client, sender, HELO)
DMARC_KEPT = 4096  # DMARC outcomes kept (From domain, SPF's and each signature's result)
_UNSAFE = re.compile(r'[^\x21-\x7e]|[;()"\\]')  # what a property value may not carry


class Arrival(NamedTuple):
    """What the SMTP session knew of a message's sender (a tuple: made for every message,
    at a third of a frozen dataclass's cost)."""

    client_ip: str
    helo: str
    mail_from: str  # the reverse path without its brackets; "" for a bounce


class Checked(NamedTuple):
    """One message's results: the RFC 8601 text stored with it, and each method's result
    (results.method_results), worked out where the checks ran so that the server only
    counts them."""

    auth: str
    results: dict[str, str]


def checked(auth: str) -> Checked:
    return Checked(auth, method_results(auth))


Worked = TypeVar("Worked")


class Checker:
    def __init__(self, resolver: Resolver, *, budget: float = BUDGET) -> None:
        self.resolver = resolver
        self._budget = budget
        self._verifier = dkim.Verifier()
        self._spf_kept: Kept[tuple[str, str, str, str]] = Kept(SPF_KEPT)
        self._dmarc_kept: Kept[dmarc.Outcome] = Kept(DMARC_KEPT)

    def now(self, arrival: Arrival, raw: bytes) -> Checked | None:
        """The results, if the answers the resolver keeps are all they need; else None."""
        return run_now(self._check(arrival, raw, Lookups(self.resolver, cache_only=True)))

    async def check(self, arrival: Arrival, raw: bytes) -> Checked:
        """The results, asking DNS; what has not finished within the budget is temperror."""
        try:
            async with asyncio.timeout(self._budget):
                return await self._check(arrival, raw, Lookups(self.resolver, cache_only=False))
        except TimeoutError:
            return checked(timed_out(arrival))

    async def _check(self, arrival: Arrival, raw: bytes, dns: Lookups) -> Checked:
        section, _, body = raw.partition(b"\r\n\r\n")
        fields = dkim.header_fields(section)
        ip = _address(arrival.client_ip)
        spf_result, spf_domain, spf_text, helo_text = await self._spf(arrival, ip, dns)
        verdicts = await self._verifier.verify_fields(fields, body, dns)
        signed = tuple((verdict.result, verdict.domain) for verdict in verdicts)
        author = dmarc.from_domain(_first(fields, b"from"))
        outcome = await self._dmarc(author, (spf_result, spf_domain), signed, dns)
        chain = await arc.verify(raw, section, dns)
        auth = Results(
            spf=spf_text,
            helo=helo_text,
            dkim=tuple(_dkim_text(verdict) for verdict in verdicts),
            dmarc=_dmarc_text(outcome),
            arc=f"arc={chain}",
        ).resinfo()
        return Checked(auth, _method_results(spf_result, signed, outcome.result, chain))

    async def _spf(
        self, arrival: Arrival, ip: spf.IP | None, dns: Lookups
    ) -> tuple[str, str, str, str]:
        """SPF's results, kept per client, sender and HELO while the answers they came
        from are: a sender's mail tends to come in runs, from the same few addresses."""
        key = (arrival.client_ip, arrival.mail_from, arrival.helo)
        return await _kept_while_valid(
            self._spf_kept, key, dns, lambda: _spf(arrival, ip, dns), _spf_keepable
        )

    async def _dmarc(
        self, author: str, spf_judged: tuple[str, str], signed: tuple[tuple[str, str], ...],
        dns: Lookups,
    ) -> dmarc.Outcome:  # fmt: skip
        """DMARC's outcome, kept for the same From domain, SPF result and signatures'
        results while the policy records it read are: the same runs of mail."""
        return await _kept_while_valid(
            self._dmarc_kept, (author, spf_judged, signed), dns,
            lambda: dmarc.evaluate(author, spf_judged, list(signed), dns), _dmarc_keepable,
        )  # fmt: skip


async def _kept_while_valid(
    kept: Kept[Worked],
    key: Hashable,
    dns: Lookups,
    work: Callable[[], Coroutine[Any, Any, Worked]],
    keepable: Callable[[Worked], bool],
) -> Worked:
    """What `work` works out for `key`: kept from an earlier message until the first of
    the DNS answers it came from expires, else worked out (and kept, if `keepable`)."""
    found = kept.get(key)
    if found is not None:
        return found
    before, dns.expires = dns.expires, math.inf
    found = await work()
    if keepable(found):
        kept.put(key, dns.expires, found)
    dns.expires = min(before, dns.expires)
    return found


def _spf_keepable(found: tuple[str, str, str, str]) -> bool:
    """A temperror is kept for no message: the next may find the resolver answering."""
    return "temperror" not in found[2] + found[3]


def _dmarc_keepable(found: dmarc.Outcome) -> bool:
    return found.result != "temperror"


def _method_results(
    spf_result: str, signed: tuple[tuple[str, str], ...], dmarc_result: str, chain: str
) -> dict[str, str]:
    """What results.method_results would read back from the text, without reading it
    (the check process's share of the cost of each message)."""
    words = [result for result, _ in signed]
    signatures = next((w for w in ("pass", "fail") if w in words), words[0] if words else "none")
    return {"spf": spf_result, "dkim": signatures, "dmarc": dmarc_result, "arc": chain}


def run_now(checks: Coroutine[Any, Any, Checked]) -> Checked | None:
    """Run a check that, cache-only, never waits: done at once, or None at the first
    answer it would have to ask for."""
    try:
        checks.send(None)
    except StopIteration as done:
        found: Checked = done.value
        return found
    except CacheMiss:
        return None
    checks.close()  # it waited on something after all: the full check will do it
    return None


async def _spf(arrival: Arrival, ip: spf.IP | None, dns: Lookups) -> tuple[str, str, str, str]:
    """(result, the domain judged, its resinfo, the HELO check's resinfo or "")."""
    helo = arrival.helo.strip("[]") if arrival.helo else ""
    domain = arrival.mail_from.rpartition("@")[2] if arrival.mail_from else helo
    identity = "smtp.mailfrom" if arrival.mail_from else "smtp.helo"
    if ip is None:
        return "none", domain, f"spf=none {identity}={_safe(domain)}", ""
    sender = arrival.mail_from or f"postmaster@{helo}"
    result = await spf.Evaluation(dns, ip, sender, helo).check_host(domain)
    text = f"spf={result} {identity}={_safe(domain)}"
    helo_text = ""
    if arrival.mail_from and spf.valid_domain(helo):
        checked = await spf.Evaluation(dns, ip, f"postmaster@{helo}", helo).check_host(helo)
        helo_text = f"spf={checked} smtp.helo={_safe(helo)}"
    return result, domain, text, helo_text


def _dkim_text(verdict: dkim.Verdict) -> str:
    reason = f" ({verdict.reason})" if verdict.reason else ""
    return (
        f"dkim={verdict.result}{reason} header.d={_safe(verdict.domain)} "
        f"header.s={_safe(verdict.selector)} header.b={_safe(verdict.b)}"
    )


def _dmarc_text(outcome: dmarc.Outcome) -> str:
    notes = [f"p={outcome.policy}"] if outcome.policy else []
    if outcome.aligned:
        notes.append("aligned")
    comment = f" ({', '.join(notes)})" if notes else ""
    author = f" header.from={_safe(outcome.from_domain)}" if outcome.from_domain else ""
    return f"dmarc={outcome.result}{comment}{author}"


def timed_out(arrival: Arrival) -> str:
    identity = "smtp.mailfrom" if arrival.mail_from else "smtp.helo"
    domain = arrival.mail_from.rpartition("@")[2] if arrival.mail_from else arrival.helo
    return Results(
        spf=f"spf=temperror {identity}={_safe(domain)}",
        dkim=("dkim=temperror",),
        dmarc="dmarc=temperror",
        arc="arc=temperror",
    ).resinfo()


def _first(fields: list[tuple[bytes, bytes]], name: bytes) -> str:
    for found, field in fields:
        if found == name:
            return field.partition(b":")[2].decode("utf-8", "replace")
    return ""


@lru_cache(maxsize=4096)  # a client sends many messages
def _address(text: str) -> spf.IP | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)  # the same domains and selectors, message after message
def _safe(text: str) -> str:
    """A property value as RFC 8601 may carry it: no spaces, semicolons or controls."""
    return _UNSAFE.sub("", text)[:255]
