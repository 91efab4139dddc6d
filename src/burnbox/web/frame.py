"""What the message frame shows: a standalone page of sanitised HTML, and QR codes.

The page carries its own policy: no script of any kind, styles only from the page itself
(the mail's own CSS, cleaned by css.py), images and fonts only from the page itself
(`cid:` parts inlined as data: URIs, since a sandboxed frame's own requests carry no
SameSite=Strict cookie) or, when the reader asked, images from the network. Links open
in a new tab, outside the sandbox. An HTML mail gets no styles of ours: it is laid out
as its sender meant; a text-only mail gets a readable default that wraps on a phone, with
its links made links.

The sandbox keeps the frame's origin (`allow-same-origin`, never `allow-scripts`): the
page that holds it reads the mail's height and makes the frame that tall, so the page
scrolls once, while the mail still runs nothing (no script runs without allow-scripts,
and the policy allows none either).
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import re

from burnbox import codes, mime, render
from burnbox.model import Message

MAX_INLINE_IMAGES = 4 * 1024 * 1024  # bytes of cid: images inlined into one page
# CSS costs more per byte than the rest of a render (tinycss2: 64 KiB of tiny rules take
# about 0.25 s here): a message with styles counts this many times its size when the parse
# pool decides whether to render it on the event loop, so a styled message over ~8 KiB is
# rendered in a worker process.
STYLE_COST = 8
_STYLE = re.compile(rb"(?i)style")
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><base target="_blank">
<meta name="referrer" content="no-referrer"><style>body{{margin:12px;font:15px/1.45 system-ui,
sans-serif;color:#111;background:#fff}}pre{{white-space:pre-wrap;overflow-wrap:anywhere;
word-break:break-word;font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;margin:0}}
a{{color:#1d4ed8}}</style></head><body><pre>{body}</pre></body></html>"""
# A link in plain text: http(s) up to white space or markup's brackets and quotes; the
# punctuation that ends a sentence is not part of it.
_TEXT_LINK = re.compile(r"""https?://[^\s<>"']+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
MAX_TEXT_LINKS = 1000
_HTML_PAGE = """{doctype}<html{html_attributes}><head><meta charset="utf-8"><base target="_blank">
<meta name="referrer" content="no-referrer"></head><body{body_attributes}>{body}</body></html>"""


def render_cost(raw: bytes) -> int:
    """What a render of `raw` counts as, in bytes, for ParsePool.run."""
    return len(raw) * STYLE_COST if _STYLE.search(raw) else len(raw)


def frame_policy(remote_allowed: bool) -> str:
    images = "data: https: http:" if remote_allowed else "data:"
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
        "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    )


def linked_text(text: str) -> str:
    """Plain text as HTML: escaped, with its http(s) URLs made links a finger can tap."""
    parts: list[str] = []
    last = 0
    for count, match in enumerate(_TEXT_LINK.finditer(text)):
        url = match.group(0).rstrip(_TRAILING)
        if count >= MAX_TEXT_LINKS or len(url) < len("http://x"):
            break
        parts.append(html_lib.escape(text[last : match.start()]))
        shown = html_lib.escape(url)
        parts.append(f'<a href="{shown}" rel="noopener noreferrer nofollow">{shown}</a>')
        last = match.start() + len(url)
    parts.append(html_lib.escape(text[last:]))
    return "".join(parts)


def frame_page(raw: bytes, remote_allowed: bool) -> str:
    view = mime.full_view(raw)
    if not view.html:
        return _PAGE.format(body=linked_text(view.text))
    inline = _inline_images(raw, view)
    rendered = render.sanitise(view.html, remote_allowed=remote_allowed, cid_url=inline.get)
    return _HTML_PAGE.format(
        doctype=rendered.doctype,
        html_attributes=rendered.html_attributes,
        body_attributes=rendered.body_attributes,
        body=rendered.html,
    )


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
