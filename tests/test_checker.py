"""The checks of one message together (trust/checker.py), against a real DNS server on
loopback: what it keeps from one message for the next (SPF's results and DMARC's outcome)
holds only while the DNS answers it came from do, and the method results it hands the
server are what the stored text says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace

import dkim
import pytest

from burnbox.trust import kept, resolver
from burnbox.trust.checker import Arrival, Checked, Checker
from burnbox.trust.results import method_results
from tests.dns import DnsServer, Zone
from tests.keys import RSA_KEY

TTL = 60
ARRIVAL = Arrival("127.0.0.1", "mail.acme.test", "billing@acme.test")
MESSAGE = (
    b"From: Acme Billing <billing@acme.test>\r\nTo: someone@localhost\r\n"
    b"Subject: Your invoice\r\nMessage-ID: <1@acme.test>\r\n\r\nYour invoice is attached.\r\n"
)


class Clock:
    """The monotonic clock the resolver's cache and the kept results read: real, plus
    however far a test moves it."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    faked = SimpleNamespace(monotonic=found.monotonic, time=time.time)
    monkeypatch.setattr(resolver, "time", faked)
    monkeypatch.setattr(kept, "time", faked)
    return found


@pytest.fixture
def zone() -> Zone:
    found = Zone(ttl=TTL)
    found.add("acme.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    found.add("mail.acme.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    found.add("_dmarc.acme.test", "TXT", "v=DMARC1; p=reject")
    found.add("rsa._domainkey.acme.test", "TXT", RSA_KEY[1])
    return found


@pytest.fixture
def dns(zone: Zone) -> Iterator[DnsServer]:
    server = DnsServer(zone)
    yield server
    server.close()


def signed(message: bytes = MESSAGE) -> bytes:
    signature = dkim.sign(message, b"rsa", b"acme.test", RSA_KEY[0], include_headers=[b"from"])
    return bytes(signature) + message


def test_a_changed_policy_is_read_once_the_answer_it_replaces_expires(
    dns: DnsServer, zone: Zone, clock: Clock
) -> None:
    checker = Checker(resolver.Resolver(dns.address, timeout=1.0))
    raw = signed()
    first = asyncio.run(checker.check(ARRIVAL, raw))
    assert "dmarc=pass (p=reject, aligned)" in first.auth
    zone.records[("_dmarc.acme.test", "TXT")] = ["v=DMARC1; p=none"]
    zone.records[("acme.test", "TXT")] = ["v=spf1 -all"]

    clock.ahead = TTL - 5  # every answer still kept: so is what was worked out from them
    assert checker.now(ARRIVAL, raw) == first

    clock.ahead = TTL + 5  # they have all expired: nothing kept may outlive them
    assert checker.now(ARRIVAL, raw) is None
    later = asyncio.run(checker.check(ARRIVAL, raw))
    assert "dmarc=pass (p=none, aligned)" in later.auth
    assert "spf=fail smtp.mailfrom=acme.test" in later.auth
    assert later.results["spf"] == "fail"


def test_an_outcome_from_a_resolver_that_failed_is_not_kept(
    dns: DnsServer, zone: Zone, clock: Clock
) -> None:
    zone.failures.add("_dmarc.acme.test")
    checker = Checker(resolver.Resolver(dns.address, timeout=1.0))
    raw = signed()
    assert "dmarc=temperror" in asyncio.run(checker.check(ARRIVAL, raw)).auth
    zone.failures.clear()
    assert "dmarc=pass (p=reject, aligned)" in asyncio.run(checker.check(ARRIVAL, raw)).auth


@pytest.mark.parametrize(
    "raw",
    [
        signed(),
        signed().replace(b"attached", b"overdue"),  # the body changed after signing
        MESSAGE,  # no signature
        signed(MESSAGE.replace(b"billing@acme.test>", b"billing@bank.test>")),  # spoofed
    ],
    ids=["pass", "body-changed", "unsigned", "spoofed"],
)
def test_the_method_results_are_what_the_text_says(dns: DnsServer, raw: bytes) -> None:
    checker = Checker(resolver.Resolver(dns.address, timeout=1.0))
    found: Checked = asyncio.run(checker.check(ARRIVAL, raw))
    assert found.results == method_results(found.auth)
    again = checker.now(ARRIVAL, raw)
    assert again == found


def test_several_policy_records_count_as_none(dns: DnsServer, zone: Zone) -> None:
    """RFC 7489 6.6.3: a domain publishing two DMARC records has no policy, and its
    organizational domain's is not asked instead (the set found was not empty)."""
    raw = signed(MESSAGE.replace(b"billing@acme.test>", b"billing@news.acme.test>"))
    zone.add("_dmarc.news.acme.test", "TXT", "v=DMARC1; p=none")
    zone.add("_dmarc.news.acme.test", "TXT", "v=DMARC1; p=quarantine")
    found = asyncio.run(Checker(resolver.Resolver(dns.address, timeout=1.0)).check(ARRIVAL, raw))
    assert "dmarc=none (aligned) header.from=news.acme.test" in found.auth
    assert found.results["dmarc"] == "none"

    del zone.records[("_dmarc.news.acme.test", "TXT")]  # none there: acme.test's applies
    found = asyncio.run(Checker(resolver.Resolver(dns.address, timeout=1.0)).check(ARRIVAL, raw))
    assert "dmarc=pass (p=reject, aligned) header.from=news.acme.test" in found.auth
