"""The domain's nouns as frozen values. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Inbox:
    """An address somebody created; `token_hash` is None for an open (public) inbox.

    Its mail is what reached the address from `claims_from` on: mail received earlier
    belonged to a previous inbox at this address (whose expiry `claims_from` is), and is
    never this one's, even before the reaper has removed it. The first inbox at an address
    claims from the epoch: mail that came while nobody held it (BURNBOX_UNCLAIMED=keep)."""

    address: str
    token_hash: bytes | None
    created_at: datetime
    expires_at: datetime
    claims_from: datetime = EPOCH


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What an inbox list shows; computed once at ingest, small and bounded."""

    id: str
    address: str
    received_at: datetime
    expires_at: datetime
    size: int
    sender: str
    subject: str
    snippet: str
    attachments: int
    date: str = ""
    message_id: str = ""
    to: str = ""
    seen: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """The full view of one message, parsed on demand from its raw bytes."""

    headers: list[tuple[str, str]]
    text: str
    html: str
    attachments: list[Attachment] = field(default_factory=list)
    defects: int = 0


@dataclass(frozen=True, slots=True)
class Overview:
    """The summary fields that come from the message itself."""

    sender: str
    to: str
    subject: str
    date: str
    message_id: str
    snippet: str
    attachments: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    messages: int
    bytes: int
    inboxes: int
