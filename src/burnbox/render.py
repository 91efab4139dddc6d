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
import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

from burnbox import css

MAX_BLOCKED_LISTED = 100
MAX_ROOT_ATTRIBUTES = 50  # attributes of <html> and <body> looked at
# What the mail's <html> and <body> keep: their look (the legacy colour attributes too),
# what its CSS selects by, and its language and direction. `background` is a URL, checked
# as an image's.
_ROOT_ATTRIBUTES = frozenset(
    {
        "style",
        "class",
        "id",
        "dir",
        "lang",
        "bgcolor",
        "text",
        "link",
        "vlink",
        "alink",
        "background",
    }
)
# What a blocked remote image points at instead: an empty `data:` URL, which no browser can
# decode, so the image is broken exactly as one whose load was refused: it keeps the size
# its mail declares (and no more), shows its alt text as a mail client does, and nothing
# leaves for the remote host. The reader's "show remote content" puts the URL back.
BLOCKED_IMAGE = "data:,"

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
    # The mail's own <html> and <body> attributes, cleaned, as ` name="value"` text: its
    # body's background is the whole page's in a browser (it spreads to the canvas), and
    # its classes are what its CSS selects. Sanitising a fragment would lose both.
    html_attributes: str = ""
    body_attributes: str = ""


class _Outline(HTMLParser):
    """What lies outside the body's content: the text of every <style> element, as an HTML
    parser reads it (raw text up to the first `</style`), within the style budget; the
    document type declaration; and the first <html> and <body> tags' attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: list[str] = []
        self.doctype = ""
        self.roots: dict[str, list[tuple[str, str | None]]] = {}
        self._inside = False
        self._size = 0

    def handle_decl(self, decl: str) -> None:
        if not self.doctype and decl[:7].lower() == "doctype" and _DOCTYPE.fullmatch(decl):
            self.doctype = f"<!{decl}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "style"
        if self._inside:
            self.blocks.append("")
        elif tag in ("html", "body"):
            self.roots.setdefault(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside and self._size < css.STYLE_BUDGET:
            self.blocks[-1] += data
            self._size += len(data)


def outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    parser.close()
    return parser


def style_blocks(html: str) -> tuple[list[str], str]:
    """The style blocks' text, and the document type declaration ("" if none or odd)."""
    found = outline(html)
    return found.blocks, found.doctype


class _Cleaner:
    """One message's cleaning: the CSS of its sheet and of every style attribute (what was
    kept, removed and blocked, within one budget), and each attribute's URL."""

    def __init__(self, remote_allowed: bool, cid_url: Callable[[str], str | None]) -> None:
        self.remote_allowed = remote_allowed
        self.cid_url = cid_url
        self.kept_remote: set[str] = set()
        self.styles = css.Cleaned()
        self._budget = css.STYLE_BUDGET  # characters of style attributes read, in all

    def _kept(self, cleaned: css.Cleaned) -> str:
        self.styles.removed += cleaned.removed
        self.styles.blocked.extend(url for url in cleaned.blocked if url not in self.styles.blocked)
        self.kept_remote.update(cleaned.kept_remote)
        return cleaned.css

    def sheet(self, blocks: list[str]) -> str:
        return "\n".join(
            self._kept(
                css.stylesheet(block, remote_allowed=self.remote_allowed, cid_url=self.cid_url)
            )
            for block in blocks
        ).strip()

    def attribute(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            self._budget -= len(value)
            if self._budget < 0:  # past the budget: later style attributes go, counted
                self.styles.removed += 1
                return None
            cleaned = css.declarations(
                value, remote_allowed=self.remote_allowed, cid_url=self.cid_url
            )
            return self._kept(cleaned) or None
        if attribute not in _URL_ATTRIBUTES:
            return value
        url = browser_url(value)
        if attribute in {"src", "background"}:
            return _source(tag, url, self.remote_allowed, self.cid_url, self.kept_remote)
        if attribute == "href" and tag == "a":
            link = url.lower().startswith(_LINK_SCHEMES) or ":" not in url.split("/", 1)[0]
            return url if link else None
        return None  # cite, poster, ...: a URL nothing here needs to follow

    def root(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        """A root element's attributes, as safe ` name="value"` text."""
        kept = []
        for name, value in attrs[:MAX_ROOT_ATTRIBUTES]:
            if name in _ROOT_ATTRIBUTES and value is not None:
                clean = self.attribute(tag, name, value)
                if clean is not None:
                    kept.append(f' {name}="{html_lib.escape(clean, quote=True)}"')
        return "".join(kept)

    def blocked(self, html: str) -> list[str]:
        """Every remote URL the mail would load that was not kept (links excepted)."""
        found: list[str] = list(self.styles.blocked)
        for match in _REMOTE.finditer(html):
            url = match.group(1)
            if url not in self.kept_remote and url not in found and not _is_link(html, match):
                found.append(url)
                if len(found) >= MAX_BLOCKED_LISTED:
                    break
        return found[:MAX_BLOCKED_LISTED]


def sanitise(html: str, *, remote_allowed: bool, cid_url: Callable[[str], str | None]) -> Rendered:
    """Safe HTML for a sandboxed frame, and the remote URLs that were not kept."""
    found = outline(html)
    cleaner = _Cleaner(remote_allowed, cid_url)
    sheet = cleaner.sheet(found.blocks)
    safe = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title"},
        attributes=_ATTRIBUTES,
        attribute_filter=cleaner.attribute,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    if sheet:
        safe = f"<style>{sheet}</style>{safe}"
    return Rendered(
        safe,
        cleaner.blocked(html),
        cleaner.styles.removed,
        found.doctype,
        html_attributes=cleaner.root("html", found.roots.get("html", [])),
        body_attributes=cleaner.root("body", found.roots.get("body", [])),
    )


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
