"""Untrusted mail HTML → safe HTML, with remote content blocked and listed.

nh3 (ammonia) does the sanitising of the markup: scripts, event handlers, forms, frames
and <link> are gone. CSS is kept, not removed: the text of every <style> block and every
`style` attribute goes through css.py (tinycss2), which keeps what is safe and counts
what it removes, and the cleaned sheet is put back in one <style> element. On top of
that, this module decides what may load: `cid:` images point at the message's own
attachments, `data:` images stay, and remote images (and legacy `background=` attributes
and CSS `url()`s) are dropped unless the reader asked for remote content, in which case
remote images only come back.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

from burnbox import css

MAX_BLOCKED_LISTED = 100
# What a blocked remote image shows: a transparent 16x16 GIF (the size of a browser's
# broken-image box), so the image keeps the place its sender gave it and the layout does
# not move; the reader sees the "remote items blocked" line and can load them.
BLOCKED_IMAGE = (
    "data:image/gif;base64,R0lGODlhEAAQAIEAAP///wAAAAAAAAAAACH5BAEAAAAALAAAAAAQABAAQAgdAAEIHEiwo"
    "MGDCBMqXMiwocOHECNKnEixosWBAQEAOw=="
)

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center"}
_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
for _tag in _TAGS:
    # class and id: the mail's own stylesheet selects by them (the frame holds nothing else)
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "align", "dir", "title", "class", "id"})
for _tag in ("table", "td", "th", "tr", "tbody", "thead"):
    _ATTRIBUTES[_tag].update(
        {
            "width",
            "height",
            "bgcolor",
            "valign",
            "background",
            "border",
            "cellpadding",
            "cellspacing",
            "colspan",
            "rowspan",
        }
    )
_ATTRIBUTES["img"].update({"src", "alt", "width", "height", "border"})
_ATTRIBUTES["font"].update({"color", "face", "size"})
_ATTRIBUTES["a"].update({"href"})

_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
# Attributes whose value is a URL: each is checked here, after normalising it as a browser
# does, whatever nh3 allows.
_URL_ATTRIBUTES = {
    "href",
    "src",
    "background",
    "cite",
    "action",
    "formaction",
    "poster",
    "longdesc",
    "usemap",
    "lowsrc",
    "dynsrc",
    "data",
    "xlink:href",
}
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
# What a browser ignores in a URL before it reads the scheme: leading C0 controls and
# spaces, and tabs and newlines anywhere (WHATWG URL).
_URL_LEADING = "".join(map(chr, range(0x21)))
_URL_IGNORED = dict.fromkeys(map(ord, "\t\n\r"))
# A document type declaration as written by mail tools: names, public and system ids.
_QUOTED_ID = r'\s+"[\w .:/+()#-]*"'
_DOCTYPE = re.compile(rf"(?i:doctype)\s+[A-Za-z]+(?:\s+[A-Za-z]+{_QUOTED_ID})?(?:{_QUOTED_ID})?\s*")
_REMOTE = re.compile(
    r"""(?:\b(?:src|href|background|poster|data|action)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])"""
    r"""((?:https?:)?//[^"'\s)>]+)""",
    re.IGNORECASE,
)


@dataclass
class Rendered:
    html: str
    blocked: list[str] = field(default_factory=list)
    styles_removed: int = 0  # CSS rules and declarations that were not safe to keep
    # The mail's own document type declaration (cleaned), or "" for none: a browser lays
    # the page out in the mode it names (standards, almost-standards for XHTML
    # Transitional, quirks without one), and so does the frame.
    doctype: str = ""


class _StyleBlocks(HTMLParser):
    """The text of every <style> element, as an HTML parser reads it (raw text up to the
    first `</style`), within the style budget; and the document type declaration."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: list[str] = []
        self.doctype = ""
        self._inside = False
        self._size = 0

    def handle_decl(self, decl: str) -> None:
        if not self.doctype and decl[:7].lower() == "doctype" and _DOCTYPE.fullmatch(decl):
            self.doctype = f"<!{decl}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "style"
        if self._inside:
            self.blocks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside and self._size < css.STYLE_BUDGET:
            self.blocks[-1] += data
            self._size += len(data)


def style_blocks(html: str) -> tuple[list[str], str]:
    """The style blocks' text, and the document type declaration ("" if none or odd)."""
    parser = _StyleBlocks()
    parser.feed(html)
    parser.close()
    return parser.blocks, parser.doctype


def sanitise(html: str, *, remote_allowed: bool, cid_url: Callable[[str], str | None]) -> Rendered:
    """Safe HTML for a sandboxed frame, and the remote URLs that were not kept."""
    kept_remote: set[str] = set()
    styles = css.Cleaned()
    budget = [css.STYLE_BUDGET]  # characters of style attributes read, in all

    def clean_css(cleaned: css.Cleaned) -> str:
        styles.removed += cleaned.removed
        styles.blocked.extend(url for url in cleaned.blocked if url not in styles.blocked)
        kept_remote.update(cleaned.kept_remote)
        return cleaned.css

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            budget[0] -= len(value)
            if budget[0] < 0:  # past the budget: later style attributes go, counted
                styles.removed += 1
                return None
            cleaned = css.declarations(value, remote_allowed=remote_allowed, cid_url=cid_url)
            return clean_css(cleaned) or None
        if attribute not in _URL_ATTRIBUTES:
            return value
        url = browser_url(value)
        if attribute in {"src", "background"}:
            return _source(tag, url, remote_allowed, cid_url, kept_remote)
        if attribute == "href" and tag == "a":
            return (
                url
                if url.lower().startswith(_LINK_SCHEMES) or ":" not in url.split("/", 1)[0]
                else None
            )
        return None  # cite, poster, ...: a URL nothing here needs to follow

    blocks, doctype = style_blocks(html)
    sheet = "\n".join(
        clean_css(css.stylesheet(block, remote_allowed=remote_allowed, cid_url=cid_url))
        for block in blocks
    ).strip()
    safe = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title"},
        attributes=_ATTRIBUTES,
        attribute_filter=filter_attribute,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    if sheet:
        safe = f"<style>{sheet}</style>{safe}"
    blocked: list[str] = list(styles.blocked)
    for match in _REMOTE.finditer(html):
        url = match.group(1)
        if url not in kept_remote and url not in blocked and not _is_link(html, match):
            blocked.append(url)
            if len(blocked) >= MAX_BLOCKED_LISTED:
                break
    return Rendered(safe, blocked[:MAX_BLOCKED_LISTED], styles.removed, doctype)


def browser_url(value: str) -> str:
    """A URL as a browser reads it: leading controls and spaces gone, tabs and newlines
    removed (so ` data:`, `&#9;data:` and `da&#9;ta:` are all `data:`)."""
    return value.lstrip(_URL_LEADING).translate(_URL_IGNORED)


def _source(
    tag: str,
    value: str,
    remote_allowed: bool,
    cid_url: Callable[[str], str | None],
    kept_remote: set[str],
) -> str | None:
    lowered = value.strip().lower()
    if lowered.startswith("cid:"):
        return cid_url(value.strip()[4:].strip("<>"))
    if lowered.startswith("data:image/") and tag == "img" and "svg" not in lowered[:20]:
        return value
    if lowered.startswith(("http://", "https://", "//")) and tag == "img":
        if not remote_allowed:
            return BLOCKED_IMAGE
        kept_remote.add(value.strip())
        return value
    return None


def _is_link(html: str, match: re.Match[str]) -> bool:
    """An <a href> is a link the reader may follow, not content that loads by itself."""
    if not match.group(0).lower().startswith("href"):
        return False
    tag = html[html.rfind("<", 0, match.start()) + 1 : match.start()].lstrip().lower()
    return tag.startswith(("a ", "a\n", "a\t", "area "))
