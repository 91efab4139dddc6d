"""Sink mode's shared view, as values: every message burnbox accepts (any recipient at any
domain) is also kept once, with its envelope, under one reserved address that nobody can
create or send to. The MailHog API reads it (web/mailhog). No I/O.

The reserved address is at `burnbox.invalid` (RFC 2606: `.invalid` is never a real
domain), which even sink mode refuses at RCPT. Its summaries carry the SMTP envelope where
other inboxes' carry headers: `sender` is the reverse path and `to` the forward paths, in
order, joined by ", ". It is bounded as any inbox is: the TTL, the per-inbox cap (the
oldest goes first) and the byte cap.
"""

from __future__ import annotations

from dataclasses import dataclass

SINK_ADDRESS = "sink@burnbox.invalid"
RESERVED_SUFFIX = ".invalid"
RECIPIENT_SEPARATOR = ", "


@dataclass(frozen=True, slots=True)
class Envelope:
    """MAIL FROM's reverse path (empty for a bounce) and the RCPT TO forward paths."""

    sender: str
    recipients: tuple[str, ...]


def recipients_of(to: str) -> list[str]:
    """The forward paths a sink summary's `to` holds."""
    return [item for item in to.split(RECIPIENT_SEPARATOR) if item]
