"""The tags of sink mode's messages, as Mailpit keeps them: set on messages, or read from
a message's `X-Tags` header when it is first seen, as Mailpit does at ingest.

Kept by this node, by the shared view's message id and bounded (TAGS_KEPT), as the user
names of Mailpit's send are: sink mode is a QA tool that runs as one node; on several, each
node knows the tags set through it.
"""

from __future__ import annotations

import re

from burnbox.web.services import WebServices

TAGS_KEPT = 100_000  # messages whose tags this node keeps
MAX_TAG = 100
_NOT_TAG = re.compile(r"[^\w\-.@ ]", re.ASCII)
_X_TAGS = re.compile(rb"^x-tags:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def clean(names: list[str]) -> list[str]:
    """Mailpit's rule: letters, digits, space, `-`, `_`, `.` and `@`, others as spaces, at
    most 100 characters; blanks and case-insensitive duplicates dropped; sorted."""
    kept: dict[str, str] = {}
    for name in names:
        tag = " ".join(_NOT_TAG.sub(" ", name).split())[:MAX_TAG]
        if tag:
            kept.setdefault(tag.lower(), tag)
    return sorted(kept.values(), key=str.lower)


def from_header(raw: bytes) -> list[str]:
    """The tags an incoming message's X-Tags header names (comma-separated)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    found = _X_TAGS.search(head)
    if found is None:
        return []
    value = re.sub(rb"\r?\n[ \t]", b" ", found.group(1)).decode("utf-8", "replace")
    return clean(value.split(","))


def tags_of(services: WebServices, message_id: str, raw: bytes | None = None) -> list[str]:
    """The message's tags: as set here, or, the first time, from its X-Tags header."""
    if services.sink is None:
        return []
    kept = services.sink.tags
    if message_id not in kept and raw is not None:
        remember(services, message_id, from_header(raw))
    return kept.get(message_id, [])


def remember(services: WebServices, message_id: str, tags: list[str]) -> None:
    if services.sink is None:
        return
    kept = services.sink.tags
    kept[message_id] = tags
    kept.move_to_end(message_id)
    while len(kept) > TAGS_KEPT:
        kept.popitem(last=False)


def in_use(services: WebServices, ids: list[str]) -> list[str]:
    """Every tag on any of these messages, sorted ignoring case."""
    if services.sink is None:
        return []
    found = {tag for message_id in ids for tag in services.sink.tags.get(message_id, [])}
    return sorted(found, key=str.lower)


def counts(services: WebServices, ids: list[str]) -> dict[str, int]:
    """How many of these messages carry each tag."""
    found: dict[str, int] = {}
    if services.sink is not None:
        for message_id in ids:
            for tag in services.sink.tags.get(message_id, []):
                found[tag] = found.get(tag, 0) + 1
    return found
