"""A message summary packed into one bytes object, for the RAM-only store.

A `MessageSummary` held as objects costs about 840 bytes beyond the raw message at 2 KB
(bench/README.md, "Memory"): the dataclass, two datetimes and six strings, each with its
own object header. Packed, the times and counts sit in a fixed head and the six texts follow
as UTF-8, so one object of about 400 bytes holds it all, and a text with one emoji no
longer widens its neighbours. The inbox address and message id are not packed: the store
already keys on them.

Head: received and expiry times (microseconds since the epoch, so a datetime comes back
exactly), size, attachment count, seen, then the UTF-8 length of each text.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from burnbox.model import MessageSummary

_HEAD = struct.Struct("<qqII?6I")
_EXPIRES = struct.Struct("<q")  # one time of the head: received at 0, expires at 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pack(summary: MessageSummary) -> bytes:
    texts = [_utf8(text) for text in (summary.sender, summary.to, summary.subject,
                                      summary.date, summary.message_id, summary.snippet)]
    head = _HEAD.pack(_micros(summary.received_at), _micros(summary.expires_at), summary.size,
                      summary.attachments, summary.seen, *map(len, texts))
    return b"".join((head, *texts))


def unpack(address: str, message_id: str, record: bytes) -> MessageSummary:
    received, expires, size, attachments, seen, *lengths = _HEAD.unpack_from(record)
    texts: list[str] = []
    start = _HEAD.size
    for length in lengths:
        texts.append(record[start:start + length].decode("utf-8", "surrogatepass"))
        start += length
    sender, to, subject, date, message_id_header, snippet = texts
    return MessageSummary(
        id=message_id, address=address, received_at=_moment(received),
        expires_at=_moment(expires), size=size, sender=sender, subject=subject,
        snippet=snippet, attachments=attachments, date=date, message_id=message_id_header,
        to=to, seen=seen)


def expires_at(record: bytes) -> datetime:
    """The expiry alone, without unpacking the rest (the purge reads only this)."""
    return _moment(_EXPIRES.unpack_from(record, 8)[0])


def received_at(record: bytes) -> datetime:
    """The arrival time alone (which inbox's mail a message is)."""
    return _moment(_EXPIRES.unpack_from(record, 0)[0])


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate, from undecodable header bytes: kept as is
        return text.encode("utf-8", "surrogatepass")


def _micros(moment: datetime) -> int:
    # Exact integer arithmetic, and about half the time of `// timedelta(microseconds=1)`
    # (this runs twice for every message stored).
    since = moment - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
