"""Byte-level SMTP conversations with a running burnbox over real sockets."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import pytest

from tests.helpers import Conversation, Running, begin


def test_greeting_names_the_host(talk: Callable[[], Conversation]) -> None:
    assert talk().greeting == "220 mx.test ESMTP burnbox"


def test_ehlo_advertises_the_extensions(talk: Callable[[], Conversation]) -> None:
    reply = talk().command("EHLO client.test")
    keywords = [line[4:] for line in reply.splitlines()]
    assert keywords[0] == "mx.test greets you"
    for keyword in (
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "BINARYMIME",
    ):
        assert keyword in keywords
    assert "STARTTLS" not in keywords  # no certificate configured
    assert reply.splitlines()[-1].startswith("250 ")


def test_a_message_is_stored_byte_for_byte_after_a_received_header(
    server: Running, talk: Callable[[], Conversation]
) -> None:
    conversation = talk()
    begin(conversation)
    assert conversation.command("DATA").startswith("354")
    body = b"Subject: hi\r\n\r\nline one\r\n\xc3\xa9 8-bit\r\n"
    reply = conversation.command(body + b".")
    assert reply.startswith("250 2.0.0 OK: stored as ")
    [raw] = server.stored("user@localhost")
    assert raw.startswith(b"Received: from client.test\r\n\tby mx.test (burnbox) with ESMTP;")
    assert raw.endswith(b"\r\n" + body)
    assert b"127.0.0.1" not in raw  # the client IP is private by default


def test_received_header_names_the_ip_when_configured(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(received_client_ip=True)
    conversation = connect(server)
    begin(conversation)
    conversation.command("DATA")
    assert conversation.command("x\r\n.").startswith("250")
    assert b"from client.test ([127.0.0.1])" in server.stored("user@localhost")[0]


def test_pipelined_commands_get_their_replies_in_order(
    server: Running, talk: Callable[[], Conversation]
) -> None:
    conversation = talk()
    conversation.command("EHLO client.test")
    conversation.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<one@localhost>\r\n"
        b"RCPT TO:<nobody@elsewhere.test>\r\nRCPT TO:<two@localhost>\r\nDATA\r\n"
    )
    replies = [conversation.reply() for _ in range(5)]
    assert [r[:3] for r in replies] == ["250", "250", "550", "250", "354"]
    conversation.send(
        b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
        b"RCPT TO:<one@localhost>\r\nNOOP\r\nRSET\r\nQUIT\r\n"
    )
    replies = [conversation.reply() for _ in range(6)]
    assert [r[:3] for r in replies] == ["250", "250", "250", "250", "250", "221"]
    assert conversation.closed()
    assert len(server.stored("one@localhost")) == 1
    assert len(server.stored("two@localhost")) == 1


def test_dot_stuffing_is_undone(server: Running, talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    begin(conversation)
    conversation.command("DATA")
    assert conversation.command(b"..leading\r\n...two\r\n.x\r\nend\r\n.").startswith("250")
    assert server.stored("user@localhost")[0].endswith(b"\r\n.leading\r\n..two\r\nx\r\nend\r\n")


def test_empty_message_is_accepted(server: Running, talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    begin(conversation)
    conversation.command("DATA")
    assert conversation.command(".").startswith("250")
    [raw] = server.stored("user@localhost")
    date = email.utils.format_datetime(server.clock.now).encode()
    assert raw.endswith(b";\r\n\t" + date + b"\r\n")


@pytest.mark.parametrize(
    "smuggled",
    [
        b"\n.\n",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\n.\r",
    ],
)
def test_no_bare_cr_or_lf_ends_data(
    server: Running, talk: Callable[[], Conversation], smuggled: bytes
) -> None:
    """The SMTP smuggling class: one DATA must never become two messages."""
    conversation = talk()
    begin(conversation)
    conversation.command("DATA")
    payload = (
        b"Subject: first\r\n\r\nhello"
        + smuggled
        + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nowned\r\n.\r\n"
    )
    conversation.send(payload)
    reply = conversation.reply()
    assert reply.startswith("250"), reply
    assert conversation.command("NOOP").startswith("250")  # nothing else was queued
    [raw] = server.stored("user@localhost")
    assert b"Subject: smuggled" in raw  # it stayed inside the one message
    assert server.stored("victim@localhost") == []
    assert server.count() == 1


def test_bare_lf_never_ends_a_command(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.send(b"EHLO client.test\nNOOP\r\n")
    assert conversation.reply().startswith("500 5.5.2 Bare CR or LF")
    assert conversation.command("NOOP").startswith("250")


def test_overlong_command_line_does_not_desynchronise(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.send(b"NOOP " + b"x" * 10_000 + b"\r\nNOOP\r\n")
    assert conversation.reply().startswith("500 5.5.2 Line too long")
    assert conversation.reply().startswith("250")  # exactly one error for the long line


def test_overlong_line_split_at_crlf_boundary(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.send(b"NOOP " + b"y" * 5000 + b"\r")
    conversation.send(b"\nNOOP\r\n")
    assert conversation.reply().startswith("500")
    assert conversation.reply().startswith("250")


def test_long_text_lines_are_kept_unchanged(
    server: Running, talk: Callable[[], Conversation]
) -> None:
    conversation = talk()
    begin(conversation)
    conversation.command("DATA")
    line = b"z" * 200_000
    assert conversation.command(b"Subject: long\r\n\r\n" + line + b"\r\n.").startswith("250")
    assert server.stored("user@localhost")[0].endswith(line + b"\r\n")


def test_a_line_beyond_the_bound_refuses_the_message(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(max_line_length=1000)
    conversation = connect(server)
    begin(conversation)
    conversation.command("DATA")
    reply = conversation.command(b"ok\r\n" + b"w" * 1001 + b"\r\nmore\r\n.")
    assert reply.startswith("500 5.5.2 Message has a line that is too long")
    assert server.count() == 0
    begin_again = conversation.command("MAIL FROM:<a@example.org>")
    assert begin_again.startswith("250")  # the session goes on


def test_declared_size_too_big_is_refused_at_mail(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(max_message_size=1000)
    conversation = connect(server)
    conversation.command("EHLO c")
    assert conversation.command("MAIL FROM:<a@example.org> SIZE=1001").startswith("552 5.3.4")
    assert conversation.command("MAIL FROM:<a@example.org> SIZE=1000").startswith("250")


def test_message_growing_too_big_is_read_to_its_end_then_refused(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(max_message_size=10_000)
    conversation = connect(server)
    begin(conversation)
    conversation.command("DATA")
    conversation.send(b"x" * 50 + b"\r\n")
    for _ in range(100):
        conversation.send(b"y" * 998 + b"\r\n")
    assert conversation.command(b".").startswith("552 5.3.4")
    assert server.count() == 0
    assert conversation.command("NOOP").startswith("250")


def test_recipient_limit(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(max_recipients=3, inbox_max_messages=10)
    conversation = connect(server)
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@example.org>")
    for number in range(3):
        assert conversation.command(f"RCPT TO:<r{number}@localhost>").startswith("250")
    assert conversation.command("RCPT TO:<r0@localhost>").startswith("250")  # duplicate
    assert conversation.command("RCPT TO:<r9@localhost>").startswith("452 4.5.3")
    conversation.command("DATA")
    assert conversation.command("hi\r\n.").startswith("250")
    assert server.count() == 3  # one copy per distinct inbox


def test_default_recipient_limit_is_100(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@example.org>")
    conversation.send(b"".join(f"RCPT TO:<r{n}@localhost>\r\n".encode() for n in range(101)))
    replies = [conversation.reply() for _ in range(101)]
    assert all(reply.startswith("250") for reply in replies[:100])
    assert replies[100].startswith("452 4.5.3")


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("<someone@gmail.com>", "550 5.7.1"),
        ("<someone@localhost.evil.test>", "550 5.7.1"),
        ("<a@sub.wild.test>", "250"),
        ("<a@deep.sub.wild.test>", "250"),
        ("<a@wild.test>", "550 5.7.1"),
        ("<a@EXAMPLE.TEST>", "250"),
        ("<@relay.test:a@localhost>", "250"),
        ("<postmaster>", "250"),
        ("<../etc/passwd@localhost>", "553 5.1.3"),
        ("<a/b@localhost>", "553 5.1.3"),
        ("<a\\b@localhost>", "553 5.1.3"),
        ('<"quoted"@localhost>', "553 5.1.3"),
        ("<=?utf-8?q?x?=@localhost>", "553 5.1.3"),
        ("<" + "a" * 65 + "@localhost>", "553 5.1.3"),
        ("<a..b@localhost>", "553 5.1.3"),
        ("<.a@localhost>", "553 5.1.3"),
        ("<a@[127.0.0.1]>", "553 5.1.3"),
        ("<a@local_host>", "553 5.1.3"),
        ("<nodomain>", "553 5.1.3"),
        ("<ü@localhost>", "553 5.6.7"),
        ("a@localhost", "250"),
        ("<a@localhost", "501 5.5.4"),
    ],
)
def test_recipient_policy(talk: Callable[[], Conversation], recipient: str, expected: str) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@example.org>")
    assert conversation.command(f"RCPT TO:{recipient}").startswith(expected)


def test_control_characters_in_an_address_are_refused(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@example.org>")
    assert conversation.command(b"RCPT TO:<a\x00b@localhost>").startswith("553 5.1.3")
    assert conversation.command(b"RCPT TO:<a\x01b@localhost>").startswith("553 5.1.3")


def test_smtputf8_addresses(server: Running, talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    assert conversation.command("MAIL FROM:<ä@example.org> SMTPUTF8").startswith("250")
    assert conversation.command("RCPT TO:<Jürgen@localhost>").startswith("250")
    conversation.command("DATA")
    assert conversation.command("Subject: ü\r\n\r\nhi\r\n.").startswith("250")
    [raw] = server.stored("jürgen@localhost")
    assert b"with UTF8SMTP;" in raw


def test_sequence_errors(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    assert conversation.command("MAIL FROM:<a@example.org>").startswith("503 5.5.1")
    conversation.command("EHLO c")
    assert conversation.command("RCPT TO:<a@localhost>").startswith("503 5.5.1")
    assert conversation.command("DATA").startswith("503 5.5.1")
    conversation.command("MAIL FROM:<a@example.org>")
    assert conversation.command("MAIL FROM:<a@example.org>").startswith("503 5.5.1")
    assert conversation.command("DATA").startswith("503 5.5.1")
    assert conversation.command("FOO").startswith("500 5.5.2")
    assert conversation.command("EHLO").startswith("501 5.5.4")
    assert conversation.command("DATA extra").startswith("501 5.5.4")


def test_mail_parameters(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    assert conversation.command("MAIL FROM:<> BODY=8BITMIME").startswith("250")
    conversation.command("RSET")
    assert conversation.command("MAIL FROM:<a@b.test> RET=HDRS").startswith("555 5.5.4")
    assert conversation.command("MAIL FROM: <a@b.test>").startswith("250")  # lenient space
    conversation.command("RSET")
    assert conversation.command("MAIL FROM:<bad address>").startswith("501")
    helo_only = conversation.command("HELO c")
    assert helo_only == "250 mx.test"
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=10").startswith("555")


@pytest.mark.parametrize(
    "parameters",
    [
        "SIZE=abc",
        "SIZE=-1",
        "SIZE=",
        "SIZE",
        "SIZE=1e3",
        "SIZE=\u0661\u0662",
        "SIZE=" + "9" * 19,
        "BODY=",
        "BODY",
        "BODY=9BIT",
        "SMTPUTF8=yes",
    ],
)
def test_a_malformed_value_is_a_syntax_error(
    talk: Callable[[], Conversation], parameters: str
) -> None:
    """501 for a parameter we know given a value it cannot take; 555 is only for one we do
    not know (RFC 5321 4.2.3)."""
    conversation = talk()
    conversation.command("EHLO c")
    answer = conversation.command(f"MAIL FROM:<a@b.test> {parameters}")
    assert answer.startswith("501 5.5.4"), answer
    assert conversation.command("MAIL FROM:<a@b.test> SIZE=10 BODY=7BIT").startswith("250")


def test_vrfy_help_expn_noop_quit(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    assert conversation.command("VRFY someone").startswith("252 2.5.2")
    assert conversation.command("HELP").startswith("214")
    assert conversation.command("EXPN list").startswith("502 5.5.1")
    assert conversation.command("NOOP").startswith("250 2.0.0")
    assert conversation.command("STARTTLS").startswith("502 5.5.1")  # not configured
    assert conversation.command("QUIT").startswith("221 2.0.0")
    assert conversation.closed()


def test_http_request_on_the_smtp_port_is_refused(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conversation.reply().startswith("500 5.5.2 This is an SMTP server")
    assert conversation.closed()


def test_invalid_utf8_command(talk: Callable[[], Conversation]) -> None:
    assert talk().command(b"NOOP \xff\xfe").startswith("500 5.5.2")


def test_bdat_chunks_make_one_message(server: Running, talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    begin(conversation)
    first = b"Subject: chunks\r\n\r\nline\r\n.\r\nMAIL FROM:<x@y.test>\r\n"
    assert conversation.command(b"BDAT %d\r\n" % len(first) + first[:-2]).startswith(
        f"250 2.0.0 {len(first)} octets"
    )
    second = b"binary \x00\xff end\r\n"
    assert conversation.command(b"BDAT %d LAST\r\n" % len(second) + second[:-2]).startswith(
        "250 2.0.0 OK: stored"
    )
    [raw] = server.stored("user@localhost")
    assert raw.endswith(first + second)  # no unstuffing, nothing taken as a command
    assert server.count() == 1


def test_bdat_pipelined_with_zero_last(server: Running, talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    conversation.send(
        b"MAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<u@localhost>\r\n"
        b"BDAT 5\r\nhelloBDAT 0 LAST\r\nNOOP\r\n"
    )
    replies = [conversation.reply()[:3] for _ in range(5)]
    assert replies == ["250", "250", "250", "250", "250"]
    assert server.stored("u@localhost")[0].endswith(b"hello")


def test_bdat_without_transaction_still_consumes_the_chunk(
    server: Running, talk: Callable[[], Conversation]
) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    assert conversation.command(b"BDAT 6\r\nQUIT").startswith("503 5.5.1")
    assert conversation.command("NOOP").startswith("250")  # "QUIT" was chunk data
    assert server.count() == 0


def test_bdat_too_big(
    start_burnbox: Callable[..., Running], connect: Callable[[Running], Conversation]
) -> None:
    server = start_burnbox(max_message_size=100)
    conversation = connect(server)
    begin(conversation)
    assert conversation.command(b"BDAT 80\r\n" + b"a" * 78).startswith("250")
    assert conversation.command(b"BDAT 80\r\n" + b"b" * 78).startswith("552 5.3.4")
    assert conversation.command(b"BDAT 10 LAST\r\n" + b"c" * 8).startswith("503")
    assert server.count() == 0
    assert conversation.command("NOOP").startswith("250")


def test_bdat_syntax_error_closes(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    assert conversation.command("BDAT lots").startswith("501 5.5.4")
    assert conversation.closed()


def test_data_after_binarymime_is_refused(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    conversation.command("EHLO c")
    conversation.command("MAIL FROM:<a@b.test> BODY=BINARYMIME")
    conversation.command("RCPT TO:<a@localhost>")
    assert conversation.command("DATA").startswith("503 5.5.1")


def test_data_and_bdat_do_not_mix(talk: Callable[[], Conversation]) -> None:
    conversation = talk()
    begin(conversation)
    assert conversation.command(b"BDAT 3\r\na").startswith("250")  # chunk: a CR LF
    assert conversation.command("DATA").startswith("503 5.5.1")
