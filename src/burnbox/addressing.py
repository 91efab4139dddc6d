"""Recipient addresses: parse, normalise once, and decide which domains we accept.

Normal form: lower-case local part in Unicode NFC, domain lower-case in its
IDNA A-label form. Temp-mail users type addresses by hand, so `Foo@x` and
`foo@x` are one inbox. Only dot-atom local parts are accepted: quoted local
parts are legal but are a classic smuggling and confusion vector, and no
disposable address needs one.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_ADDRESS = 254

# RFC 5322 atext, plus any non-ASCII code point (RFC 6531 UTF8-non-ascii).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+")
# The common case in one match: an ASCII dot-atom without the characters refused below.
_PLAIN_ASCII_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+\-=?^_{}~]+(?:\.[A-Za-z0-9#$&'*+\-=?^_{}~]+)*")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_DANGEROUS_LOCAL = ("/", "\\", "=?", "?=", "%", "!", "`", "|")


class AddressError(ValueError):
    """An address is malformed or unsafe; `reason` is safe to show the sender."""

    def __init__(self, reason: str, *, needs_utf8: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needs_utf8 = needs_utf8


@dataclass(frozen=True, slots=True)
class Address:
    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


@lru_cache(maxsize=4096)  # few domains recur; the IDNA codec is pure Python and slow
def normalise_domain(text: str) -> str:
    """Lower-case IDNA A-label form; raises AddressError."""
    domain = text.strip().rstrip(".")
    if not domain or len(domain) > MAX_DOMAIN:
        raise AddressError("bad domain length")
    if domain.startswith("[") or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in domain):
        raise AddressError("address literals and control characters are not accepted")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressError("domain is not a valid IDNA name") from None
    labels = ascii_domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressError("domain has an invalid label")
    return ascii_domain


def normalise_local(text: str) -> str:
    if (
        len(text) <= MAX_LOCAL
        and _PLAIN_ASCII_LOCAL.fullmatch(text)
        and "=?" not in text
        and "?=" not in text
    ):
        return text.lower()
    if not text or len(text.encode("utf-8")) > MAX_LOCAL:
        raise AddressError("local part is empty or longer than 64 octets")
    if text.startswith('"'):
        raise AddressError("quoted local parts are not accepted here")
    if text.startswith(".") or text.endswith(".") or ".." in text:
        raise AddressError("local part has a misplaced dot")
    if any(part in text for part in _DANGEROUS_LOCAL):
        raise AddressError("local part has characters that are not accepted here")
    if not all(_ATEXT.fullmatch(atom) for atom in text.split(".")):
        raise AddressError("local part has characters that are not allowed")
    local = unicodedata.normalize("NFC", text).lower()
    if any(
        unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cn", "Cs"}
        for ch in local
        if ord(ch) > 0x7F
    ):
        raise AddressError("local part has invisible or unassigned characters")
    return local


def parse_address(text: str) -> Address:
    """Parse a bare `local@domain` (no angle brackets) into its normal form."""
    if len(text.encode("utf-8", "surrogateescape")) > MAX_ADDRESS:
        raise AddressError("address is longer than 254 octets")
    local, at, domain = text.rpartition("@")
    if not at:
        raise AddressError("address has no domain")
    return Address(normalise_local(local), normalise_domain(domain))


def parse_path(path: str, *, utf8_allowed: bool) -> Address:
    """Parse an SMTP forward-path such as `<user@example.org>`.

    A source route (`<@relay:user@example.org>`) is accepted and ignored, as
    RFC 5321 section 4.1.1.3 asks. Non-ASCII needs the SMTPUTF8 parameter.
    """
    if not (path.startswith("<") and path.endswith(">")):
        raise AddressError("address must be enclosed in <>")
    inner = path[1:-1]
    if inner.startswith("@"):
        _route, colon, inner = inner.partition(":")
        if not colon:
            raise AddressError("malformed source route")
    if not inner.isascii() and not utf8_allowed:
        raise AddressError("non-ASCII address without SMTPUTF8", needs_utf8=True)
    return parse_address(inner)


class DomainPolicy:
    """Which domains burnbox accepts mail for: exact names and `*.parent` wildcards; with
    `catch_all` (sink mode), every domain, reserved names (RFC 2606: `.invalid`, `.test`,
    `.example`, `localhost`) included: QA suites send there on purpose."""

    def __init__(self, patterns: tuple[str, ...], *, catch_all: bool = False) -> None:
        exact: dict[str, None] = {}  # ordered: the first configured domain is the default
        parents: list[str] = []
        for pattern in patterns:
            if pattern.startswith("*."):
                parents.append("." + normalise_domain(pattern[2:]))
            else:
                exact[normalise_domain(pattern)] = None
        self._exact = tuple(exact)
        self._exact_set = frozenset(exact)
        self._parents = tuple(parents)
        self.patterns = patterns
        self.catch_all = catch_all

    def accepts(self, domain: str) -> bool:
        """`domain` must already be normalised."""
        if self.catch_all:
            return True
        return domain in self._exact_set or domain.endswith(self._parents)

    @property
    def creatable(self) -> tuple[str, ...]:
        """Domains at which a new inbox can be made (wildcards name no single domain)."""
        return self._exact or tuple(p[1:] for p in self._parents)


# Easy to read aloud and to type: no look-alike letters, no words that embarrass.
_ADJECTIVES = (
    "amber azure bold brave brisk calm clever cosy crisp dapper eager early fancy fast fierce "
    "fluffy frosty gentle glad golden grand happy hasty humble icy jolly keen kind lively lucky "
    "mellow merry mighty misty modest neat nimble noble plain polite proud quick quiet rapid "
    "rosy royal rustic shiny silent silver simple sleek snowy solar spry steady sunny swift tidy "
    "tiny vivid warm wild windy wise witty young zesty"
).split()
_NOUNS = (
    "acorn badger beacon birch bison canyon cedar comet coral crane daisy delta dingo dove "
    "eagle ember falcon fern finch fjord gecko glacier harbor hazel heron island jaguar kayak "
    "koala lagoon lark lemur lynx maple meadow meteor moose nebula newt oasis orca otter panda "
    "pebble pine planet plover puffin quail raven reef robin saturn sparrow summit tiger "
    "tulip valley walrus willow wombat yak zebra"
).split()


def random_local_part() -> str:
    """A readable, unguessable-enough local part such as `brisk-otter-4821`.

    About 17 bits of words and 13 of digits: an address is not a secret (the inbox
    token is), it only has to be unlikely to be taken and easy to type.
    """
    return (
        f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(9000) + 1000}"
    )
