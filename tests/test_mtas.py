"""Real MTAs relaying a mixed batch to burnbox, over plain SMTP and STARTTLS: every accepted
message stored exactly once and byte for byte (apart from the two Received: lines, the
MTA's and ours), the one foreign recipient bounced alone."""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.dns import DnsServer, Zone
from tests.helpers import Running, wait_for_checks, without_received
from tests.mtas import Exim, Postfix

SENDER = "sender@localhost"  # where the bounce for the foreign recipient comes back
FOREIGN = "someone@foreign.test"
MANY = [f"many{number}@localhost" for number in range(25)]


@dataclass(frozen=True)
class Mail:
    name: str
    recipients: list[str]
    raw: bytes
    options: list[str]


def headers(to: str, subject: str, number: int) -> bytes:
    return (
        f"From: Sender <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 30 Nov 2026 12:00:0{number} +0000\r\n"
        f"Message-ID: <mixed-{number}@client.test>\r\n"
    ).encode()


def attached_mail() -> Mail:
    attachment = base64.encodebytes(bytes(range(256)) * 4096).replace(b"\n", b"\r\n")  # 1 MB
    return Mail(
        "1 MB attachment",
        ["one@localhost"],
        headers("one@localhost", "attached", 2)
        + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=big.bin\r\n\r\n" + attachment + b"--b--\r\n",
        [],
    )


def batch() -> list[Mail]:
    return [
        Mail(
            "small",
            ["one@localhost"],
            headers("one@localhost", "small", 1) + b"\r\nA short one.\r\n",
            [],
        ),
        attached_mail(),
        Mail(
            "8-bit",
            ["eight@localhost"],
            headers("eight@localhost", "8-bit body", 3)
            + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + "Grüße aus Köln, ½ € für dich.\r\n".encode(),
            ["BODY=8BITMIME"],
        ),
        Mail(
            "UTF-8 addresses",
            ["jörg@localhost"],
            headers("jörg@localhost", "Ünïcödé everywhere", 4)
            + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "Hallo Jörg.\r\n".encode(),
            ["SMTPUTF8", "BODY=8BITMIME"],
        ),
        Mail(
            "many recipients",
            MANY,
            headers("undisclosed-recipients:;", "to many", 5) + b"\r\nTo each of you.\r\n",
            [],
        ),
        Mail(
            "one foreign recipient",
            ["mixed@localhost", FOREIGN],
            headers("mixed@localhost", "one goes nowhere", 6) + b"\r\nHalf of it.\r\n",
            [],
        ),
    ]


MTAS: dict[str, Callable[..., Postfix | Exim]] = {"postfix": Postfix, "exim": Exim}


@pytest.fixture(params=["postfix", "exim"])
def mta_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    """A DNS server that knows nothing: the sender checks run (and find none of the
    senders' records), as on a public node."""
    server = DnsServer(Zone())
    yield server
    server.close()


@pytest.fixture(params=[False, True], ids=["plain", "starttls"])
def relay(
    request: pytest.FixtureRequest,
    mta_name: str,
    start_burnbox: Callable[..., Running],
    certificate: tuple[str, str],
    dns: DnsServer,
) -> Iterator[tuple[Postfix | Exim, Running, bool]]:
    cert, key = certificate
    # With the sender checks on: they must change nothing of what is stored, nor delay it.
    server = start_burnbox(tls_cert=cert, tls_key=key, auth_checks=True, dns_server=dns.address)
    tls = bool(request.param)
    mta = MTAS[mta_name](server.smtp_port, tls_ca=cert if tls else None)
    mta.start()
    try:
        yield mta, server, tls
    finally:
        mta.stop()


def check_the_bounce(server: Running) -> None:
    """The foreign recipient alone came back to the sender, 5.7.1, the others unnamed."""
    [bounce] = server.stored(SENDER)
    report = email.message_from_bytes(bounce, policy=email.policy.default)
    assert FOREIGN in bounce.decode("utf-8", "replace")
    assert "mixed@localhost" not in str(report.get_body(("plain",)))
    assert "5.7.1" in bounce.decode("utf-8", "replace")


def check_the_mta_log(mta: Postfix | Exim, tls: bool, delivered: int) -> None:
    """Nothing retried or queued; Exim sent with BDAT (and TLS when offered), Postfix sent
    each copy and the bounce once."""
    log = mta.log_text()
    assert "deferred" not in log, log  # nothing was retried (Postfix's word)
    assert " == " not in log, log  # (Exim's mark)
    assert mta.queued() == 0
    if isinstance(mta, Exim):
        deliveries = [line for line in log.splitlines() if " => " in line]
        assert deliveries
        assert all(" K " in line for line in deliveries), deliveries  # BDAT (CHUNKING)
        assert all((" X=TLS" in line) == tls for line in deliveries), deliveries
    else:
        assert log.count("status=sent") == delivered + 1  # and the bounce
        assert log.count("status=bounced") == 1
        assert ("TLS connection established to 127.0.0.1" in log) == tls


def test_a_mixed_batch_through_a_real_mta(relay: tuple[Postfix | Exim, Running, bool]) -> None:
    mta, server, tls = relay
    mails = batch()
    for mail in mails:
        refused = mta.submit(SENDER, mail.recipients, mail.raw, mail.options)
        assert refused == {}, (mail.name, refused)  # the MTA takes all, burnbox decides
    expected: dict[str, int] = {}
    for mail in mails:
        for recipient in mail.recipients:
            if recipient != FOREIGN:
                expected[recipient] = expected.get(recipient, 0) + 1
    server.wait_for_mail({**expected, SENDER: 1})

    for mail in mails:  # each accepted message once, byte for byte
        for recipient in set(mail.recipients) - {FOREIGN}:
            stored = [without_received(raw, 2) for raw in server.stored(recipient)]
            assert stored.count(mail.raw) == 1, (mta.name, mail.name, recipient)
    assert {address: len(server.stored(address)) for address in expected} == expected
    wait_for_checks(server, "one@localhost")  # and each was checked
    checked = server.call(server.app.store.summaries("one@localhost"))
    assert all(summary.auth.startswith("spf=none smtp.mailfrom=localhost") for summary in checked)
    check_the_bounce(server)

    ours = [
        server.stored(address)[0].split(b"\r\n")[1]
        for address in ("eight@localhost", "jörg@localhost")
    ]
    assert ours[0].endswith(b"with ESMTPS;" if tls else b"with ESMTP;"), ours
    assert ours[1].endswith(b"with UTF8SMTPS;" if tls else b"with UTF8SMTP;"), ours
    check_the_mta_log(mta, tls, sum(expected.values()))
