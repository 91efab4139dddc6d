"""DKIM verification against dkimpy, the reference: messages signed with dkimpy (keys made
at run time, published on a real DNS server on loopback) must verify with burnbox's
verifier exactly when they verify with dkimpy's, and fail in the same cases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import dkim
import pytest

from burnbox.trust import dkim as ours
from burnbox.trust.resolver import Lookups, Resolver
from tests.dns import DnsServer, Zone
from tests.keys import ED_KEY, RSA_KEY

MESSAGE = (
    b"From: Acme Billing <billing@acme.test>\r\n"
    b"To: someone@localhost\r\n"
    b"Subject: Your  invoice\t is ready\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@acme.test>\r\n"
    b"\r\n"
    b"Hello,  \r\n\r\nyour invoice\t\tis attached.   \r\nBye\r\n\r\n\r\n"
)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    zone = Zone()
    zone.add("rsa._domainkey.acme.test", "TXT", RSA_KEY[1])
    zone.add("ed._domainkey.acme.test", "TXT", ED_KEY[1])
    zone.add("revoked._domainkey.acme.test", "TXT", "v=DKIM1; k=rsa; p=")
    zone.add("sha1only._domainkey.acme.test", "TXT", RSA_KEY[1] + "; h=sha1")
    zone.timeouts.add("slow._domainkey.acme.test")
    server = DnsServer(zone)
    yield server
    server.close()


def sign(message: bytes, selector: str = "rsa", **options: object) -> bytes:
    private = ED_KEY[0] if selector == "ed" else RSA_KEY[0]
    headers = options.pop("headers", [b"from", b"to", b"subject", b"date", b"message-id"])
    signature = dkim.sign(
        message,
        selector.encode(),
        b"acme.test",
        private,
        include_headers=headers,
        **options,
    )
    return bytes(signature) + message


def verify_ours(server: DnsServer, message: bytes) -> list[ours.Verdict]:
    lookups = Lookups(Resolver(server.address, timeout=0.5), cache_only=False)
    return asyncio.run(ours.Verifier().verify(message, lookups))


def verify_dkimpy(server: DnsServer, message: bytes) -> bool:
    zone = server.zone

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        key = (name.decode() if isinstance(name, bytes) else name).lower().rstrip(".")
        values = zone.records.get((key, "TXT"), [])
        return values[0].encode() if values else b""

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


@pytest.mark.parametrize(
    "options",
    [
        {"canonicalize": (b"simple", b"simple")},
        {"canonicalize": (b"relaxed", b"relaxed")},
        {"canonicalize": (b"relaxed", b"simple")},
        {"canonicalize": (b"simple", b"relaxed")},
        {"length": True},
        {"headers": [b"from", b"from", b"subject", b"subject", b"to", b"x-not-there"]},
        {"selector": "ed", "signature_algorithm": b"ed25519-sha256"},
        {"identity": b"billing@mail.acme.test"},
    ],
    ids=["simple", "relaxed", "relaxed-simple", "simple-relaxed", "l", "oversigned", "ed25519",
         "i"],
)  # fmt: skip
def test_what_dkimpy_signs_verifies(dns: DnsServer, options: dict[str, object]) -> None:
    selector = str(options.pop("selector", "rsa"))
    signed = sign(MESSAGE, selector, **options)
    assert verify_dkimpy(dns, signed)
    (verdict,) = verify_ours(dns, signed)
    assert verdict.result == "pass", verdict
    assert (verdict.domain, verdict.selector) == ("acme.test", selector)
    # A body changed after signing, and a signed header changed: both fail, for both.
    for changed in (
        signed.replace(b"your invoice", b"your refund"),
        signed.replace(b"Subject: Your  invoice", b"Subject: Your  refund"),
    ):
        assert not verify_dkimpy(dns, changed)
        (verdict,) = verify_ours(dns, changed)
        assert verdict.result == "fail", verdict


def test_white_space_that_relaxed_forgives_still_passes(dns: DnsServer) -> None:
    signed = sign(MESSAGE, canonicalize=(b"relaxed", b"relaxed"))
    respaced = signed.replace(b"Subject: Your  invoice", b"Subject:   Your invoice ").replace(
        b"attached.   \r\n", b"attached.\r\n"
    )
    assert verify_dkimpy(dns, respaced)
    assert [verdict.result for verdict in verify_ours(dns, respaced)] == ["pass"]


def test_with_l_appended_text_still_passes(dns: DnsServer) -> None:
    signed = sign(MESSAGE, length=True)
    appended = signed + b"Appended by a list.\r\n"
    assert verify_dkimpy(dns, appended)
    assert [verdict.result for verdict in verify_ours(dns, appended)] == ["pass"]


@pytest.mark.parametrize(
    ("selector", "options", "result"),
    [
        ("revoked", {}, "fail"),
        ("missing", {}, "permerror"),
        ("slow", {}, "temperror"),
        ("sha1only", {}, "permerror"),  # the key allows only SHA-1: RFC 8301 refuses it
        ("rsa", {"signature_algorithm": b"rsa-sha1"}, "permerror"),
    ],
)
def test_keys_that_cannot_verify(
    dns: DnsServer, selector: str, options: dict[str, object], result: str
) -> None:
    signed = sign(MESSAGE, "rsa", **options).replace(b"s=rsa;", f"s={selector};".encode())
    (verdict,) = verify_ours(dns, signed)
    assert verdict.result == result, verdict


def test_several_signatures_and_none(dns: DnsServer) -> None:
    twice = sign(sign(MESSAGE, "rsa"), "ed", signature_algorithm=b"ed25519-sha256")
    assert [verdict.result for verdict in verify_ours(dns, twice)] == ["pass", "pass"]
    broken = twice.replace(b"b=", b"b=AAAA", 1)  # the first (the Ed25519 one) damaged
    verdicts = verify_ours(dns, broken)
    assert sorted(verdict.result for verdict in verdicts) == ["fail", "pass"]
    assert ours.summary(verdicts) == "pass"
    assert ours.summary([]) == "none"
    assert verify_ours(dns, MESSAGE) == []


def test_a_signature_that_does_not_sign_from_is_refused(dns: DnsServer) -> None:
    signed = sign(MESSAGE, headers=[b"from", b"subject"])  # dkimpy signs nothing without it
    (verdict,) = verify_ours(dns, signed.replace(b"h=from : subject", b"h=subject"))
    assert (verdict.result, verdict.reason) == ("permerror", "From not signed")
