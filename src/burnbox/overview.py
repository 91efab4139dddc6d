"""The ingest summary of a message, fast for single-part mail.

Measured (bench/smtp_ingest.py, py-spy): the stdlib parser walks every line of
a message in Python, ~500 µs for a 100 KB body, only for a summary that needs
the headers and the head of the text. So single-part messages take this path:
scan the header block with bytes operations, reproduce exactly what the
compat32 parser would make of each field, and decode only the prefix of the
body that a snippet can use. Anything unusual in the header block (bare CR,
an mbox From_ line, a line that is not a header) and every multipart or
message/* message goes to mime.overview(), the stdlib reference. A test holds
the two paths to the same answer for every message of the corpus.
"""

from __future__ import annotations

import binascii
import email.message
import re

from burnbox import mime
from burnbox.model import Overview

MAX_HEADER_BLOCK = 64 * 1024  # larger header blocks take the reference path
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")  # compat32's header line test
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_WANTED = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "content-type",
        "content-disposition",
        "content-transfer-encoding",
        "content-id",
    }
)


def summarise(raw: bytes) -> Overview:
    """The summary of a message; the same answer as mime.overview(), never raises."""
    return quick(raw) or mime.overview(raw)


def quick(raw: bytes) -> Overview | None:
    """The summary by the fast path, in time bounded by the header block; None
    when the message needs mime.overview() (whose time grows with the body)."""
    try:
        fields = _header_fields(raw)
        if fields is None:
            return None
        headers, body_start = fields
        part = email.message.Message()
        for name in ("content-type", "content-disposition", "content-transfer-encoding"):
            if name in headers:
                part[name] = headers[name]
        if part.get_content_maintype() in {"multipart", "message"}:
            return None
        return _single_part(raw, body_start, headers, part)
    except Exception:
        return None


def _header_fields(raw: bytes) -> tuple[dict[str, str], int] | None:
    """First value of each wanted field (as compat32 gives it) and where the body
    starts; None when the block has anything the reference should judge."""
    first_end = raw.find(b"\n")
    newline = b"\r\n" if first_end > 0 and raw[first_end - 1] == 0x0D else b"\n"
    end = raw.find(newline * 2)
    if end <= 0 or end > MAX_HEADER_BLOCK or raw.startswith((b"From ", newline)):
        return None
    block = raw[:end]
    if block.count(b"\r") != block.count(b"\r\n") or (
        newline == b"\r\n" and block.count(b"\n") != block.count(b"\r\n")
    ):
        return None  # a bare CR or LF is a line end to the stdlib parser
    headers: dict[str, str] = {}
    name = ""
    value = b""
    for line in block.split(newline):
        if line[:1] in (b" ", b"\t"):
            if not name:
                return None
            value += newline + line
            continue
        if not _FIELD_NAME.match(line):
            return None
        if name and name not in headers:
            headers[name] = value.decode("ascii", "surrogateescape")
        raw_name, _, rest = line.partition(b":")
        lowered = raw_name.decode("ascii").lower()
        name = lowered if lowered in _WANTED else ""
        value = rest.lstrip(b" \t")
        if not name:
            name = "\0"  # a field we do not want; its continuation lines are skipped
    if name and name != "\0" and name not in headers:
        headers[name] = value.decode("ascii", "surrogateescape")
    headers.pop("\0", None)
    return headers, end + 2 * len(newline)


def _single_part(
    raw: bytes, body_start: int, headers: dict[str, str], part: email.message.Message
) -> Overview:
    content_type = part.get_content_type()
    disposition = part.get_content_disposition()
    is_body = disposition != "attachment" and not part.get_filename()
    text = html = ""
    attachments = 0
    if is_body and content_type == "text/plain":
        text = _body_prefix(raw, body_start, part, mime.SNIPPET_TEXT_BYTES)
    elif is_body and content_type == "text/html":
        html = _body_prefix(raw, body_start, part, mime.SNIPPET_HTML_BYTES)
    else:
        content_id = mime.header_text(headers.get("content-id", ""), 255).strip().strip("<>")
        inline = disposition == "inline" or (bool(content_id) and disposition != "attachment")
        attachments = 0 if inline else 1
    limit = mime.SUMMARY_FIELD_CHARS
    return Overview(
        sender=mime.header_text(headers.get("from", ""), limit),
        to=mime.header_text(headers.get("to", ""), limit),
        subject=mime.header_text(headers.get("subject", ""), limit),
        date=mime.header_text(headers.get("date", ""), 100),
        message_id=mime.header_text(headers.get("message-id", ""), limit),
        snippet=mime.snippet(text, html),
        attachments=attachments,
    )


def _body_prefix(raw: bytes, start: int, part: email.message.Message, limit: int) -> str:
    """The first `limit` decoded bytes of the body, as text."""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        encoded = raw[start : start + limit * 2]
        whole = start + limit * 2 >= len(raw)
        clean = _NOT_BASE64.sub(b"", encoded)
        if whole:
            clean = clean[: len(clean) - (len(clean) % 4 == 1)]
            clean += b"=" * (-len(clean) % 4)
        else:
            clean = clean[: len(clean) // 4 * 4]
        data = binascii.a2b_base64(clean)
    elif encoding == "quoted-printable":
        encoded = raw[start : start + limit * 3 + 2]
        if start + limit * 3 + 2 < len(raw):
            encoded = encoded[: encoded.rfind(b"\n") + 1]  # never cut an =XX escape
        data = binascii.a2b_qp(encoded)
    elif encoding in {"", "7bit", "8bit", "binary"}:
        data = raw[start : start + limit]
    else:  # x-uuencode and the like: rare enough for the reference path
        raise ValueError(encoding)
    return mime.decode_text(data[:limit], part.get_content_charset())
