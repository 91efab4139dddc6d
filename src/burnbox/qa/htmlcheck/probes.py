"""What to look for in a message for each caniemail feature: a probe is the census keys
(document.py) whose counts add up to the feature's `Found`. Derived from the feature's
slug and title, which caniemail writes to a pattern (`<abbr> element`, `align attribute`,
`@font-face`, `@media (hover)`, `:hover`, `rgb()`, `display:flex`, `px unit`,
`max-width`); IRREGULAR holds the features whose title says it another way. No I/O."""

from __future__ import annotations

import re

from burnbox.qa.htmlcheck.support import Feature

Key = tuple[str, str]  # (kind, name); a name ending in `*` matches every name it begins
Probe = tuple[Key, ...]

_PROPERTY = re.compile(r"^-?[a-z][a-z-]*\*?$")
_SUFFIX = re.compile(r"\s+(css\s+)?(propert(y|ies)|shorthand)$", re.IGNORECASE)
_TAG = re.compile(r'<([a-z][a-z0-9]*)(?: type="([a-z]+)")?>')
_FUNCTION = re.compile(r"([a-z][a-z-]*)\(\)")
_MEDIA_FEATURE = re.compile(r"\((-?[a-z][a-z-]*)\)")
_DECLARATION = re.compile(r"^([a-z-]+)\s*:\s*([a-z-]+)$")

IRREGULAR: dict[str, Probe] = {
    "amp": (("attribute", "amp4email"), ("attribute", "\u26a14email")),
    "html-h1-h6": tuple(("element", f"h{level}") for level in range(1, 7)),
    "html-image-maps": (("element", "map"), ("attribute", "usemap")),
    "html-anchor-links": (("link", "anchor"),),
    "html-mailto-links": (("link", "mailto"),),
    "html-comments": (("html-comment", ""),),
    "html-doctype": (("doctype", "html"),),
    "html-meta-color-scheme": (("meta", "color-scheme"), ("meta", "supported-color-schemes")),
    "css-comments": (("css-comment", ""),),
    "css-important": (("important", ""),),
    "css-variables": (("custom-property", ""), ("function", "var")),
    "css-nesting": (("nesting", ""),),
    "css-scroll-snap": (("property", "scroll-snap-*"),),
    "css-unit-percent": (("unit", "%"),),
    "css-unit-initial": (("keyword", "initial"),),
}
_KEYWORD_VALUES = ("css-sytem-ui", "css-intrinsic-size")  # titles listing values
_SPLIT = re.compile(r",\s*|\s+&\s+|\s+and\s+")


def probe_of(feature: Feature) -> Probe:
    """The feature's probe; () for one a message's HTML cannot show (BIMI)."""
    if feature.slug in IRREGULAR:
        return IRREGULAR[feature.slug]
    kind, _, rest = feature.slug.partition("-")
    if kind == "image":
        return (("image", rest),)
    if kind == "html":
        return _html(feature, rest)
    if kind == "css":
        return _css(feature, rest)
    return ()


def _html(feature: Feature, rest: str) -> Probe:
    title = feature.title.strip()
    tags = _TAG.findall(title)
    if tags:
        return tuple(
            ("typed", f"{tag}[{kind}]") if kind else ("element", tag) for tag, kind in tags
        )
    if re.search(r"\battributes?$", title):
        names = _SPLIT.split(re.sub(r"\s*attributes?$", "", title))
        return tuple(("attribute", name.strip().lower()) for name in names if name.strip())
    if title.lower().startswith("html5"):  # "HTML5 semantics": its keywords are the elements
        return _listed("element", feature.keywords)
    return (("element", rest),)


def _css(feature: Feature, rest: str) -> Probe:
    title = feature.title.strip()
    if feature.slug in _KEYWORD_VALUES:
        return _listed("keyword", title)
    for prefix, kind in (
        ("pseudo-class-", "pseudo-class"),
        ("pseudo-element-", "pseudo-element"),
        ("selector-", "selector"),
    ):
        if rest.startswith(prefix):
            return ((kind, rest.removeprefix(prefix)),)
    if feature.slug.endswith("-attribute"):  # an HTML attribute that CSS can select on
        return (("attribute", title.lower()),)
    if title.startswith("@media ("):
        return tuple(("media-feature", name) for name in _MEDIA_FEATURE.findall(title))
    if title.startswith("@"):
        return (("at", title[1:].split()[0].lower()),)
    if functions := _FUNCTION.findall(title):
        return tuple(("function", name) for name in functions)
    if declared := _DECLARATION.match(title.replace(": ", ":")):
        return (("value", f"{declared.group(1)}:{declared.group(2)}"),)
    if rest.startswith("unit-"):
        return (("unit", rest.removeprefix("unit-")),)
    return _properties(feature, rest)


def _properties(feature: Feature, rest: str) -> Probe:
    """The properties a title names (`gap, column-gap, row-gap`), with the longhands its
    keywords list under the same name (`border` with `border-top`); a title that is not a
    list of properties (`css column properties`) gives way to its keywords."""
    names = [name.strip().lower() for name in _SPLIT.split(_SUFFIX.sub("", feature.title.strip()))]
    keywords = [word.strip().lower() for word in feature.keywords.split(",") if "-" in word]
    if not names or not all(_PROPERTY.match(name) for name in names):
        names = [word for word in keywords if _PROPERTY.match(word)] or [rest]
    else:
        names += [word for word in keywords if any(word.startswith(name + "-") for name in names)]
    return tuple(("property", name) for name in dict.fromkeys(names))


def _listed(kind: str, text: str) -> Probe:
    return tuple((kind, name.strip().lower()) for name in _SPLIT.split(text) if name.strip())
