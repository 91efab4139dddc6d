"""SPF (RFC 7208): may this client IP send mail for this domain?

`check_host` evaluates a domain's record over the resolver, asynchronously. Written here
because pyspf, the reference implementation, is synchronous: in threads, a slow resolver
would hold a thread per check and bound the cold checks of a public node (mail from new
senders, which is most mail) to the thread count. It keeps the RFC's bounds: at most 10
terms that query DNS, 2 void lookups, 10 MX or PTR names, and the result words of RFC
8601. tests/test_spf.py runs the RFC 7208 test suite (the openspf project's, as pyspf
ships it) against it, over a real DNS server.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from burnbox.trust.resolver import DnsFailure, Lookups

MAX_TERMS = 10  # terms that query DNS (include, a, mx, ptr, exists, redirect)
MAX_VOIDS = 2  # queries that found no such name or no records
MAX_NAMES = 10  # MX exchanges, or PTR names, looked at per term
MAX_DOMAIN = 253
RECORDS_KEPT = 4096  # parsed records kept, the most recently used
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_CIDR = re.compile(r"^(?P<spec>.*?)(?:/(?P<four>0|[1-9]\d?))?(?://(?P<six>0|[1-9]\d{0,2}))?$")
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9._-]*)=(.*)$", re.DOTALL)
_MACRO = re.compile(r"%(?:\{([A-Za-z])(\d*)(r?)([.\-+,/_=]*)\}|(.))", re.IGNORECASE)
_TOPLABEL = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9-]*[A-Za-z0-9])?$")
_EXP_ONLY = frozenset("crt")


class PermError(Exception):
    """The record is broken, or its evaluation went past a bound: permerror."""


@dataclass(frozen=True, slots=True)
class Term:
    qualifier: str  # the result if it matches
    name: str  # a mechanism's name
    spec: str  # its domain-spec or network, as written ("" for none)
    four: int = 32
    six: int = 128
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4, ip6


@dataclass(frozen=True, slots=True)
class Record:
    terms: tuple[Term, ...]
    redirect: str | None


def valid_domain(domain: str) -> bool:
    """A name check_host() looks up (RFC 7208 4.3): labels of 1-63 characters, at least
    two of them (a trailing dot aside)."""
    labels = domain.rstrip(".").split(".")
    return (
        0 < len(domain) <= MAX_DOMAIN
        and len(labels) >= 2
        and all(0 < len(label) <= 63 for label in labels)
    )


@lru_cache(maxsize=RECORDS_KEPT)
def parse(text: str) -> Record:
    """A "v=spf1" record's terms; PermError for any syntax error anywhere (4.6), and for
    anything but printable US-ASCII and spaces (3.1, 4.6.1). The few records a node sees
    most are parsed once: a busy sender's mail all asks for the same one."""
    if not text.isascii() or any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise PermError("not printable ASCII")
    terms: list[Term] = []
    modifiers: dict[str, str] = {}
    for word in text.split(" ")[1:]:
        if not word:
            continue
        found = _MODIFIER.match(word)
        if found and found.group(1).lower() not in MECHANISMS:
            name, value = found.group(1).lower(), found.group(2)
            if name in modifiers and name in ("redirect", "exp"):
                raise PermError(f"two {name} modifiers")
            if name in ("redirect", "exp"):
                check_domain_spec(value)
            else:
                check_macros(value, domain=False, exp=False)
            modifiers[name] = value
            continue
        terms.append(_term(word))
    return Record(tuple(terms), modifiers.get("redirect"))


def _term(word: str) -> Term:
    qualifier = QUALIFIERS.get(word[0])
    body = word[1:] if qualifier else word
    name, colon, rest = body.partition(":")
    if "/" in name and name.split("/")[0].lower() in ("a", "mx"):
        name, rest, colon = name.split("/")[0], body[len(name.split("/")[0]) :], ""
    name = name.lower()
    if name not in MECHANISMS:
        raise PermError(f"unknown mechanism {name}")
    if name in ("ip4", "ip6"):
        return _network(qualifier or "pass", name, rest if colon else None)
    if name in ("a", "mx"):
        return _with_cidr(qualifier or "pass", name, rest, bool(colon))
    if name == "all":
        if colon or rest:
            raise PermError("all takes nothing")
        return Term(qualifier or "pass", name, "")
    if name == "ptr" and not colon:
        return Term(qualifier or "pass", name, "")
    if not colon or not rest:  # include, exists, and ptr: with ":" a domain-spec follows
        raise PermError(f"{name} needs a domain")
    check_domain_spec(rest)
    return Term(qualifier or "pass", name, rest)


def _with_cidr(qualifier: str, name: str, rest: str, colon: bool) -> Term:
    found = _CIDR.match(rest)
    if found is None:
        raise PermError("bad prefix length")
    spec = found.group("spec")
    four, six = int(found.group("four") or 32), int(found.group("six") or 128)
    if four > 32 or six > 128 or (colon and not spec) or (not colon and spec):
        raise PermError("bad prefix length")
    if spec:
        check_domain_spec(spec)
    return Term(qualifier, name, spec, four, six)


def _network(qualifier: str, name: str, rest: str | None) -> Term:
    if not rest:
        raise PermError(f"{name} needs a network")
    address, slash, length = rest.partition("/")
    limit = 32 if name == "ip4" else 128
    if slash and not re.fullmatch(r"0|[1-9]\d{0,2}", length):
        raise PermError("bad prefix length")
    bits = int(length) if slash else limit
    try:
        network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    except ValueError:
        raise PermError(f"bad {name} network") from None
    if network.version != (4 if name == "ip4" else 6) or bits > limit:
        raise PermError(f"bad {name} network")
    return Term(qualifier, name, str(network), network=network)


def check_domain_spec(spec: str) -> None:
    """A domain-spec ends in a top label that is not all digits, or in a macro."""
    check_macros(spec, domain=True, exp=False)
    if spec.endswith("}"):
        return
    labels = spec.rstrip(".").split(".")
    if len(labels) < 2 or not _TOPLABEL.match(labels[-1]):
        raise PermError("bad domain")


def check_macros(text: str, *, domain: bool, exp: bool) -> None:
    for found in _MACRO.finditer(text):
        letter, digits, literal = found.group(1), found.group(2), found.group(5)
        if literal is not None and literal not in "%_-":
            raise PermError("bad macro")
        if letter is not None:
            if letter.lower() not in "slodiphvcrt" or (letter.lower() in _EXP_ONLY and not exp):
                raise PermError("bad macro letter")
            if digits == "0" or (digits and int(digits) > 128):
                raise PermError("bad macro digits")
    if "%" in _MACRO.sub("", text) or (domain and not text):
        raise PermError("bad macro")


class Evaluation:
    """One check_host() for one message: its client, its sender, its bounds."""

    def __init__(self, dns: Lookups, ip: IP, sender: str, helo: str) -> None:
        self.dns = dns
        self.ip = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        local, _, domain = sender.rpartition("@")
        self.sender = f"{local or 'postmaster'}@{domain}"
        self.helo = helo
        self.terms = 0
        self.voids = 0

    async def check_host(self, domain: str) -> str:
        """pass, fail, softfail, neutral, none, temperror or permerror."""
        try:
            return await self._check(domain.rstrip("."), 0)
        except PermError:
            return "permerror"
        except DnsFailure:
            return "temperror"

    async def _check(self, domain: str, depth: int) -> str:
        if depth > MAX_TERMS or not valid_domain(domain):
            return "none"
        found = [r for r in await self._query(domain, "TXT") if _is_spf(r)]
        if not found:
            return "none"
        if len(found) > 1:
            raise PermError("two records")
        record = parse(found[0])
        for term in record.terms:
            if await self._matches(term, domain, depth):
                return term.qualifier
        if record.redirect is None:
            return "neutral"
        self._count_term()
        target = await self.expand(record.redirect, domain)
        result = await self._check(target, depth + 1) if valid_domain(target) else "none"
        if result == "none":
            raise PermError("redirect to a domain without SPF")
        return result

    async def _matches(self, term: Term, domain: str, depth: int) -> bool:
        name = term.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            return term.network is not None and self.ip in term.network
        self._count_term()
        target = await self.expand(term.spec, domain) if term.spec else domain
        if name == "include":
            return await self._include(target, depth)
        if name == "exists":
            return bool(await self._void_counted(target, "A"))
        if name == "a":
            return await self._any_address(target, term)
        if name == "mx":
            return await self._mx(target, term)
        return await self._ptr(target)

    async def _include(self, target: str, depth: int) -> bool:
        result = await self._check(target, depth + 1) if valid_domain(target) else "none"
        if result in ("none", "permerror"):
            raise PermError("include of a domain without a good record")
        if result == "temperror":
            raise DnsFailure(target)
        return result == "pass"

    async def _any_address(self, target: str, term: Term, *, counted: bool = True) -> bool:
        kind, bits = ("A", term.four) if self.ip.version == 4 else ("AAAA", term.six)
        found = await (self._void_counted(target, kind) if counted else self._query(target, kind))
        return any(_within(self.ip, address, bits) for address in found)

    async def _mx(self, target: str, term: Term) -> bool:
        exchanges = [line.split(" ", 1)[-1] for line in await self._void_counted(target, "MX")]
        if len(exchanges) > MAX_NAMES:
            raise PermError("too many MX names")
        for exchange in exchanges:
            if await self._any_address(exchange, term, counted=False):
                return True
        return False

    async def _ptr(self, target: str) -> bool:
        try:
            name = await self.validated_name(target)
        except DnsFailure:
            return False  # 5.5: a DNS error here is no match
        return name is not None

    async def validated_name(self, target: str | None) -> str | None:
        """A PTR name of the client whose addresses include it (and, given a target, that
        is it or under it)."""
        names = await self._void_counted(_reverse_name(self.ip), "PTR")
        for name in names[:MAX_NAMES]:
            if target is not None and not _under(name, target):
                continue
            kind = "A" if self.ip.version == 4 else "AAAA"
            try:
                addresses = await self._query(name, kind)
            except DnsFailure:
                continue
            if any(ipaddress.ip_address(a) == self.ip for a in addresses if _is_address(a)):
                return name
        return None

    async def _query(self, name: str, kind: str) -> tuple[str, ...]:
        if not valid_domain(name):
            return ()
        return await self.dns.query(name, kind)

    async def _void_counted(self, name: str, kind: str) -> tuple[str, ...]:
        found = await self._query(name, kind)
        if not found:
            self.voids += 1
            if self.voids > MAX_VOIDS:
                raise PermError("too many void lookups")
        return found

    def _count_term(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise PermError("too many DNS terms")

    async def expand(self, spec: str, domain: str) -> str:
        """A domain-spec with its macros expanded (7.3), shortened from the left to 253."""
        pointer = "unknown"
        if re.search(r"%\{p", spec, re.IGNORECASE):
            pointer = await self._pointer(domain)
        expanded = _MACRO.sub(lambda found: self._macro(found, domain, pointer), spec)
        expanded = expanded.rstrip(".")
        while len(expanded) > MAX_DOMAIN and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded

    async def _pointer(self, domain: str) -> str:
        """%{p}: a validated name of the client, under <domain> if it has one such
        (7.3); "unknown" when there is none, or DNS fails."""
        try:
            return (
                await self.validated_name(domain) or await self.validated_name(None) or ("unknown")
            )
        except DnsFailure:
            return "unknown"

    def _macro(self, found: re.Match[str], domain: str, pointer: str) -> str:
        literal = found.group(5)
        if literal is not None:
            return {"%": "%", "_": " ", "-": "%20"}[literal]
        letter, digits, reverse, delimiters = found.group(1, 2, 3, 4)
        value = self._macro_value(letter.lower(), domain, pointer)
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-int(digits) :]
        text = ".".join(parts)
        return quote(text, safe="") if letter.isupper() else text

    def _macro_value(self, letter: str, domain: str, pointer: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        values = {
            "s": self.sender,
            "l": local,
            "o": sender_domain,
            "d": domain,
            "h": self.helo,
            "v": "in-addr" if self.ip.version == 4 else "ip6",
            "i": _dotted(self.ip),
            "p": pointer,
        }
        return values.get(letter, "")


def _is_spf(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _within(ip: IP, address: str, bits: int) -> bool:
    try:
        return ip in ipaddress.ip_network(f"{address}/{bits}", strict=False)
    except ValueError:
        return False


def _under(name: str, target: str) -> bool:
    name, target = name.lower().rstrip("."), target.lower().rstrip(".")
    return name == target or name.endswith("." + target)


def _dotted(ip: IP) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def _reverse_name(ip: IP) -> str:
    return ip.reverse_pointer
