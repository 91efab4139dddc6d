"""Parsing: every corpus message gives a sensible summary and full view; bounds hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from burnbox import mime, overview
from tests.helpers import corpus_cases, corpus_messages


@pytest.mark.parametrize("path", corpus_cases(), ids=lambda p: p.name)
def test_corpus_message_parses(path: Path) -> None:
    raw = path.read_bytes()
    summary = mime.overview(raw)
    view = mime.full_view(raw)
    assert len(summary.subject) <= mime.SUMMARY_FIELD_CHARS
    assert len(summary.snippet) <= mime.SNIPPET_CHARS
    assert summary.attachments >= 0
    for field in (summary.sender, summary.subject, summary.snippet, summary.to):
        assert "\r" not in field
        assert "\n" not in field
        assert "\x00" not in field
    assert isinstance(view.text, str)
    assert isinstance(view.html, str)
    if re.match(rb"[\x21-\x39\x3b-\x7e]+:", raw.removeprefix(b"\xef\xbb\xbf")):
        assert view.headers, "a message that starts with a header shows its headers"
    for attachment in view.attachments:
        found = mime.attachment_bytes(raw, attachment.index)
        assert found is not None
        assert found[0].filename == attachment.filename
        assert len(found[1]) == attachment.size


@pytest.mark.parametrize("path", corpus_cases(), ids=lambda p: p.name)
def test_fast_summary_agrees_with_the_reference(path: Path) -> None:
    raw = path.read_bytes()
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    for variant in (raw, crlf, b"Received: from x\r\n\tby y;\r\n\tdate\r\n" + crlf):
        assert overview.summarise(variant) == mime.overview(variant)


def test_fast_path_is_taken_for_plain_mail() -> None:
    raw = (
        b"From: A <a@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu\r\n"
    )
    quick = overview.quick(raw)
    assert quick is not None
    assert quick.subject == "café"
    assert quick.snippet == "déjà vu"
    assert quick == mime.overview(raw)


def test_known_summaries() -> None:
    by_name = {p.name: p.read_bytes() for p in corpus_messages()}
    latin = mime.overview(by_name["mikelmail-latin1-raw-subject.eml"])
    assert latin.sender.startswith('" Formação Frenetikpolis "')
    utf8 = mime.overview(by_name["mikelmail-smtputf8-headers.eml"])
    assert utf8.subject == "Säying Hello"
    gif = mime.full_view(by_name["cpython-gif-attachment.eml"])
    assert [a.filename for a in gif.attachments] == ["dingusfish.gif"]
    assert gif.attachments[0].content_type == "image/gif"


def test_nesting_depth_is_bounded() -> None:
    depth = 5000
    raw = (
        b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
            for n in range(depth)
        )
        + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    )
    view = mime.full_view(raw)
    assert view.headers == [("Content-Type", "multipart/mixed; boundary=b0")]
    assert view.text.startswith("--b0\r\n")  # shown as text, not recursed into
    assert mime.overview(raw).snippet.startswith("--b0 Content-Type: multipart/mixed;")


def test_nesting_within_the_bound_is_walked_to_max_depth() -> None:
    depth = 50
    raw = (
        b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
            for n in range(depth)
        )
        + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    )
    assert mime.full_view(raw).text == ""  # the leaf lies beyond MAX_DEPTH
    shallow = (
        b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
            for n in range(5)
        )
        + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    )
    assert mime.full_view(shallow).text.startswith("deep")


def test_part_count_is_bounded() -> None:
    parts = b"".join(
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n" for _ in range(2000)
    )
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    view = mime.full_view(raw)
    assert len(view.attachments) < mime.MAX_PARTS


def test_header_values_are_bounded_and_headers_counted() -> None:
    raw = (
        b"Subject: "
        + b"s" * 100_000
        + b"\r\n"
        + b"".join(b"X-H%d: v\r\n" % n for n in range(2000))
        + b"\r\nbody\r\n"
    )
    view = mime.full_view(raw)
    assert len(view.headers) == mime.MAX_HEADERS
    assert all(len(value) <= mime.MAX_HEADER_CHARS for _, value in view.headers)
    assert len(mime.overview(raw).subject) == mime.SUMMARY_FIELD_CHARS


def test_garbage_never_raises() -> None:
    for raw in (
        b"",
        b"\x00" * 100,
        b"\xff\xfe\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n",
        b"Subject: =?x-unknown?q?zz?=\r\n\r\n",
        b":\r\n\r\n",
    ):
        assert mime.overview(raw) == overview.summarise(raw)
        mime.full_view(raw)
