"""Mailpit's search syntax (../shared/conformance/mailpit/README.md, "How search works"):
a query parsed into terms, and a message's searchable fields matched against them. Pure.

Every term must match (there is no OR). A term of more than one character that starts with
`-` or `!` is negated. Values are compared as Mailpit's SQL `LIKE` compares them, without
escaping: `%` stands for any run of characters and `_` for any one.
"""

from __future__ import annotations

import email.utils
import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3

from burnbox import mime
from burnbox.model import MessageSummary

MAX_TERMS = 50
_TERM = re.compile(r'[^\s"]*"[^"]*"?[^\s"]*|\S+')
_NOISE = re.compile(r"[<>\",;()\t\r\n]")
_SIZE = re.compile(r"^(\d+)(\.\d+)?\s?([a-z]{1,2})?$")
_ADDRESS_FIELDS = {"to": "To", "from": "From", "cc": "Cc", "bcc": "Bcc", "reply-to": "Reply-To"}
_DATE_FORMATS = ("%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y", "%Y/%m/%d", "%d/%m/%Y")


class EmptyQuery(ValueError):
    """A blank query: Mailpit answers 400 `Error: no search query`."""


@dataclass(frozen=True, slots=True)
class Term:
    negated: bool
    field: str  # "" for free text; else the lower-cased prefix before ":"
    value: str


@dataclass(frozen=True, slots=True)
class Searchable:
    """What a term can look at in one message."""

    lists: dict[str, str]  # "To", "From", ...: the list as JSON text, normalised
    subject: str
    message_id: str
    text: str  # headers, body text, attachment names: normalised
    read: bool
    attachments: int
    inline: int
    received_at: datetime
    size: int
    tags: tuple[str, ...] = ()


def normalise(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text.lower()).split())


def parse(query: str) -> list[Term]:
    """The terms of a query; EmptyQuery when there are none."""
    found = []
    for word in _TERM.findall(query)[:MAX_TERMS]:
        negated = len(word) > 1 and word[0] in "-!"
        word = (word[1:] if negated else word).replace('"', "")
        field, colon, value = word.partition(":")
        if colon and field.lower() in _KNOWN:
            found.append(Term(negated, field.lower(), value))
        elif word:
            found.append(Term(negated, "", word))
    if not found:
        raise EmptyQuery("no search query")
    return found


def searchable(summary: MessageSummary, raw: bytes) -> Searchable:
    full = mime.full_view(raw)
    first: dict[str, str] = {}
    for name, value in full.headers:
        first.setdefault(name.lower(), value)
    lists = {
        label: normalise(_json_list(first.get(label.lower(), "")))
        for label in _ADDRESS_FIELDS.values()
    }
    body = html_lib.unescape(nh3.clean(full.html, tags=set())) if full.html else full.text
    heads = [first.get(name, "") for name in ("from", "subject", "to", "cc", "bcc", "reply-to")]
    names = [item.filename for item in full.attachments]
    return Searchable(
        lists=lists,
        subject=first.get("subject", ""),
        message_id=first.get("message-id", "").strip().strip("<>"),
        text=normalise(" ".join([*heads, first.get("return-path", ""), body, *names])),
        read=summary.seen,
        attachments=sum(1 for item in full.attachments if not item.inline),
        inline=sum(1 for item in full.attachments if item.inline),
        received_at=summary.received_at,
        size=summary.size,
    )


def _json_list(value: str) -> str:
    """The list as Mailpit stores it (JSON of Name and Address), for its substring match."""
    pairs = email.utils.getaddresses([value]) if value else []
    return " ".join(f'{{"Name":"{name}","Address":"{address}"}}' for name, address in pairs)


def like(pattern: str, text: str) -> bool:
    """`%pattern%` under SQL LIKE, unescaped as Mailpit's."""
    parts = [".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern]
    return re.search("".join(parts), text, re.DOTALL) is not None


def matches(terms: list[Term], item: Searchable, zone: str = "") -> bool:
    where = zone_of(zone)
    return all(_holds(term, item, where) for term in terms)


def _holds(term: Term, item: Searchable, zone: tzinfo) -> bool:
    result = _KNOWN.get(term.field, _free_text)(term, item, zone)
    if result is None:  # a term that means nothing (a bad date): ignored, as Mailpit
        return True
    return result != term.negated


def _free_text(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    text = normalise(f"{term.field}:{term.value}" if term.field else term.value)
    return like(text, item.text)


def _address(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    value = normalise(term.value)
    if term.field == "addressed":
        return any(like(value, text) for text in item.lists.values())
    return like(value, item.lists[_ADDRESS_FIELDS[term.field]])


def _subject(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    return like(term.value.lower(), item.subject.lower())


def _message_id(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    return like(term.value.strip("<>"), item.message_id)


def _tag(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    return term.value.lower() in {tag.lower() for tag in item.tags}


def _flag(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    value = term.value.lower()
    flags = {
        "is:read": item.read,
        "is:unread": not item.read,
        "is:tagged": bool(item.tags),
        "has:attachment": item.attachments > 0,
        "has:attachments": item.attachments > 0,
        "has:inline": item.inline > 0,
        "has:inlines": item.inline > 0,
    }
    key = f"{term.field}:{value}"
    return flags[key] if key in flags else _free_text(term, item, UTC)


def _when(term: Term, item: Searchable, zone: tzinfo) -> bool | None:
    moment = parse_date(term.value, zone)
    if moment is None:
        return None
    if term.field == "after":
        return item.received_at >= moment if not term.negated else not item.received_at <= moment
    return item.received_at <= moment if not term.negated else not item.received_at >= moment


def _size(term: Term, item: Searchable, _: tzinfo) -> bool | None:
    size = size_in_bytes(term.value)
    if size <= 0:
        return _free_text(term, item, UTC)  # not a size: free text, as Mailpit
    larger = term.field == "larger"
    if term.negated:  # Mailpit's negations are strict the other way: neither includes equal
        return not (item.size < size if larger else item.size > size)
    return item.size > size if larger else item.size < size


_KNOWN: dict[str, Callable[[Term, Searchable, tzinfo], bool | None]] = {
    **dict.fromkeys([*_ADDRESS_FIELDS, "addressed"], _address),
    "subject": _subject,
    "message-id": _message_id,
    "tag": _tag,
    "is": _flag,
    "has": _flag,
    "after": _when,
    "before": _when,
    "larger": _size,
    "smaller": _size,
}


def size_in_bytes(text: str) -> int:
    found = _SIZE.match(text.strip().lower())
    if found is None:
        return 0
    number = float(found.group(1) + (found.group(2) or ""))
    unit = found.group(3) or ""
    scale = {"": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2}.get(unit, 0)
    return int(number * scale)


def parse_date(text: str, zone: tzinfo) -> datetime | None:
    """A date as a person writes it, in `zone` unless it says its own; None if unreadable."""
    text = text.strip()
    found: datetime | None = None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        for form in _DATE_FORMATS:
            try:
                found = datetime.strptime(text, form)
                break
            except ValueError:
                continue
        else:
            try:
                found = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
    return found if found.tzinfo else found.replace(tzinfo=zone)


def zone_of(name: str) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC  # an unknown zone is ignored, as Mailpit
