"""Content-Disposition for downloads, safe for any file name a sender can write.

RFC 6266 with RFC 8187's `filename*`: a pure-ASCII `filename=` fallback for old clients
and the UTF-8 name percent-encoded for the rest. Headers must be Latin-1 on the wire (a
name in Cyrillic once made the download answer 500), so nothing but ASCII goes out. Path
separators, control characters and bidirectional controls (which can disguise
`evil‮fdp.exe` as `evil.exe.pdf`) are removed, and the length is bounded.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from starlette.responses import Response

MAX_NAME = 150  # characters of a file name kept
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ]+")


def clean_name(name: str) -> str:
    """A name with no path, no control or bidi characters, bounded; '' if nothing is left."""
    name = name.translate(_BIDI)
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = name.replace("/", "_").replace("\\", "_").strip(" .")
    return name[:MAX_NAME]


def content_disposition(name: str, fallback: str) -> str:
    """`attachment` with an ASCII fallback name and the full name as UTF-8."""
    cleaned = clean_name(name) or fallback
    return (
        f'attachment; filename="{ascii_fallback(cleaned) or fallback}"; '
        f"filename*=UTF-8''{quote(cleaned, safe='')}"
    )


def ascii_fallback(name: str) -> str:
    """`café.txt` → `cafe.txt`, `Отчёт.pdf` → `_.pdf`: accents dropped, the rest `_`."""
    letters = "".join(
        char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char)
    )
    return _ASCII_UNSAFE.sub("_", letters).strip(" .")[:MAX_NAME]


# Mail is never kept by a cache on the way.
PRIVATE = {"Cache-Control": "private, no-store"}
# Attachment types served as themselves; any other is served as application/octet-stream.
SAFE_DOWNLOAD_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/calendar",
    }
)


def download(content: bytes, media_type: str, name: str, fallback: str) -> Response:
    """A file from a message, as a download that is never rendered in our origin and
    never cached on the way."""
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(name, fallback),
            "Content-Security-Policy": "sandbox",
            **PRIVATE,
        },
    )


def eml(raw: bytes, message_id: str) -> Response:
    """A message as received."""
    return download(raw, "message/rfc822", f"{message_id}.eml", "message.eml")


def attachment(content: bytes, content_type: str, name: str, fallback: str) -> Response:
    """An attachment: its own type only when it is a safe one."""
    kind = content_type if content_type in SAFE_DOWNLOAD_TYPES else "application/octet-stream"
    return download(content, kind, name, fallback)
