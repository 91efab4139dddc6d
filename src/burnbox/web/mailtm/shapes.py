"""mail.tm's resources as JSON, made from burnbox's model: JSON-LD (Hydra) by default and
for `Accept: application/ld+json`, plain JSON for `Accept: application/json` (Mailjs asks
for that and reads `data[0].domain`). No I/O."""

from __future__ import annotations

import email.utils
import hashlib
import math
from datetime import datetime

from burnbox.model import EPOCH, Attachment, Inbox, MessageSummary

LD = "application/ld+json; charset=utf-8"
PLAIN = "application/json; charset=utf-8"
PAGE_SIZE = 30  # mail.tm's page
ATTACHMENT_PREFIX = "ATTACH"
Json = dict[str, object]


def wants_plain(accept: str) -> bool:
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and "application/ld+json" not in types


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def domain_id(name: str) -> str:
    return hashlib.sha256(b"domain\0" + name.encode()).hexdigest()[:24]


def domain(name: str) -> Json:
    # Domains come from the settings, which keep no dates: the epoch says "always".
    return {
        "id": domain_id(name),
        "domain": name,
        "isActive": True,
        "isPrivate": False,
        "createdAt": stamp(EPOCH),
        "updatedAt": stamp(EPOCH),
    }


def account(inbox: Inbox, account_id: str, used: int, quota: int, *, deleted: bool = False) -> Json:
    return {
        "id": account_id,
        "address": inbox.address,
        "quota": quota,
        "used": used,
        "isDisabled": False,
        "isDeleted": deleted,
        "createdAt": stamp(inbox.created_at),
        "updatedAt": stamp(inbox.created_at),
    }


def _people(text: str) -> list[Json]:
    return [
        {"name": name, "address": address}
        for name, address in email.utils.getaddresses([text])
        if address
    ]


def message_item(summary: MessageSummary, account_id: str) -> Json:
    sender = _people(summary.sender)
    return {
        "id": summary.id,
        "accountId": f"/accounts/{account_id}",
        "msgid": summary.message_id,
        "from": sender[0] if sender else {"name": "", "address": summary.sender},
        "to": _people(summary.to),
        "subject": summary.subject,
        "intro": summary.snippet,
        "seen": summary.seen,
        "isDeleted": False,
        "hasAttachments": summary.attachments > 0,
        "size": summary.size,
        "downloadUrl": f"/messages/{summary.id}/download",
        "sourceUrl": f"/sources/{summary.id}",
        "createdAt": stamp(summary.received_at),
        "updatedAt": stamp(summary.received_at),
    }


def header_addresses(headers: list[tuple[str, str]], name: str) -> list[str]:
    values = [value for field, value in headers if field.lower() == name]
    return [address for _, address in email.utils.getaddresses(values) if address]


def message_full(
    summary: MessageSummary,
    account_id: str,
    headers: list[tuple[str, str]],
    text: str,
    html: str,
    attachments: list[Attachment],
    verifications: list[str],
) -> Json:
    return {
        **message_item(summary, account_id),
        "cc": header_addresses(headers, "cc"),
        "bcc": header_addresses(headers, "bcc"),
        "flagged": False,
        "verifications": verifications,
        "retention": True,
        "retentionDate": stamp(summary.expires_at),
        "text": text,
        "html": [html] if html else [],
        "attachments": [attachment(summary.id, item) for item in attachments],
    }


def attachment_id(index: int) -> str:
    """mail.tm's style of attachment id; the number is burnbox's part index, so the cid:
    images of the sanitised HTML (prefix + index) name the same attachment."""
    return f"{ATTACHMENT_PREFIX}{index:06d}"


def attachment_index(identifier: str) -> int | None:
    digits = identifier.removeprefix(ATTACHMENT_PREFIX)
    if identifier == digits or not digits.isdigit() or len(digits) > 6:
        return None
    return int(digits)


def attachment(message_id: str, item: Attachment) -> Json:
    identifier = attachment_id(item.index)
    return {
        "id": identifier,
        "filename": item.filename,
        "contentType": item.content_type,
        "disposition": "inline" if item.inline else "attachment",
        "transferEncoding": item.transfer_encoding,
        "related": bool(item.content_id),
        "size": item.size,
        "downloadUrl": f"/messages/{message_id}/attachment/{identifier}",
    }


def resource(kind: str, iri: str, fields: Json, plain: bool) -> Json:
    """One resource as its own document."""
    return (
        fields if plain else {"@context": f"/contexts/{kind}", "@id": iri, "@type": kind, **fields}
    )


def member(kind: str, iri: str, fields: Json) -> Json:
    """One resource inside a JSON-LD collection."""
    return {"@id": iri, "@type": kind, **fields}


def collection(
    kind: str, path: str, members: list[tuple[str, Json]], total: int, page: int, plain: bool
) -> Json | list[Json]:
    """A page of (iri, fields) members: a plain list, or a hydra:Collection with its view."""
    if plain:
        return [fields for _, fields in members]
    body: Json = {
        "@context": f"/contexts/{kind}",
        "@id": path,
        "@type": "hydra:Collection",
        "hydra:member": [member(kind, iri, fields) for iri, fields in members],
        "hydra:totalItems": total,
    }
    last = max(1, math.ceil(total / PAGE_SIZE))
    if last > 1:  # as mail.tm (API Platform): a collection of one page has no view at all
        body["hydra:view"] = view(path, page, last)
    return body


def view(path: str, page: int, last: int) -> Json:
    """API Platform's PartialCollectionView: this page, the first and last, and the pages
    before and after it where there are such (none after a page past the last)."""
    found: Json = {
        "@id": f"{path}?page={page}",
        "@type": "hydra:PartialCollectionView",
        "hydra:first": f"{path}?page=1",
        "hydra:last": f"{path}?page={last}",
    }
    if page > 1:
        found["hydra:previous"] = f"{path}?page={page - 1}"
    if page < last:
        found["hydra:next"] = f"{path}?page={page + 1}"
    return found
