"""Real SMTP clients, unchanged, over plain SMTP and STARTTLS: each message stored once and
byte for byte (apart from our Received: line), the protocol it used recorded in that line.
Postfix and Exim, relaying, are in tests/test_mtas.py."""

from __future__ import annotations

import asyncio
import gc
import smtplib
import ssl
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import pytest

from tests.helpers import Running, without_received
from tests.tools import require

MESSAGE = (
    b"From: Sender <sender@example.org>\r\nTo: client@localhost\r\n"
    b"Subject: once, exactly\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <client-1@client.test>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + "Grüße, line one\r\n.a line that starts with a dot\r\n".encode()
)
UTF8_RECIPIENT = "jörg@localhost"

Send = Callable[[int, str | None, str, Path], None]  # port, CA file (TLS), recipient, temp


def by_smtplib(port: int, ca: str | None, recipient: str, _: Path) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        if ca:
            client.starttls(context=ssl.create_default_context(cafile=ca))
        options = ["SMTPUTF8"] if not recipient.isascii() else []
        client.sendmail(
            "sender@example.org", [recipient], MESSAGE, mail_options=[*options, "BODY=8BITMIME"]
        )


def by_aiosmtplib(port: int, ca: str | None, recipient: str, _: Path) -> None:
    async def send() -> None:
        context = ssl.create_default_context(cafile=ca) if ca else None
        options = ["SMTPUTF8"] if not recipient.isascii() else []
        await aiosmtplib.send(
            MESSAGE,
            sender="sender@example.org",
            recipients=[recipient],
            hostname="127.0.0.1",
            port=port,
            start_tls=bool(ca),
            tls_context=context,
            timeout=30,
            mail_options=[*options, "BODY=8BITMIME"],
        )

    with warnings.catch_warnings():
        # Once in CI an "unclosed transport" ResourceWarning from a plain asyncio socket
        # transport surfaced in the test right after aiosmtplib's STARTTLS run: burnbox
        # runs on uvloop, so the transport was a client's, most likely the plain transport
        # aiosmtplib upgraded to TLS, left to the garbage collector when asyncio.run closed
        # its loop. It is collected here, so a client's leak cannot fail the next test.
        warnings.simplefilter("ignore", ResourceWarning)
        asyncio.run(send())
        gc.collect()


def by_swaks(port: int, ca: str | None, recipient: str, folder: Path) -> None:
    message = folder / "message.eml"
    message.write_bytes(MESSAGE)
    tls = ["--tls-sni", "mx.test", "--tls", "--tls-verify", "--tls-ca-path", ca] if ca else []
    subprocess.run(
        [
            require("swaks"),
            "--server",
            f"127.0.0.1:{port}",
            "--pipeline",
            "--from",
            "sender@example.org",
            "--to",
            recipient,
            "--data",
            str(message),
            *tls,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def by_curl(port: int, ca: str | None, recipient: str, folder: Path) -> None:
    message = folder / "message.eml"
    message.write_bytes(MESSAGE)
    tls = ["--ssl-reqd", "--cacert", ca] if ca else []
    subprocess.run(
        [
            require("curl"),
            "--silent",
            "--show-error",
            f"smtp://127.0.0.1:{port}",
            "--mail-from",
            "sender@example.org",
            "--mail-rcpt",
            recipient,
            "--upload-file",
            str(message),
            *tls,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def by_msmtp(port: int, ca: str | None, recipient: str, folder: Path) -> None:
    tls = ["--tls=on", "--tls-starttls=on", f"--tls-trust-file={ca}"] if ca else ["--tls=off"]
    subprocess.run(
        [
            require("msmtp"),
            "--host=127.0.0.1",
            f"--port={port}",
            "--auth=off",
            "--from=sender@example.org",
            *tls,
            "--",
            recipient,
        ],
        input=MESSAGE,
        check=True,
        capture_output=True,
        timeout=60,
    )


SENDERS: dict[str, Send] = {
    "smtplib": by_smtplib,
    "aiosmtplib": by_aiosmtplib,
    "swaks": by_swaks,
    "curl": by_curl,
    "msmtp": by_msmtp,
}
# Which senders can address a UTF-8 mailbox (SMTPUTF8). swaks cannot; msmtp 1.8 sends no
# SMTPUTF8 and is told 553 5.6.7, as RFC 6531 says.
SMTPUTF8 = {"smtplib", "aiosmtplib", "curl"}
# What each sender puts on the wire for MESSAGE: swaks adds an empty line before the dot
# (its own transcript shows it), the others send the file as it is.
ON_THE_WIRE = {"swaks": MESSAGE + b"\r\n"}


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
@pytest.mark.parametrize("sender", sorted(SENDERS))
def test_a_real_client_stores_once_and_byte_for_byte(
    start_burnbox: Callable[..., Running],
    certificate: tuple[str, str],
    tmp_path: Path,
    sender: str,
    tls: bool,
) -> None:
    cert, key = certificate
    server = start_burnbox(tls_cert=cert, tls_key=key)
    recipients = ["client@localhost", *([UTF8_RECIPIENT] if sender in SMTPUTF8 else [])]
    for recipient in recipients:
        SENDERS[sender](server.smtp_port, cert if tls else None, recipient, tmp_path)
    for recipient in recipients:
        [stored] = server.stored(recipient)
        assert without_received(stored, 1) == ON_THE_WIRE.get(sender, MESSAGE), (sender, recipient)
        protocol = stored.split(b"\r\n")[1].split(b" with ")[1].rstrip(b";")
        utf8 = not recipient.isascii()
        assert protocol == (b"UTF8SMTP" if utf8 else b"ESMTP") + (b"S" if tls else b"")
