"""What the message frame shows: a standalone page of sanitised HTML, and QR codes.

The page carries its own policy: no script of any kind, styles only inline (the
sanitiser kept only harmless properties), images only from the page itself (`cid:`
parts inlined as data: URIs, since a sandboxed frame's own requests carry no
SameSite=Strict cookie) or, when the reader asked, from the network. Links open
in a new tab, outside the sandbox.
"""

from __future__ import annotations

import base64
import html as html_lib
import io

from burnbox import codes, mime, render
from burnbox.model import Message

MAX_INLINE_IMAGES = 4 * 1024 * 1024  # bytes of cid: images inlined into one page
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><base target="_blank">
<meta name="referrer" content="no-referrer"><style>body{{margin:12px;font:15px/1.45 system-ui,
sans-serif;color:#111;background:#fff;overflow-wrap:anywhere}}img{{max-width:100%;height:auto}}
pre{{white-space:pre-wrap}}</style></head><body>{body}</body></html>"""


def frame_policy(remote_allowed: bool) -> str:
    images = "data: https: http:" if remote_allowed else "data:"
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def frame_page(raw: bytes, remote_allowed: bool) -> str:
    view = mime.full_view(raw)
    if not view.html:
        body = f"<pre>{html_lib.escape(view.text)}</pre>"
    else:
        inline = _inline_images(raw, view)
        body = render.sanitise(view.html, remote_allowed=remote_allowed, cid_url=inline.get).html
    return _PAGE.format(body=body)


def message_parts(
    raw: bytes, subject: str, remote_allowed: bool, attachment_url: str
) -> tuple[Message, render.Rendered, codes.Extracted]:
    """What the API's full view shows: the parsed message, its sanitised HTML (cid: images
    pointing at `attachment_url` + index) and its codes and links. Module-level, so that
    ParsePool can run it in the worker process."""
    view = mime.full_view(raw)
    by_cid = {a.content_id: attachment_url + str(a.index) for a in view.attachments if a.content_id}
    rendered = (
        render.sanitise(view.html, remote_allowed=remote_allowed, cid_url=by_cid.get)
        if view.html
        else render.Rendered("")
    )
    return view, rendered, codes.extract(subject, view.text, view.html)


def _inline_images(raw: bytes, view: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    budget = MAX_INLINE_IMAGES
    for attachment in view.attachments:
        if not attachment.content_id or attachment.content_type not in _INLINE_TYPES:
            continue
        part = mime.attachment_bytes(raw, attachment.index)
        if part is None or len(part[1]) > budget:
            continue
        budget -= len(part[1])
        encoded = base64.b64encode(part[1]).decode("ascii")
        found[attachment.content_id] = f"data:{attachment.content_type};base64,{encoded}"
    return found


def qr_svg(text: str) -> bytes:
    import segno  # on first use: it costs 4 MiB of RSS, and many servers never draw a code

    out = io.BytesIO()
    segno.make(text, error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, dark="#111", light="#fff"
    )
    return out.getvalue()
