"""A census of what a message's HTML and CSS use: elements, attributes, links, images,
and in its style sheets and style attributes the properties, values, functions, units,
at-rules, media features and selectors. HTML is read with the standard library's
forgiving parser, CSS with tinycss2. Pure; bounded by the HTML it is given."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import tinycss2  # type: ignore[import-untyped]

from burnbox.qa.htmlcheck.css import scan_declarations, scan_stylesheet

Census = Counter[tuple[str, str]]
NOT_NODES = frozenset({"html", "head", "meta"})  # not counted as the message's nodes (Mailpit)
_IMAGE = re.compile(r"\.([a-z0-9]+)(?:[?#].*)?$", re.IGNORECASE)
_IMAGE_NAMES = {"jpeg": "jpg", "tif": "tiff", "heic": "heif"}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.census: Census = Counter()
        self.nodes = 0
        self._style: list[str] | None = None  # the text of the <style> being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.census["element", tag] += 1
        self.nodes += tag not in NOT_NODES
        values = {name: value or "" for name, value in attrs}
        for name in values:
            self.census["attribute", name] += 1
        if "type" in values:
            self.census["typed", f"{tag}[{values['type'].strip().lower()}]"] += 1
        if values.get("style"):
            scan_declarations(tinycss2.parse_blocks_contents(values["style"]), self.census)
        self._links_and_images(tag, values)
        if tag == "style":
            self._style = []

    def _links_and_images(self, tag: str, values: dict[str, str]) -> None:
        href = values.get("href", "").strip().lower()
        if tag == "a" and href.startswith("#"):
            self.census["link", "anchor"] += 1
        elif tag == "a" and href.startswith("mailto:"):
            self.census["link", "mailto"] += 1
        if tag == "meta" and values.get("name", "").lower() in (
            "color-scheme",
            "supported-color-schemes",
        ):
            self.census["meta", values["name"].lower()] += 1
        if tag == "img" and values.get("src"):
            self.census["image", _image_kind(values["src"].strip())] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style is not None:
            scan_stylesheet("".join(self._style), self.census)
            self._style = None

    def handle_data(self, data: str) -> None:
        if self._style is not None:
            self._style.append(data)

    def handle_comment(self, data: str) -> None:
        self.census["html-comment", ""] += 1

    def handle_decl(self, decl: str) -> None:
        words = decl.lower().split()
        if words[:1] == ["doctype"]:  # caniemail's is HTML5's: `<!DOCTYPE html>`, no more
            self.census["doctype", "html" if words == ["doctype", "html"] else "other"] += 1

    def error(self, message: str) -> Any:  # pragma: no cover - 3.10+ never calls it
        return None


def census_of(html: str) -> tuple[Census, int]:
    """What the HTML uses, and how many nodes it has (at least 1)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    if reader._style is not None:  # a <style> never closed
        scan_stylesheet("".join(reader._style), reader.census)
    return reader.census, max(reader.nodes, 1)


def _image_kind(src: str) -> str:
    if src.lower().startswith("data:image/"):
        return "base64"
    found = _IMAGE.search(src)
    name = found.group(1).lower() if found else ""
    return _IMAGE_NAMES.get(name, name)
