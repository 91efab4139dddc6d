"""Every message exactly once: a 250 means stored (and the sender sees it), a 4yz means not
stored, a 5yz means never. Over real sockets, on the memory and SQLite stores."""

from __future__ import annotations

import email.parser
import email.policy
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import Conversation, Running, begin
from tests.senders import PipelinedSender

BODY = b"Subject: half-closed\r\n\r\nsent, then our side shut\r\n"


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'mail.db'}"


def transaction(sender: PipelinedSender, command: str) -> list[str]:
    """One whole transaction and QUIT, pipelined as Exim sends it, then the client shuts
    down its side. Every reply the server sends before it closes."""
    head = b"EHLO exim.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<once@localhost>\r\n"
    if command == "BDAT":
        sender.send(head + b"BDAT %d LAST\r\n" % len(BODY) + BODY + b"QUIT\r\n")
        sender.half_close()
        return sender.replies_until_closed()
    sender.send(head + b"DATA\r\n")
    early = [sender.reply() for _ in range(4)]  # EHLO, MAIL, RCPT, then 354
    sender.send(BODY + b".\r\nQUIT\r\n")
    sender.half_close()
    return early + sender.replies_until_closed()


@pytest.mark.parametrize("command", ["DATA", "BDAT"])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
def test_a_half_close_after_pipelined_quit_still_gets_its_250(
    start_burnbox: Callable[..., Running],
    certificate: tuple[str, str],
    store_url: str,
    command: str,
    tls: bool,
) -> None:
    cert, key = certificate
    server = start_burnbox(store=store_url, tls_cert=cert, tls_key=key)
    for attempt in range(20):  # it failed 20 times in 20 before
        context = ssl.create_default_context(cafile=cert) if tls else None
        sender = PipelinedSender(server.smtp_port, context)
        try:
            answers = transaction(sender, command)
        finally:
            sender.close()
        assert answers[-2].startswith("250 2.0.0 OK: stored as "), (attempt, answers)
        assert answers[-1].startswith("221"), (attempt, answers)
    assert len(server.stored("once@localhost")) == 20  # each once: no reply was lost


def test_five_unrecognised_or_malformed_commands_end_the_session(
    talk: Callable[[], Conversation],
) -> None:
    conversation = talk()
    assert conversation.command("EHLO probe").startswith("250")
    assert conversation.command("XYZZY").startswith("500")
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=x").startswith("501")
    assert conversation.command("MAIL FROM <a@b.test>").startswith("501")
    assert conversation.command("SOMETHING ELSE").startswith("500")
    assert conversation.command("EHLO").startswith("501")  # the fifth
    assert conversation.reply() == (
        "421 4.7.0 Too many unrecognised or malformed commands; closing the session"
    )
    assert conversation.closed()


def test_other_refusals_do_not_count_as_bad_commands(talk: Callable[[], Conversation]) -> None:
    """Relaying refused, for instance, is a 550 about the address, not a broken client."""
    conversation = talk()
    begin(conversation, recipient="someone@localhost")
    for number in range(8):
        assert conversation.command(f"RCPT TO:<x{number}@elsewhere.test>").startswith("550")
    assert conversation.command("DATA").startswith("354")


def test_a_declared_size_the_store_can_never_hold_is_refused_at_mail(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(store_max_bytes=10_000)
    conversation = connect(server)
    conversation.command("EHLO big")
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=10001").startswith("552 5.3.4")
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=4000").startswith("250")


def test_recipients_beyond_what_the_store_holds_are_deferred_at_rcpt(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    """SIZE=4000 and a 10,000-byte store: two copies fit, the third recipient is told 452
    (its sender delivers to it in another transaction), and the message is stored for two."""
    server = start_burnbox(store_max_bytes=10_000)
    conversation = connect(server)
    conversation.command("EHLO big")
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=4000").startswith("250")
    assert conversation.command("RCPT TO:<one@localhost>").startswith("250")
    assert conversation.command("RCPT TO:<two@localhost>").startswith("250")
    assert conversation.command("RCPT TO:<three@localhost>").startswith("452 4.5.3")
    assert conversation.command("DATA").startswith("354")
    assert conversation.command(b"x" * 3500 + b"\r\n.").startswith("250")
    assert [
        len(server.stored(box)) for box in ("one@localhost", "two@localhost", "three@localhost")
    ] == [1, 1, 0]


def test_copies_beyond_the_store_without_size_are_refused_for_good(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(store_max_bytes=10_000)
    conversation = connect(server)
    begin(conversation, recipient="one@localhost")
    assert conversation.command("RCPT TO:<two@localhost>").startswith("250")
    assert conversation.command("RCPT TO:<three@localhost>").startswith("250")
    assert conversation.command("DATA").startswith("354")
    assert conversation.command(b"x" * 3500 + b"\r\n.").startswith("552 5.3.4")
    assert server.count() == 0


# Each: what a sender wrote, and the header lines every consumer must then agree on.
HOSTILE_HEADERS = [
    (
        b"Subject: hi\nFrom: boss@bank.example\r\n\r\nbody\r\n",
        [("Subject", "hi"), ("From", "boss@bank.example")],
    ),
    (b"Subject: hi\r\n\rX-Injected: yes\r\n\r\nbody\r\n", [("Subject", "hi")]),
    (
        b"Subject: a\rb: c\r\nTo: x@localhost\r\n\r\nbody\r\n",
        [("Subject", "a"), ("b", "c"), ("To", "x@localhost")],
    ),
    (b"Subject: lf only\n\nline one\nline two\r\n", [("Subject", "lf only")]),
]


def crlf_header_lines(raw: bytes) -> list[tuple[str, str]]:
    """Header lines as a strict RFC 5322 reader sees them: only CRLF ends a line."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r" not in head.replace("\r\n", "")
    assert "\n" not in head.replace("\r\n", "")
    unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ")
    pairs = [line.split(":", 1) for line in unfolded.split("\r\n")]
    return [(name, " ".join(value.split())) for name, value in pairs]


@pytest.mark.parametrize(("sent", "expected"), HOSTILE_HEADERS)
def test_every_view_shows_the_headers_the_download_holds(
    start_burnbox: Callable[..., Running],
    connect: Callable[[Running], Conversation],
    sent: bytes,
    expected: list[tuple[str, str]],
) -> None:
    server = start_burnbox(access="public")
    conversation = connect(server)
    begin(conversation, recipient="view@localhost")
    conversation.command("DATA")
    assert conversation.command(sent + b".").startswith("250")
    base = f"{server.http}/api/inboxes/{quote('view@localhost')}/messages"
    [summary] = httpx.get(base).json()["messages"]
    raw = httpx.get(f"{base}/{summary['id']}/raw").content
    shown = [tuple(pair) for pair in httpx.get(f"{base}/{summary['id']}").json()["headers"]]
    downloaded = crlf_header_lines(raw)
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    stdlib = [(name, " ".join(value.split())) for name, value in parsed.items()]
    assert shown == downloaded == stdlib
    assert downloaded[1:] == expected  # after burnbox's own Received: line
