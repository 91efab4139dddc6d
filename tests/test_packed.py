"""The RAM-only store's packed summaries give back exactly what went in, and are smaller."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from burnbox import mime
from burnbox.model import MessageSummary
from burnbox.storage import packed
from tests.helpers import corpus_messages, real_now

RECEIVED = real_now().replace(microsecond=123456)  # microseconds: they must round-trip too


def summary(**fields: object) -> MessageSummary:
    values: dict[str, object] = dict(
        id="01JD0000000000000000000000",
        address="qa@localhost",
        received_at=RECEIVED,
        expires_at=RECEIVED + timedelta(hours=24),
        size=2048,
        sender="<a@example.org>",
        subject="Hello",
        snippet="Body text",
        attachments=0,
        date="Sat, 21 Nov 2026",
        message_id="<1@example.org>",
        to="<qa@localhost>",
        seen=False,
    )
    values.update(fields)
    return MessageSummary(**values)  # type: ignore[arg-type]


def round_trip(original: MessageSummary) -> MessageSummary:
    return packed.unpack(original.address, original.id, packed.pack(original))


def test_every_corpus_summary_comes_back_unchanged() -> None:
    paths = corpus_messages()
    assert len(paths) > 150  # the whole corpus, not a part of it
    for path in paths:
        parsed = mime.overview(path.read_bytes())
        original = summary(
            sender=parsed.sender,
            to=parsed.to,
            subject=parsed.subject,
            date=parsed.date,
            message_id=parsed.message_id,
            snippet=parsed.snippet,
            attachments=parsed.attachments,
        )
        assert round_trip(original) == original, path.name


# Lone surrogates too: the parser keeps undecodable header bytes as surrogate escapes.
ANY_TEXT = st.text(st.characters(exclude_categories=[]) | st.sampled_from("\udcff\ud83d"))


@given(
    texts=st.lists(ANY_TEXT, min_size=6, max_size=6),
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    ),
    size=st.integers(0, 2**32 - 1),
    attachments=st.integers(0, 2**32 - 1),
    seen=st.booleans(),
)
def test_any_text_and_time_come_back_unchanged(
    texts: list[str], moment: datetime, size: int, attachments: int, seen: bool
) -> None:
    sender, to, subject, date, message_id, snippet = texts
    original = summary(
        sender=sender,
        to=to,
        subject=subject,
        date=date,
        message_id=message_id,
        snippet=snippet,
        received_at=moment,
        expires_at=moment + timedelta(seconds=1),
        size=size,
        attachments=attachments,
        seen=seen,
    )
    assert round_trip(original) == original
    assert packed.expires_at(packed.pack(original)) == original.expires_at


def test_a_packed_summary_is_less_than_half_the_objects_it_replaces() -> None:
    original = summary(subject="Your verification code 🔑", snippet="Use 482913 " * 18)
    held = sys.getsizeof(original) + sum(
        sys.getsizeof(getattr(original, name))
        for name in (
            "received_at",
            "expires_at",
            "sender",
            "to",
            "subject",
            "date",
            "message_id",
            "snippet",
        )
    )
    assert sys.getsizeof(packed.pack(original)) * 2 < held
