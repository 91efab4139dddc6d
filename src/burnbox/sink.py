"""Sink mode's shared view, as values: every message burnbox accepts (any recipient at any
domain) is also kept once, with its envelope, under one key that no recipient and no inbox
can ever be: it has no `@`, so no RCPT and no inbox name parses to it, and a suite that
sends anywhere (`.invalid` included) collides with nothing of burnbox's own. Mailpit's API
(web/mailpit) and MailHog's (web/mailhog) read it. No I/O.

Its summaries carry the SMTP envelope where other inboxes' carry headers: `sender` is the
reverse path and `to` the forward paths, in order, joined by ", ". It is bounded as any
inbox is: the TTL, the per-inbox cap (the oldest goes first) and the byte cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from burnbox.model import EPOCH, Inbox

SINK_ADDRESS = "(sink)"
SINK = Inbox(SINK_ADDRESS, None, EPOCH, EPOCH + timedelta(days=365_000))  # open, never ends
RECIPIENT_SEPARATOR = ", "


@dataclass(frozen=True, slots=True)
class Envelope:
    """MAIL FROM's reverse path (empty for a bounce) and the RCPT TO forward paths."""

    sender: str
    recipients: tuple[str, ...]


def recipients_of(to: str) -> list[str]:
    """The forward paths a sink summary's `to` holds."""
    return [item for item in to.split(RECIPIENT_SEPARATOR) if item]


@dataclass(slots=True)
class SinkStats:
    """What this process's sink took and let go since it started (Mailpit's runtime stats)."""

    accepted: int = 0  # messages kept in the shared view
    accepted_bytes: int = 0
    deleted: int = 0  # messages deleted through the sink's APIs
