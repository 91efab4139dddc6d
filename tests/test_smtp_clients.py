"""Real SMTP clients against a running burnbox: smtplib, aiosmtplib, swaks, smtp-source."""

from __future__ import annotations

import email.policy
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from tests.helpers import Running, corpus_messages
from tests.tools import require

RECEIVED_END = b"\r\n\t"  # our Received header's last line starts after this


def strip_received(raw: bytes) -> bytes:
    assert raw.startswith(b"Received: from ")
    date_line = raw.index(b"\r\n", raw.index(b";\r\n\t") + 3)
    return raw[date_line + 2 :]


def test_smtplib_sendmail_with_attachment(server: Running) -> None:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "bob@localhost"
    message["Subject"] = "Your code is 482913"
    message.set_content("Hello Bob,\nyour code is 482913.\n")
    message.add_alternative("<p>Your code is <b>482913</b></p>", subtype="html")
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n" + bytes(100), maintype="image", subtype="png", filename="pic.png"
    )
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        refused = client.send_message(message)
    assert refused == {}
    [summary] = server.call(server.app.store.summaries("bob@localhost"))
    assert summary.subject == "Your code is 482913"
    assert summary.sender == "Alice <alice@example.org>"
    assert summary.snippet == "Hello Bob, your code is 482913."
    assert summary.attachments == 1


def test_smtplib_reports_refused_recipients(server: Running) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        refused = client.sendmail(
            "a@example.org", ["ok@localhost", "no@elsewhere.test"], b"Subject: x\r\n\r\nbody\r\n"
        )
    assert refused == {
        "no@elsewhere.test": (
            550,
            b"5.7.1 Relaying denied: this server accepts mail only for its own domains",
        )
    }
    assert len(server.stored("ok@localhost")) == 1


def test_smtplib_smtputf8(server: Running) -> None:
    message = EmailMessage(policy=email.policy.SMTPUTF8)
    message["From"] = "Jörg <jörg@example.org>"
    message["To"] = "zoë@localhost"
    message["Subject"] = "Grüße"
    message.set_content("Hallo\n")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.send_message(message, mail_options=["SMTPUTF8"])
    [summary] = server.call(server.app.store.summaries("zoë@localhost"))
    assert summary.subject == "Grüße"


async def test_aiosmtplib_many_messages_one_connection(server: Running) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=10)
    await client.connect()
    try:
        for number in range(50):
            errors, reply = await client.sendmail(
                "a@example.org",
                [f"box{number % 5}@localhost"],
                f"Subject: n{number}\r\n\r\nmessage {number}\r\n".encode(),
            )
            assert errors == {}
            assert reply.startswith("2.0.0 OK: stored as "), reply
    finally:
        await client.quit()
    assert server.count() == 50
    assert len(server.stored("box3@localhost")) == 10


async def test_aiosmtplib_bdat_is_not_used_but_pipelining_is(server: Running) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=10)
    await client.connect()
    await client.ehlo()
    assert client.supports_extension("pipelining")
    assert client.supports_extension("chunking")
    errors, _ = await client.sendmail(
        "a@example.org", ["x@localhost", "y@localhost"], b"Subject: two\r\n\r\nhi\r\n"
    )
    await client.quit()
    assert errors == {}
    assert server.count() == 2


def test_swaks_with_pipelining_and_attachment(server: Running, tmp_path: Path) -> None:
    swaks = require("swaks")
    attachment = tmp_path / "report.txt"
    attachment.write_text("numbers\n")
    result = subprocess.run(
        [
            swaks,
            "--server",
            f"127.0.0.1:{server.smtp_port}",
            "--to",
            "qa@localhost",
            "--from",
            "ci@example.org",
            "--pipeline",
            "--header",
            "Subject: swaks run",
            "--attach",
            str(attachment),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 OK: stored as" in result.stdout
    [summary] = server.call(server.app.store.summaries("qa@localhost"))
    assert summary.subject == "swaks run"
    assert summary.attachments == 1


def test_swaks_plain_body(server: Running) -> None:
    result = subprocess.run(
        [
            require("swaks"),
            "--server",
            f"127.0.0.1:{server.smtp_port}",
            "--to",
            "qa@localhost",
            "--from",
            "ci@example.org",
            "--body",
            "chunked body",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert server.stored("qa@localhost")[0].rstrip().endswith(b"chunked body")


def test_smtp_source_burst_is_stored_exactly(server: Running) -> None:
    smtp_source = require("smtp-source")
    target = f"127.0.0.1:{server.smtp_port}"
    sender = ["-f", "load@example.org"]
    # 300 of 2 KB over 10 sessions kept open (-d), then 100 of 100 KB, each to its own
    # recipient (-N: a sequence number before each address).
    burst = ["-d", "-s", "10", "-m", "300", "-l", "2000", *sender, "-t", "load@localhost"]
    subprocess.run([smtp_source, *burst, target], check=True, timeout=60)
    assert server.count() == 300
    big = ["-s", "10", "-m", "100", "-l", "100000", "-N", *sender, "-t", "big@localhost"]
    subprocess.run([smtp_source, *big, target], check=True, timeout=60)
    assert server.count() == 400


def test_every_corpus_message_is_accepted_over_smtp(server: Running) -> None:
    paths = corpus_messages()
    assert len(paths) > 150
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.ehlo("corpus.test")
        for number, path in enumerate(paths):
            options = ["SMTPUTF8"] if not path.read_bytes().isascii() else []
            client.sendmail(
                "corpus@example.org",
                [f"c{number}@localhost"],
                on_the_wire(path.read_bytes()),
                mail_options=options,
            )
    for number, path in enumerate(paths):
        [stored] = server.stored(f"c{number}@localhost")
        assert strip_received(stored) == on_the_wire(path.read_bytes()), path.name


def on_the_wire(raw: bytes) -> bytes:
    """A file as mail travels: CRLF line ends (smtplib stuffs the dots itself)."""
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return crlf if crlf.endswith(b"\r\n") else crlf + b"\r\n"


def test_bare_line_feeds_in_the_body_are_kept_and_the_header_section_made_crlf(
    server: Running,
) -> None:
    raw = b"Subject: lf only\n\nline\n.dot\n"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.sendmail("a@example.org", ["lf@localhost"], raw)
    [stored] = server.stored("lf@localhost")
    # smtplib stuffs a dot after a bare LF too; to SMTP a line ends only at CRLF, so that
    # dot is not at a line start and stays, just as a bare LF never ends DATA. The header
    # section gets CRLF line ends (smtp/header_section.py); the body stays as sent.
    assert strip_received(stored) == b"Subject: lf only\r\n\r\nline\n..dot\n\r\n"
