"""The domain's nouns as frozen values. No I/O here."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Inbox:
    """An address somebody created; `token_hash` is None for an open (public) inbox.

    Its mail is what reached the address from `claims_from` on: mail received earlier
    belonged to a previous inbox at this address (whose expiry `claims_from` is), and is
    never this one's, even before the reaper has removed it. The first inbox at an address
    claims from the epoch: mail that came while nobody held it (BURNBOX_UNCLAIMED=keep).

    `password_hash` is set for an inbox made as a mail.tm account (accounts.py): its
    owner signs in with a password for account tokens."""

    address: str
    token_hash: bytes | None
    created_at: datetime
    expires_at: datetime
    claims_from: datetime = EPOCH
    password_hash: bytes | None = None


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
    # Who really sent it, as the sender checks found (trust/): RFC 8601 result words and
    # properties, "spf=pass smtp.mailfrom=...; dkim=...; dmarc=...; arc=..."; "" while not
    # checked (checks off, or still running).
    auth: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False
    transfer_encoding: str = "7bit"  # as declared by the part (RFC 2045's default)


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
class Webhook:
    """A URL told of an inbox's events (webhooks.py). It belongs to the lifetime of the
    inbox made at `inbox_created` (NODE_WIDE's to every inbox), and goes with it."""

    id: str
    address: str
    inbox_created: datetime
    url: str
    secret: str
    events: tuple[str, ...]
    include_body: bool
    created_at: datetime
    last_status: str = ""
    last_attempt: datetime | None = None
    delivered: int = 0
    failed: int = 0
    pending: int = 0


NODE_WIDE = "*"  # a webhook's address when it is the node's own (BURNBOX_WEBHOOK_URL)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one webhook: what the outbox holds. `payload` is the JSON
    the store wrote with the event (the message's summary fields)."""

    id: int
    webhook_id: str
    url: str
    secret: str
    include_body: bool
    kind: str
    address: str
    message_id: str
    payload: str
    created_at: datetime
    attempts: int
    # The event's id (Standard Webhooks' webhook-id): made when the event was written, the
    # same on every retry, never the same for two events (across restarts and nodes).
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class StoreStats:
    messages: int
    bytes: int
    inboxes: int


# -- a summary as plain values: how every store and the relay write one ------------------

# Every field of a summary, in declaration order: column lists, codecs and the packed form
# are made from this, so that a new field touches the model and one migration per SQL store.
SUMMARY_FIELDS = tuple(item.name for item in dataclasses.fields(MessageSummary))


def ms_of(moment: datetime) -> int:
    """A time as integer milliseconds since the epoch (how the stores and the relay keep
    it)."""
    return int(moment.timestamp() * 1000)


def at_ms(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


@functools.cache
def field_types(kind: type) -> dict[str, type]:
    """A dataclass's field names and their types (resolved from the annotations)."""
    return dict(typing.get_type_hints(kind))


def to_plain(summary: MessageSummary, names: Sequence[str] = SUMMARY_FIELDS) -> list[object]:
    """The named fields' values, times as integer milliseconds."""
    types = field_types(MessageSummary)
    return [
        ms_of(value) if types[name] is datetime else value
        for name in names
        for value in (getattr(summary, name),)
    ]


def from_plain(
    values: Sequence[object], names: Sequence[str] = SUMMARY_FIELDS, **known: object
) -> MessageSummary:
    """A summary from the named fields' plain values (and any given by name)."""
    types = field_types(MessageSummary)
    given: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        plain: Any = value
        given[name] = at_ms(plain) if types[name] is datetime else types[name](plain)
    return MessageSummary(**given, **known)  # type: ignore[arg-type]
