"""MailHog's message objects, made from a stored message and its sink summary: `ID`,
`From`/`To` as SMTP paths, `Content{Headers, Body, Size, MIME}`, `Created`,
`MIME{Parts}` with each part's own `Content`, and `Raw{From, To, Data, Helo}`.

As in MailHog, bodies stay transfer-encoded (clients decode them), header values stay as
written (encoded words included), folded lines are joined, a part is the text between two
boundary lines with its surrounding line ends trimmed, and `Return-Path` and `Message-ID`
are added when the message has none. Written from MailHog's documented shapes and its
clients' expectations. No I/O; module-level so ParsePool can run it in a worker.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import quopri
import re
from dataclasses import dataclass

from burnbox.model import MessageSummary
from burnbox.sink import recipients_of

Json = dict[str, object]
SEARCH_KINDS = ("from", "to", "containing")
DEFAULT_LIMIT, MAX_LIMIT = 50, 250  # MailHog's v2 page: the default and the most
_INT64 = re.compile(r"[+-]?[0-9]{1,19}")
MAX_DEPTH = 8  # multipart nesting followed; deeper parts are shown unparsed
MAX_PARTS = 500  # parts listed per multipart body
CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class Paging:
    start: int
    limit: int


def _positive(text: str) -> int | None:
    """A query value as Go's strconv.ParseInt reads it, if it is above zero."""
    if not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value < 2**63 else None


def paging(start: str, limit: str) -> Paging:
    """MailHog's v2 paging: a start that is not a positive number is 0; a limit that is not
    is 50, and one over 250 is 250. Nothing is refused (its clients ask for 5000)."""
    wanted = _positive(limit)
    return Paging(_positive(start) or 0, min(wanted or DEFAULT_LIMIT, MAX_LIMIT))


def path(address: str) -> Json:
    mailbox, _, domain = address.rpartition("@") if "@" in address else (address, "", "")
    return {"Relays": None, "Mailbox": mailbox, "Domain": domain, "Params": ""}


def headers_of(section: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    last: str | None = None
    for line in section.split(CRLF):
        if last is not None and line[:1] in (" ", "\t"):
            found[last][-1] += line  # a folded line continues the last value
        elif ": " in line:
            name, value = line.split(": ", 1)
            found.setdefault(name, []).append(value)
            last = name
    return found


def header(headers: dict[str, list[str]], name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name and values:
            return values[0]
    return None


def boundary_of(content_type: str) -> str | None:
    holder = email.message.Message()
    holder["Content-Type"] = content_type
    found = holder.get_param("boundary")
    return found if isinstance(found, str) and found else None


def content(data: str, depth: int = 0) -> Json:
    section, separator, body = data.partition(CRLF + CRLF)
    headers = headers_of(section) if separator else {}
    if not separator:
        body = data
    return {
        "Headers": headers,
        "Body": body,
        "Size": len(data.encode("utf-8", "replace")),
        "MIME": mime_body(headers, body, depth),
    }


def mime_body(headers: dict[str, list[str]], body: str, depth: int) -> Json | None:
    kind = header(headers, "content-type") or ""
    boundary = boundary_of(kind) if kind.lower().startswith("multipart/") else None
    if boundary is None or depth >= MAX_DEPTH:
        return None
    pieces = body.split("--" + boundary)[1:-1]  # no preamble, no epilogue
    parts = [content(piece.strip(CRLF), depth + 1) for piece in pieces[:MAX_PARTS] if piece]
    return {"Parts": parts}


def helo_of(headers: dict[str, list[str]]) -> str:
    """The client's EHLO name, from the Received line burnbox put on top."""
    received = header(headers, "received") or ""
    if not received.startswith("from "):
        return ""
    # "from NAME [([IP])] by HOST ...": folded lines are joined with their tab, so the name
    # ends at any white space, and a client that gave no usable name left none.
    name = received[5:].split(None, 1)[0] if received[5:].strip() else ""
    return "" if name == "by" or name.startswith("(") else name


def message(summary: MessageSummary, raw: bytes) -> Json:
    data = raw.decode("utf-8", "replace")
    data = data.removesuffix(CRLF)  # the line end before the final dot is the protocol's
    body = content(data)
    headers = body["Headers"]
    assert isinstance(headers, dict)
    if header(headers, "return-path") is None:
        headers["Return-Path"] = [f"<{summary.sender}>"]
    if header(headers, "message-id") is None:
        headers["Message-ID"] = [summary.id]
    recipients = recipients_of(summary.to)
    return {
        "ID": summary.id,
        "From": path(summary.sender),
        "To": [path(item) for item in recipients],
        "Content": {**body, "MIME": None},
        "Created": summary.received_at.isoformat(),
        "MIME": body["MIME"],
        "Raw": {"From": summary.sender, "To": recipients, "Data": data, "Helo": helo_of(headers)},
    }


def part_bytes(raw: bytes, number: int) -> tuple[str, bytes] | None:
    """The `number`th part of the top-level multipart body (MailHog's counting), decoded
    from its transfer encoding: (content type, bytes). None if there is no such part."""
    data = raw.decode("utf-8", "replace").removesuffix(CRLF)
    top = content(data)
    mime = top["MIME"]
    if not isinstance(mime, dict):
        return None
    parts = mime["Parts"]
    assert isinstance(parts, list)
    if not 0 <= number < len(parts):
        return None
    part = parts[number]
    headers, body = part["Headers"], part["Body"]
    kind = header(headers, "content-type") or "application/octet-stream"
    encoding = (header(headers, "content-transfer-encoding") or "").strip().lower()
    encoded = body.encode("utf-8", "replace")
    try:
        if encoding == "base64":
            return kind, base64.b64decode(encoded)
        if encoding == "quoted-printable":
            return kind, quopri.decodestring(encoded)
    except (binascii.Error, ValueError):
        pass  # shown as written, as an undecodable part is
    return kind, encoded


def matches(summary: MessageSummary, raw: bytes, kind: str, query: str) -> bool:
    """MailHog's search: `from` the sender (envelope or From header), `to` a recipient
    (envelope, To, Cc), `containing` anywhere in the raw message; case-insensitive."""
    wanted = query.lower()
    if kind == "containing":
        return wanted.encode("utf-8", "replace") in raw.lower()
    section = raw.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    headers = headers_of(section)
    if kind == "from":
        fields = [summary.sender, header(headers, "from") or ""]
    else:
        fields = [
            *recipients_of(summary.to),
            header(headers, "to") or "",
            header(headers, "cc") or "",
        ]
    return any(wanted in field.lower() for field in fields)
