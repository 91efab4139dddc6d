"""`POST /api/v1/send`'s JSON made into a message, as Mailpit makes it: From, To, Cc and
Reply-To with their names, the Bcc header kept, a Return-Path, the text and HTML bodies,
inline parts (those with a ContentID) beside the HTML and attachments after, each with its
type detected when none is given; the request's own headers, except those that would
override the message's addressing, date, subject or structure; `X-Tags` for tags. Pure.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import mimetypes
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from burnbox.addressing import AddressError, parse_address

# Headers a send request may not set: its addressing, date, subject and structure.
PROTECTED = {
    "to",
    "from",
    "cc",
    "bcc",
    "reply-to",
    "date",
    "subject",
    "content-type",
    "mime-version",
}
MAX_RECIPIENTS = 1000
# Content sniffing for the common types (what Go's http.DetectContentType tells apart).
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)


class Refused(ValueError):
    """The request cannot make a message; the text is Mailpit's error."""


@dataclass(frozen=True, slots=True)
class Composed:
    raw: bytes
    sender: str
    recipients: list[str]


def lower_keys(value: Any) -> Any:
    """Go's JSON decoder matches keys ignoring case: so does this, at every depth."""
    if isinstance(value, dict):
        return {str(key).lower(): lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lower_keys(item) for item in value]
    return value


def compose(request: dict[str, Any], hostname: str) -> Composed:
    body = lower_keys(request)
    sender = _person(body.get("from"), "From")
    to, cc = _people(body.get("to"), "To"), _people(body.get("cc"), "Cc")
    reply_to = _people(body.get("replyto"), "ReplyTo")
    bcc = [_checked(item, "Bcc") for item in _list(body.get("bcc")) if isinstance(item, str)]
    recipients = [address for _, address in [*to, *cc]] + bcc
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise Refused("at least one To, Cc or Bcc address is required")
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.utils.formataddr(sender)
    for name, people in (("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if people:
            message[name] = ", ".join(email.utils.formataddr(person) for person in people)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    message["Return-Path"] = f"<{sender[1]}>"
    message["Subject"] = _text(body.get("subject"))
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=hostname)
    _headers(message, body)
    _bodies(message, body)
    return Composed(message.as_bytes(), sender[1], recipients)


def _headers(message: EmailMessage, body: dict[str, Any]) -> None:
    extra = body.get("headers")
    if isinstance(extra, dict):
        for name, value in list(extra.items())[:100]:
            if name not in PROTECTED and isinstance(value, str) and name.isascii():
                message[_spell(name)] = value
    tags = [tag for tag in _list(body.get("tags")) if isinstance(tag, str)]
    if tags:
        message["X-Tags"] = ", ".join(tags)


def _spell(name: str) -> str:
    """A header name as Go writes it (the request's keys were lower-cased)."""
    return "-".join(word[:1].upper() + word[1:] for word in name.split("-"))


def _bodies(message: EmailMessage, body: dict[str, Any]) -> None:
    text, html = _text(body.get("text")), _text(body.get("html"))
    files = [_file(item) for item in _list(body.get("attachments"))]
    message.set_content(text or "")
    if html:
        message.add_alternative(html, subtype="html")
        html_part = message.get_body(("html",))
        for name, kind, data, cid in files:
            if cid and isinstance(html_part, EmailMessage):
                maintype, _, subtype = kind.partition("/")
                html_part.add_related(
                    data,
                    maintype=maintype,
                    subtype=subtype,
                    cid=f"<{cid}>",
                    disposition="inline",
                    filename=name,
                )
    for name, kind, data, cid in files:
        if not (cid and html):
            maintype, _, subtype = kind.partition("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def _file(item: Any) -> tuple[str, str, bytes, str]:
    if not isinstance(item, dict):
        raise Refused("an attachment must be an object")
    name = _text(item.get("filename"))
    try:
        data = base64.b64decode(_text(item.get("content")), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"invalid base64 content for attachment {name}") from None
    kind = _text(item.get("contenttype")) or detect(data, name)
    if "/" not in kind:
        kind = "application/octet-stream"
    return name, kind, data, _text(item.get("contentid"))


def detect(data: bytes, name: str) -> str:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _person(value: Any, field: str) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise Refused(f"invalid {field} address: ")
    return _text(value.get("name")), _checked(_text(value.get("email")), field)


def _people(value: Any, field: str) -> list[tuple[str, str]]:
    return [_person(item, field) for item in _list(value)]


def _checked(address: str, field: str) -> str:
    try:
        return str(parse_address(address.strip()))
    except AddressError:
        raise Refused(f"invalid {field} address: {address}") from None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
