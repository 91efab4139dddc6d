"""Untrusted mail HTML → safe HTML, with remote content blocked and listed.

nh3 (ammonia) does the sanitising: scripts, event handlers, forms, frames,
<style>/<link> (and so CSS @import, fonts, expressions) are gone, and only
harmless style properties survive. On top of that, this module decides what
may load: `cid:` images point at the message's own attachments, `data:` images
stay, and remote images (and legacy `background=` attributes) are dropped unless
the reader asked for remote content, in which case remote images only come back.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import nh3

MAX_BLOCKED_LISTED = 100

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center"}
_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
for _tag in _TAGS:
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "align", "dir", "title"})
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

_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "word-break",
    "vertical-align",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "display",
    "list-style-type",
}
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
_REMOTE = re.compile(
    r"""(?:\b(?:src|href|background|poster|data|action)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])"""
    r"""((?:https?:)?//[^"'\s)>]+)""",
    re.IGNORECASE,
)


@dataclass
class Rendered:
    html: str
    blocked: list[str] = field(default_factory=list)


def sanitise(html: str, *, remote_allowed: bool, cid_url: Callable[[str], str | None]) -> Rendered:
    """Safe HTML for a sandboxed frame, and the remote URLs that were not kept."""
    kept_remote: set[str] = set()

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
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

    safe = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=filter_attribute,
        url_schemes=_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    blocked: list[str] = []
    for match in _REMOTE.finditer(html):
        url = match.group(1)
        if url not in kept_remote and url not in blocked and not _is_link(html, match):
            blocked.append(url)
            if len(blocked) >= MAX_BLOCKED_LISTED:
                break
    return Rendered(safe, blocked)


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
    if lowered.startswith(("http://", "https://", "//")) and remote_allowed and tag == "img":
        kept_remote.add(value.strip())
        return value
    return None


def _is_link(html: str, match: re.Match[str]) -> bool:
    """An <a href> is a link the reader may follow, not content that loads by itself."""
    if not match.group(0).lower().startswith("href"):
        return False
    tag = html[html.rfind("<", 0, match.start()) + 1 : match.start()].lstrip().lower()
    return tag.startswith(("a ", "a\n", "a\t", "area "))
