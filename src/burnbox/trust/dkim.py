"""DKIM (RFC 6376, with RFC 8301's and RFC 8463's algorithms): does each signature on a
message verify against its domain's key?

Verified here, with `cryptography` for RSA and Ed25519 and hashlib for the hashes, rather
than with dkimpy: dkimpy does its RSA in pure Python, and measured here a 2 KB message
cost it 0.5 to 1 ms, more than burnbox spends storing one (bench/auth_ingest.py). dkimpy
stays the reference: tests/test_dkim.py signs with it (every canonicalization, l=, over-
signed headers, Ed25519) and checks both verifiers agree, on those and on the corpus.
Keys are parsed once per record text (an LRU), hashes fed straight from the message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from burnbox.trust.resolver import DnsFailure, Lookups

MAX_SIGNATURES = 5  # signatures verified per message; more are not looked at
MIN_RSA_BITS = 1024  # RFC 8301
KEYS_KEPT = 1000
_FIELD_START = re.compile(rb"\r\n(?![ \t])")
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n)")
_B_VALUE = re.compile(rb"(?<![A-Za-z0-9_])(b[ \t\r\n]*=)[^;]*")
_ODD_SPACE = re.compile(rb"[\r\n\x0b\x0c]")  # white space to bytes.split() but not WSP
_ALGORITHMS = {"rsa-sha256": ("rsa", "sha256"), "ed25519-sha256": ("ed25519", "sha256")}


class Unverifiable(Exception):
    """A signature that cannot be checked: `result` says how it ends (permerror, fail)."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verdict:
    """One signature's outcome, with what RFC 8601 reports of it."""

    result: str  # pass, fail, neutral, temperror, permerror
    domain: str  # d=
    selector: str  # s=
    b: str  # the first characters of b=, to tell signatures apart (header.b)
    reason: str = ""


def header_fields(section: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-cased name, the whole field as written) for each field of a header section
    (without its final CRLF), top to bottom."""
    fields = []
    for field in _FIELD_START.split(section):
        name = field.split(b":", 1)[0].strip().lower()
        if field and b":" in field:
            fields.append((name, field))
    return fields


def tags(value: bytes) -> dict[str, str]:
    """A tag=value list (3.2): names case-sensitive, white space around them ignored."""
    found: dict[str, str] = {}
    for item in value.decode("ascii", "replace").split(";"):
        if not item.strip():
            continue
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not _tag_name(name) or name in found:
            raise Unverifiable("permerror", "bad tag list")
        found[name] = text.strip()
    return found


def _tag_name(name: str) -> bool:
    """ALPHA *(ALPHA / DIGIT / "_"), without a regular expression: it runs for every tag
    of every signature."""
    return name[:1].isalpha() and name.isascii() and name.replace("_", "a").isalnum()


def _unfolded(value: str) -> bytes:
    """A base64 tag value without the white space folding put in it: bytes.split() drops
    what a \\s+ expression would, at a tenth of its cost on a 2048-bit b= value."""
    return b"".join(value.encode().split())


def relaxed_header(field: bytes) -> bytes:
    name, _, value = field.partition(b":")
    value = value.replace(b"\r\n", b"")
    if _ODD_SPACE.search(value) is None:  # bytes.split() then means WSP runs exactly
        value = b" ".join(value.split())
    else:
        value = _WSP_RUN.sub(b" ", value).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value


def canonical_body(body: bytes, relaxed: bool) -> bytes:
    if relaxed:
        if b" \r\n" in body or b"\t" in body or b"  " in body:
            body = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"", body))
        body = body.rstrip(b"\r\n")
        return body + b"\r\n" if body else b""
    return body.rstrip(b"\r\n") + b"\r\n"


class Keys:
    """Public keys parsed from their records' text, the most recently used kept."""

    def __init__(self) -> None:
        self._parsed: OrderedDict[str, tuple[str, Any, frozenset[str]]] = OrderedDict()

    def parse(self, record: str) -> tuple[str, Any, frozenset[str]]:
        """(key type, public key, acceptable hashes and flags). Raises Unverifiable."""
        found = self._parsed.get(record)
        if found is None:
            found = self._parsed[record] = _parse_key(record)
            while len(self._parsed) > KEYS_KEPT:
                self._parsed.popitem(last=False)
        self._parsed.move_to_end(record)
        return found


def _parse_key(record: str) -> tuple[str, Any, frozenset[str]]:
    found = tags(record.encode())
    if found.get("v", "DKIM1") != "DKIM1":
        raise Unverifiable("permerror", "bad key record")
    data = found.get("p")
    if data is None:
        raise Unverifiable("permerror", "no key")
    if not data:
        raise Unverifiable("fail", "key revoked")
    kind = found.get("k", "rsa")
    services = {item.strip() for item in found.get("s", "*").split(":")}
    if "*" not in services and "email" not in services:
        raise Unverifiable("permerror", "key not for email")
    try:
        raw = base64.b64decode(_unfolded(data), validate=True)
        key = _load_key(kind, raw)
    except (binascii.Error, ValueError, TypeError):
        raise Unverifiable("permerror", "bad key") from None
    hashes_allowed = found.get("h", "sha256").replace(" ", "").split(":")
    flags = {f"flag:{item.strip()}" for item in found.get("t", "").split(":") if item.strip()}
    return kind, key, frozenset({*hashes_allowed, *flags})


def _load_key(kind: str, raw: bytes) -> Any:
    if kind == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if kind != "rsa":
        raise ValueError(kind)
    try:
        key = serialization.load_der_public_key(raw)
    except ValueError:  # an RSAPublicKey (PKCS #1) rather than a SubjectPublicKeyInfo
        pem = base64.encodebytes(raw).decode()
        key = serialization.load_pem_public_key(
            f"-----BEGIN RSA PUBLIC KEY-----\n{pem}-----END RSA PUBLIC KEY-----\n".encode()
        )
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError("not an RSA key of 1024 bits or more")
    return key


class Verifier:
    """Verifies a message's signatures, sharing its parsed keys across messages."""

    def __init__(self) -> None:
        self.keys = Keys()

    async def verify(self, raw: bytes, dns: Lookups, now: float | None = None) -> list[Verdict]:
        section, _, body = raw.partition(b"\r\n\r\n")
        return await self.verify_fields(header_fields(section), body, dns, now)

    async def verify_fields(
        self,
        fields: list[tuple[bytes, bytes]],
        body: bytes,
        dns: Lookups,
        now: float | None = None,
    ) -> list[Verdict]:
        """Every signature among a header section's `fields` (header_fields), in order."""
        signatures = [field for name, field in fields if name == b"dkim-signature"]
        verdicts = []
        for field in signatures[:MAX_SIGNATURES]:
            verdicts.append(await self._one(field, fields, body, dns, now or time.time()))
        return verdicts

    async def _one(
        self,
        field: bytes,
        fields: list[tuple[bytes, bytes]],
        body: bytes,
        dns: Lookups,
        now: float,
    ) -> Verdict:
        signature: dict[str, str] = {}
        try:
            signature = tags(field.partition(b":")[2])
            _check_signature(signature, now)
            record = await self._record(signature, dns)
            kind, key, allowed = self.keys.parse(record)
            _check_key(signature, kind, allowed)
            _check_body(signature, body)
            _check_header(signature, field, fields, kind, key)
        except Unverifiable as problem:
            return _verdict(signature, problem.result, problem.reason)
        except DnsFailure:
            return _verdict(signature, "temperror", "key lookup failed")
        return _verdict(signature, "pass")

    async def _record(self, signature: dict[str, str], dns: Lookups) -> str:
        name = f"{signature['s']}._domainkey.{signature['d']}"
        for record in await dns.query(name, "TXT"):
            if "p=" in record:
                return record
        raise Unverifiable("permerror", "no key")


def _verdict(signature: dict[str, str], result: str, reason: str = "") -> Verdict:
    b = "".join(signature.get("b", "")[:64].split())
    return Verdict(result, signature.get("d", "").lower(), signature.get("s", ""), b[:8], reason)


def _check_signature(signature: dict[str, str], now: float) -> None:
    needed = ("v", "a", "b", "bh", "d", "h", "s")
    if any(name not in signature for name in needed) or signature["v"] != "1":
        raise Unverifiable("permerror", "missing tags")
    if signature["a"] not in _ALGORITHMS:
        raise Unverifiable("permerror", f"algorithm {signature['a']}")  # rsa-sha1: RFC 8301
    names = [name.strip().lower() for name in signature["h"].split(":")]
    if "from" not in names:
        raise Unverifiable("permerror", "From not signed")
    domain = signature["d"].lower()
    identity = signature.get("i", "@" + domain).rpartition("@")[2].lower()
    if identity != domain and not identity.endswith("." + domain):
        raise Unverifiable("permerror", "i= outside d=")
    if signature.get("q", "dns/txt").split(":")[0] != "dns/txt":
        raise Unverifiable("permerror", "query method")
    expires = signature.get("x", "")
    if expires.isdigit() and int(expires) < now:
        raise Unverifiable("fail", "expired")


def _check_key(signature: dict[str, str], kind: str, allowed: frozenset[str]) -> None:
    wanted_kind, digest = _ALGORITHMS[signature["a"]]
    if kind != wanted_kind or digest not in allowed:
        raise Unverifiable("permerror", "key does not fit the algorithm")
    if "flag:s" in allowed:
        identity = signature.get("i", "@" + signature["d"]).rpartition("@")[2].lower()
        if identity != signature["d"].lower():
            raise Unverifiable("permerror", "i= must be d= for this key")


def _canonicalizations(signature: dict[str, str]) -> tuple[bool, bool]:
    header, _, body = signature.get("c", "simple/simple").partition("/")
    body = body or "simple"
    if header not in ("simple", "relaxed") or body not in ("simple", "relaxed"):
        raise Unverifiable("permerror", "canonicalization")
    return header == "relaxed", body == "relaxed"


def _check_body(signature: dict[str, str], body: bytes) -> None:
    _, relaxed = _canonicalizations(signature)
    canonical = canonical_body(body, relaxed)
    length = signature.get("l")
    if length is not None:
        if not length.isdigit() or int(length) > len(canonical):
            raise Unverifiable("fail", "l= beyond the body")
        canonical = canonical[: int(length)]
    expected = _unfolded(signature["bh"])
    if base64.b64encode(hashlib.sha256(canonical).digest()) != expected:
        raise Unverifiable("fail", "body hash")


def _check_header(
    signature: dict[str, str],
    field: bytes,
    fields: list[tuple[bytes, bytes]],
    kind: str,
    key: Any,
) -> None:
    relaxed, _ = _canonicalizations(signature)
    used: set[int] = set()
    parts = []
    for name in signature["h"].split(":"):
        wanted = name.strip().lower().encode()
        for index in range(len(fields) - 1, -1, -1):  # bottom-up (5.4.2)
            if index not in used and fields[index][0] == wanted:
                used.add(index)
                chosen = fields[index][1]
                parts.append((relaxed_header(chosen) if relaxed else chosen) + b"\r\n")
                break
    unsigned = _B_VALUE.sub(lambda found: found.group(1), field, count=1)
    parts.append(relaxed_header(unsigned) if relaxed else unsigned)
    data = b"".join(parts)
    try:
        sent = base64.b64decode(_unfolded(signature["b"]), validate=True)
        if kind == "ed25519":  # not isinstance: an ABC's check, for every message
            key.verify(sent, hashlib.sha256(data).digest())
        else:
            key.verify(sent, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unverifiable("fail", "signature") from None


def summary(verdicts: list[Verdict]) -> str:
    """One word for all of a message's signatures: pass if one passes, else fail if one
    failed, else the first error, else none (no signature)."""
    results = [verdict.result for verdict in verdicts]
    for result in ("pass", "fail", "temperror", "permerror", "neutral"):
        if result in results:
            return result
    return "none"
