"""Raw message bytes → a bounded summary (at ingest) and the full view (on demand).

Built on the stdlib `email` parser with the compat32 policy: it is several times
faster than `email.policy.default` on the ingest path and never raises on bad
input; the decoding the modern policy would do is done here, field by field,
with every failure falling back to the raw text. Nothing here raises on a
malformed message: a part that cannot be decoded is shown as best it can be.
"""

from __future__ import annotations

import contextlib
import email
import email.header
import email.message
import email.parser
import email.utils
import html as html_lib
import re
from collections.abc import Iterator

import nh3

from burnbox.model import Attachment, Message, Overview

MAX_DEPTH = 20  # multipart nesting we descend into
# The stdlib parser recurses once per nesting level (5,000 levels: RecursionError), and
# a message cannot nest deeper than it declares multiparts: past this many, we read the
# headers only and show the body as text.
MAX_MULTIPARTS = 200
MAX_PARTS = 500  # MIME parts we look at in one message
MAX_HEADERS = 500  # header fields we show
MAX_HEADER_CHARS = 4000  # one decoded header value, as shown
SUMMARY_FIELD_CHARS = 300  # sender, subject, recipients in a summary
SNIPPET_CHARS = 200
SNIPPET_TEXT_BYTES = 8 * 1024  # of a text/plain body, enough for any snippet
SNIPPET_HTML_BYTES = 64 * 1024  # of a text/html body, whose text may start late

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)


def parse(raw: bytes) -> email.message.Message:
    # A UTF-8 byte order mark (some Windows tools write one) would make the whole
    # message body text to the parser; the stored bytes keep it.
    data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    if len(_MULTIPART.findall(data)) > MAX_MULTIPARTS:
        return email.parser.BytesParser().parsebytes(data, headersonly=True)
    return email.message_from_bytes(data)


def overview(raw: bytes) -> Overview:
    """The summary of a message through the full stdlib parse; never raises.

    overview.quick() is the fast path for single-part mail; this is the reference it
    must agree with, and the path for everything it declines.
    """
    try:
        message = parse(raw)
        text, html, attachments = _bodies(message, prefix_only=True)
        # One pass over the header list: compat32's get() rescans it on every call.
        first: dict[str, str] = {}
        for name, value in message.raw_items():
            first.setdefault(name.lower(), value)
        return Overview(
            sender=header_text(first.get("from", ""), SUMMARY_FIELD_CHARS),
            to=header_text(first.get("to", ""), SUMMARY_FIELD_CHARS),
            subject=header_text(first.get("subject", ""), SUMMARY_FIELD_CHARS),
            date=header_text(first.get("date", ""), 100),
            message_id=header_text(first.get("message-id", ""), SUMMARY_FIELD_CHARS),
            snippet=snippet(text, html),
            attachments=sum(1 for item in attachments if not item.inline),
        )
    except Exception:
        return Overview("", "", "", "", "", "", 0)


def full_view(raw: bytes) -> Message:
    """The full view: headers, text, HTML (unsanitised), attachments; never raises."""
    try:
        message = parse(raw)
        text, html, attachments = _bodies(message, prefix_only=False)
        headers = [
            (str(name), header_text(value, MAX_HEADER_CHARS))
            for name, value in list(message.raw_items())[:MAX_HEADERS]
        ]
        return Message(headers, text, html, attachments, len(message.defects))
    except Exception:
        return Message([], raw.decode("utf-8", "replace"), "", [], 1)


def attachment_bytes(raw: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """The decoded content of attachment `index` of the full view."""
    try:
        message = parse(raw)
        for number, part in enumerate(_leaf_parts(message)):
            if number == index:
                payload = _payload_bytes(part)
                return _describe(part, number, len(payload)), payload
    except Exception:
        return None
    return None


def header_view(raw: bytes) -> list[tuple[str, str]]:
    """The message's headers as the full view shows them, without parsing its body (a
    list item's addresses: cheap whatever the message's size); never raises."""
    try:
        data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        message = email.parser.BytesParser().parsebytes(data, headersonly=True)
        return [
            (str(name), header_text(value, MAX_HEADER_CHARS))
            for name, value in list(message.raw_items())[:MAX_HEADERS]
        ]
    except Exception:
        return []


def attachment_payloads(raw: bytes) -> list[tuple[Attachment, bytes]]:
    """Every attachment of the full view with its decoded content, from one parse."""
    try:
        message = parse(raw)
        _, _, attachments = _bodies(message, prefix_only=True)
        wanted = {item.index for item in attachments}
        found = []
        for number, part in enumerate(_leaf_parts(message)):
            if number in wanted:
                payload = _payload_bytes(part)
                found.append((_describe(part, number, len(payload)), payload))
    except Exception:
        return []
    return found


def header_text(value: object, limit: int) -> str:
    """A header value as display text: encoded-words decoded, controls removed, bounded."""
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        # compat32 keeps 8-bit header bytes as surrogate escapes (read with raw_items(),
        # not get(), which wraps them in Header objects); SMTPUTF8 mail is UTF-8.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if "=?" in text:
        with contextlib.suppress(Exception):
            text = str(email.header.make_header(email.header.decode_header(text)))
    if not text.isprintable():
        text = _CONTROL.sub("", text.replace("\r\n", "").replace("\n", "").replace("\t", " "))
    return text[:limit]


def snippet(text: str, html: str) -> str:
    """A one-line preview from the text part, or else from the HTML part's text."""
    source = text or (html_lib.unescape(nh3.clean(html, tags=set())) if html else "")
    # Collapse white space only in the head of the text: a snippet needs no more.
    line = " ".join(source[: SNIPPET_CHARS * 8].split())
    if not line.isprintable():
        line = _CONTROL.sub("", line)
    return line[:SNIPPET_CHARS]


def decode_text(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", "replace")


def _bodies(message: email.message.Message, prefix_only: bool) -> tuple[str, str, list[Attachment]]:
    text = html = ""
    attachments: list[Attachment] = []
    for index, part in enumerate(_leaf_parts(message)):
        content_type = part.get_content_type()
        is_body = part.get_content_disposition() != "attachment" and not part.get_filename()
        unparsed = part.get_content_maintype() == "multipart"  # read headers-only
        if ((is_body and content_type == "text/plain") or unparsed) and not text:
            text = _payload_text(part, SNIPPET_TEXT_BYTES if prefix_only else None)
        elif is_body and content_type == "text/html" and not html:
            html = _payload_text(part, SNIPPET_HTML_BYTES if prefix_only else None)
        else:
            attachments.append(_describe(part, index, None))
    return text, html, attachments


def _leaf_parts(message: email.message.Message) -> Iterator[email.message.Message]:
    """Leaf parts depth-first, bounded in depth and count; message/rfc822 is one leaf."""
    stack: list[tuple[email.message.Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        payload = part.get_payload()
        if (
            part.is_multipart()
            and part.get_content_maintype() == "multipart"
            and isinstance(payload, list)
        ):
            if depth < MAX_DEPTH:
                stack.extend(
                    (child, depth + 1)
                    for child in reversed(payload)
                    if isinstance(child, email.message.Message)
                )
            continue
        yield part


def _payload_bytes(part: email.message.Message) -> bytes:
    if part.is_multipart():  # message/rfc822 and friends: give the enclosed message back
        return (
            part.as_bytes()
            if part.get_content_maintype() != "message"
            else b"".join(
                child.as_bytes()
                for child in part.get_payload()
                if isinstance(child, email.message.Message)
            )
        )
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _payload_text(part: email.message.Message, limit: int | None) -> str:
    data = _payload_bytes(part)
    return decode_text(data[:limit] if limit is not None else data, part.get_content_charset())


def _describe(part: email.message.Message, index: int, size: int | None) -> Attachment:
    filename = header_text(_filename(part), 255)
    content_type = part.get_content_type()
    if not filename and content_type == "message/rfc822":
        filename = "message.eml"
    content_id = header_text(_raw_header(part, "content-id"), 255).strip().strip("<>")
    inline = part.get_content_disposition() == "inline" or (
        bool(content_id) and part.get_content_disposition() != "attachment"
    )
    if size is None:
        size = len(_payload_bytes(part))
    encoding = header_text(_raw_header(part, "content-transfer-encoding"), 32).strip().lower()
    return Attachment(
        index,
        filename or f"part-{index}",
        content_type,
        size,
        content_id,
        inline,
        encoding or "7bit",
    )


def _filename(part: email.message.Message) -> str:
    """The part's file name. compat32's get_filename() reads a header whose raw 8-bit bytes
    it has already replaced (`caf\ufffd\ufffd.txt`); a raw name that is valid UTF-8 (as
    senders write it) is read as UTF-8 here, and RFC 2231 names as before."""
    for header, parameter in (("content-disposition", "filename"), ("content-type", "name")):
        value = _raw_header(part, header)
        if not value:
            continue
        if not value.isascii():
            raw = value.encode("utf-8", "surrogateescape")
            with contextlib.suppress(UnicodeDecodeError):
                value = raw.decode("utf-8")
        holder = email.message.Message()
        holder[header] = value
        found = holder.get_param(parameter, header=header)
        if found:
            return str(email.utils.collapse_rfc2231_value(found))
    return ""


def _raw_header(part: email.message.Message, name: str) -> str:
    for field, value in part.raw_items():
        if field.lower() == name:
            return str(value)
    return ""
