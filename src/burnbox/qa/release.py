"""Mailpit's release: a stored message sent on through the operator's relay
(BURNBOX_SINK_RELAY) to the recipients the test names, each of which must match one of
BURNBOX_SINK_RELAY_ALLOW's patterns. The sink never sends anywhere else, so it is never an
open relay: the relay is the operator's, and so is the list of who may receive.

As Mailpit releases it: from the Sender, else the first From address (the envelope it
came with may be a test's bounce address); without its Bcc (never shown to the recipients
it is released to) and Return-Path (the final delivery's to add); Message-ID kept.
The relay is spoken to in plain SMTP on the address configured, normally a local MTA
(Postfix, a second sink) that does the rest. Bounds: MAX_RECIPIENTS a release, TIMEOUT
seconds for the whole exchange. smtplib runs in a worker thread: one release at a time
a request, and the event loop never waits on the relay.
"""

from __future__ import annotations

import asyncio
import email.utils
import fnmatch
import smtplib
from dataclasses import dataclass

from burnbox.addressing import AddressError, parse_address
from burnbox.settings_values import Endpoint
from burnbox.trust.dkim import header_fields

MAX_RECIPIENTS = 50
_DROPPED = {b"bcc", b"return-path"}
TIMEOUT = 30.0


class ReleaseRefused(ValueError):
    """Why nothing was sent, in words for the client (no relay's or library's text)."""


@dataclass(frozen=True, slots=True)
class SinkRelay:
    server: Endpoint
    allow: tuple[str, ...]  # glob patterns over lower-cased addresses

    def recipients(self, asked: list[str]) -> list[str]:
        """The addresses to send to, checked; ReleaseRefused names the first that may not."""
        if not asked:
            raise ReleaseRefused("no recipients")
        if len(asked) > MAX_RECIPIENTS:
            raise ReleaseRefused(f"at most {MAX_RECIPIENTS} recipients")
        checked = []
        for text in asked:
            try:
                address = str(parse_address(text.strip()))
            except AddressError:
                raise ReleaseRefused(f"invalid email address: {text[:200]}") from None
            if not any(fnmatch.fnmatchcase(address.lower(), rule.lower()) for rule in self.allow):
                raise ReleaseRefused(f"recipient not allowed: {address}")
            checked.append(address)
        return checked

    async def send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._send, sender, recipients, raw), TIMEOUT + 5
            )
        except TimeoutError:
            raise ReleaseRefused("the relay did not answer in time") from None

    def _send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        try:
            with smtplib.SMTP(self.server.host, self.server.port, timeout=TIMEOUT) as client:
                client.ehlo()
                options = (
                    ["BODY=8BITMIME"] if not raw.isascii() and client.has_extn("8bitmime") else []
                )
                client.sendmail(sender, recipients, raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused:
            raise ReleaseRefused("the relay refused every recipient") from None
        except smtplib.SMTPResponseException as error:
            raise ReleaseRefused(f"the relay answered {error.smtp_code}") from None
        except (OSError, smtplib.SMTPException):
            raise ReleaseRefused("the relay could not be reached") from None


def outgoing(raw: bytes) -> tuple[str, bytes]:
    """The envelope sender and the bytes to release (pure); ReleaseRefused without a From."""
    head, gap, body = raw.partition(b"\r\n\r\n")
    fields = header_fields(head)
    sender = _address_of(fields, b"sender") or _address_of(fields, b"from")
    if not sender:
        raise ReleaseRefused("No From header found")
    kept = b"\r\n".join(field for name, field in fields if name not in _DROPPED)
    return sender, kept + gap + body


def _address_of(fields: list[tuple[bytes, bytes]], wanted: bytes) -> str:
    for name, field in fields:
        if name == wanted:
            value = field.split(b":", 1)[1].decode("utf-8", "replace")
            found = [address for _, address in email.utils.getaddresses([value]) if "@" in address]
            return found[0] if found else ""
    return ""
