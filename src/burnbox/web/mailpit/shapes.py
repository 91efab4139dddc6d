"""Mailpit's JSON shapes (its swagger.json, ../shared/conformance/mailpit/), built from a
stored message and its summary. Pure functions; the routes run them in the parse pool.

Mailpit's clients compare whole objects, so each shape has exactly Mailpit's keys, in its
spelling, and nothing of burnbox's own. Addresses and dates come from the message's
headers, as Mailpit reads them (the sink's summary holds the envelope instead).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from burnbox import mime
from burnbox.model import Attachment, MessageSummary

Json = dict[str, Any]
DEFAULT_LIMIT = 50
_LINK = re.compile(r"<([^>]+)>")


@dataclass(frozen=True, slots=True)
class Paging:
    start: int
    limit: int  # 0: every message (the list) or none (a search), as Mailpit


def paging(start: str, limit: str) -> Paging:
    """Mailpit reads `start` as a positive integer or 0, `limit` as an integer of 0 or
    more or 50; it refuses neither."""
    return Paging(_integer(start, 0) if _integer(start, 0) > 0 else 0, _integer(limit, 50))


def _integer(text: str, fallback: int) -> int:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else fallback


def go_time(moment: datetime) -> str:
    """Go's encoding of a time.Time in JSON (RFC 3339, milliseconds here, `Z` for UTC)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `message-id` -> `Message-Id`."""
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def headers(view: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in view:
        found.setdefault(canonical(name), []).append(value)
    return found


def _first(view: dict[str, list[str]], name: str) -> str:
    return view.get(name, [""])[0]


def addresses(value: str) -> list[Json]:
    return [
        {"Name": name, "Address": address}
        for name, address in email.utils.getaddresses([value])
        if address or name
    ]


def sender(value: str) -> Json:
    found = addresses(value)
    return found[0] if found else {"Name": "", "Address": ""}


def _envelope_fields(view: dict[str, list[str]]) -> Json:
    return {
        "From": sender(_first(view, "From")),
        "To": addresses(", ".join(view.get("To", []))),
        "Cc": addresses(", ".join(view.get("Cc", []))),
        "Bcc": addresses(", ".join(view.get("Bcc", []))),
        "ReplyTo": addresses(", ".join(view.get("Reply-To", []))),
    }


def _message_id(view: dict[str, list[str]]) -> str:
    return _first(view, "Message-Id").strip().strip("<>")


def summary(
    stored: MessageSummary, raw: bytes, username: str = "", tags: list[str] | None = None
) -> Json:
    """One item of a list or a search, and the `new` event's data: from the headers alone
    and what was worked out at ingest (snippet, attachments), so that a list or a burst of
    events does not parse whole messages again."""
    view = headers(mime.header_view(raw))
    return {
        "ID": stored.id,
        "MessageID": _message_id(view),
        "Read": stored.seen,
        **_envelope_fields(view),
        "Subject": _first(view, "Subject"),
        "Created": go_time(stored.received_at),
        "Username": username,
        "Tags": tags or [],
        "Size": stored.size,
        "Attachments": stored.attachments,
        "Snippet": stored.snippet,
    }


def message(
    stored: MessageSummary, raw: bytes, username: str = "", tags: list[str] | None = None
) -> Json:
    """GET /api/v1/message/{ID}: the whole message."""
    full = mime.full_view(raw)
    view = headers(full.headers)
    parts = mime.attachment_payloads(raw)
    return {
        "ID": stored.id,
        "MessageID": _message_id(view),
        **_envelope_fields(view),
        "ReturnPath": _first(view, "Return-Path").strip().strip("<>"),
        "Subject": _first(view, "Subject"),
        "ListUnsubscribe": list_unsubscribe(view),
        "Date": go_time(_date(_first(view, "Date"), stored.received_at)),
        "Tags": tags or [],
        "Username": username,
        "Text": lines(full.text),
        "HTML": lines(full.html),
        "Size": stored.size,
        "Inline": [part(item, data) for item, data in parts if item.inline],
        "Attachments": [part(item, data) for item, data in parts if not item.inline],
    }


def _date(value: str, fallback: datetime) -> datetime:
    try:
        found = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        found = None
    if found is None:
        return fallback
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def list_unsubscribe(view: dict[str, list[str]]) -> Json:
    header = _first(view, "List-Unsubscribe")
    return {
        "Header": header,
        "Links": _LINK.findall(header),
        "Errors": "",
        "HeaderPost": _first(view, "List-Unsubscribe-Post"),
    }


def part_id(item: Attachment) -> str:
    """A part's ID in Mailpit's URLs: its place among the message's parts, from 1."""
    return str(item.index + 1)


def part(item: Attachment, data: bytes) -> Json:
    return {
        "PartID": part_id(item),
        "FileName": item.filename,
        "ContentType": item.content_type,
        "ContentID": item.content_id,
        "Size": len(data),
        "Checksums": {
            "MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "SHA1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "SHA256": hashlib.sha256(data).hexdigest(),
        },
    }


def header_map(raw: bytes) -> dict[str, list[str]]:
    """GET /api/v1/message/{ID}/headers: every header, Go's spelling, values in order."""
    return headers(mime.full_view(raw).headers)


def lines(text: str) -> str:
    """A body's line breaks as Mailpit gives them: the wire's CRLF as LF."""
    return text.replace("\r\n", "\n")


def html_of(raw: bytes) -> str:
    return lines(mime.full_view(raw).html)


def text_of(raw: bytes) -> str:
    return lines(mime.full_view(raw).text)
