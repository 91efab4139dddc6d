"""A message summary packed into one bytes object, for the RAM-only store.

A `MessageSummary` held as objects (the dataclass, two datetimes and six strings, each with
its own object header) takes about 770 bytes for a typical verification mail; packed, the
times and counts sit in a fixed head and the texts follow as UTF-8, one object of about 320
bytes (both by sys.getsizeof, summed), and a text with one emoji no longer widens its
neighbours. The inbox address and message id are not packed: the store keys on them.

Head: the times (microseconds since the epoch, so a datetime comes back exactly), counts
and flags, in the order of the summary's fields, then the UTF-8 length of each text.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from burnbox.model import SUMMARY_FIELDS, MessageSummary, field_types

# The layout is made from the summary's fields: times (as microseconds), counts and flags in
# the head, in field order; then every text. The store keys on the id and the address.
_TYPES = field_types(MessageSummary)
_KEYS = ("id", "address")
_FIXED = tuple(name for name in SUMMARY_FIELDS if name not in _KEYS and _TYPES[name] is not str)
_TEXTS = tuple(name for name in SUMMARY_FIELDS if name not in _KEYS and _TYPES[name] is str)
_CODES = {datetime: "q", int: "I", bool: "?"}
_HEAD = struct.Struct("<" + "".join(_CODES[_TYPES[name]] for name in _FIXED) + f"{len(_TEXTS)}I")
_TIMES = tuple(index for index, name in enumerate(_FIXED) if _TYPES[name] is datetime)
_GET_FIXED = attrgetter(*_FIXED)
_GET_TEXTS = attrgetter(*_TEXTS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time_at(name: str) -> struct.Struct:
    """A struct that reads one time of the head, at its offset."""
    position = _FIXED.index(name)
    offset = struct.calcsize("<" + "".join(_CODES[_TYPES[n]] for n in _FIXED[:position]))
    return struct.Struct("<" + "x" * offset + "q")


_RECEIVED = _time_at("received_at")
_EXPIRES = _time_at("expires_at")


def pack(summary: MessageSummary) -> bytes:
    fixed = list(_GET_FIXED(summary))
    for index in _TIMES:
        fixed[index] = _micros(fixed[index])
    texts = [_utf8(text) for text in _GET_TEXTS(summary)]
    return b"".join((_HEAD.pack(*fixed, *map(len, texts)), *texts))


def unpack(address: str, message_id: str, record: bytes) -> MessageSummary:
    head = _HEAD.unpack_from(record)
    fixed = list(head[: len(_FIXED)])
    for index in _TIMES:
        fixed[index] = _moment(fixed[index])
    texts: list[str] = []
    start = _HEAD.size
    for length in head[len(_FIXED) :]:
        texts.append(record[start : start + length].decode("utf-8", "surrogatepass"))
        start += length
    values: dict[str, Any] = {
        **dict(zip(_FIXED, fixed, strict=True)),
        **dict(zip(_TEXTS, texts, strict=True)),
    }
    return MessageSummary(id=message_id, address=address, **values)


def expires_at(record: bytes) -> datetime:
    """The expiry alone, without unpacking the rest (the purge reads only this)."""
    return _moment(_EXPIRES.unpack_from(record)[0])


def received_at(record: bytes) -> datetime:
    """The arrival time alone (which inbox's mail a message is)."""
    return _moment(_RECEIVED.unpack_from(record)[0])


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
