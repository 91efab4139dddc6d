"""The DATA and BDAT readers, without sockets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from burnbox.smtp.reader import ChunkReader, DotReader, Fault


def read_all(
    chunks: list[bytes], max_size: int = 10_000, max_line: int = 1000
) -> tuple[Fault, bytes | None, bytes]:
    reader = DotReader(max_size, max_line)
    for index, chunk in enumerate(chunks):
        used = reader.feed(chunk)
        if used is not None:
            rest = chunk[used:] + b"".join(chunks[index + 1 :])
            message = reader.message() if reader.fault is Fault.NONE else None
            return reader.fault, message, rest
    raise AssertionError("no end of data")


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


STREAM = (
    b"Subject: x\r\n\r\n..stuffed\r\n.single\r\nbare\n.\nlf\r.\rcr\r\n\r\n.\r\n"
    b"MAIL FROM:<next@example.org>\r\n"
)


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_split_gives_the_same_message(cuts: list[int]) -> None:
    fault, message, rest = read_all(split(STREAM, cuts))
    assert fault is Fault.NONE
    assert message == b"Subject: x\r\n\r\n.stuffed\r\nsingle\r\nbare\n.\nlf\r.\rcr\r\n\r\n"
    assert rest == b"MAIL FROM:<next@example.org>\r\n"


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_end_early(body: bytes, cuts: list[int]) -> None:
    """Whatever the body, the message ends at the first CRLF.CRLF and nowhere else."""
    stream = body + b"\r\n.\r\nREST"
    expected_end = (b"\r\n" + stream).find(b"\r\n.\r\n")
    fault, message, rest = read_all(split(stream, cuts), max_size=10_000, max_line=10_000)
    assert fault is Fault.NONE
    assert message is not None
    assert rest == stream[expected_end + 3 :]


def test_size_limit_discards_and_finds_the_end() -> None:
    fault, message, rest = read_all([b"a" * 500 + b"\r\n"] * 30 + [b".\r\nNEXT"], max_size=1000)
    assert fault is Fault.TOO_BIG
    assert message is None
    assert rest == b"NEXT"


def test_end_marker_split_across_chunks_while_discarding() -> None:
    chunks = [b"x" * 2000, b"\r", b"\n", b".", b"\r", b"\nNEXT"]
    fault, _, rest = read_all(chunks, max_size=100, max_line=100_000)
    assert fault is Fault.TOO_BIG
    assert rest == b"NEXT"


def test_line_length_checked_inside_one_big_chunk() -> None:
    chunk = b"short\r\n" + b"l" * 1500 + b"\r\nshort\r\n" * 200 + b".\r\n"
    fault, _, _ = read_all([chunk], max_line=1000)
    assert fault is Fault.LINE_TOO_LONG


def test_line_length_across_chunks() -> None:
    fault, _, _ = read_all([b"a" * 600, b"b" * 600, b"\r\n.\r\n"], max_line=1000)
    assert fault is Fault.LINE_TOO_LONG
    fault, _, _ = read_all([b"a" * 600, b"\r\n" + b"b" * 600, b"\r\n.\r\n"], max_line=1000)
    assert fault is Fault.NONE


def test_chunk_reader_counts_exactly() -> None:
    sink = bytearray()
    reader = ChunkReader(5, sink, 100)
    assert reader.feed(b"ab") is None
    assert reader.feed(b"cdeMORE") == 3
    assert sink == b"abcde"
    assert ChunkReader(0, sink, 100).feed(b"") == 0


def test_chunk_reader_over_the_limit_keeps_nothing() -> None:
    sink = bytearray(b"x" * 90)
    reader = ChunkReader(20, sink, 100)
    assert reader.feed(b"y" * 20) == 20
    assert reader.fault is Fault.TOO_BIG
    assert sink == b""
