"""Untrusted CSS → safe CSS: what a mail's `<style>` blocks and `style` attributes may keep.

Parsed with tinycss2 (a real CSS tokenizer and parser, so escapes such as `\\75 rl(` and
comment-split words are read as a browser reads them, never matched by regular
expressions). Kept: ordinary properties, `@media`, `@supports`, `@container`, `@layer` and
`@keyframes` with their contents checked, `@font-face` whose sources are all `data:`.
Removed, and counted: `@import`, `@namespace` and every other at-rule; `behavior`,
`-moz-binding`; any function outside SAFE_FUNCTIONS (`expression()`, `image-set()`,
`image()`, `cross-fade()`, `element()`, `paint()` ...); `javascript:` and `vbscript:`
anywhere; every `url()` that is not a `data:` image (or font, in `@font-face`) or a `cid:`
part (rewritten by `cid_url`), unless remote content was asked for, when http(s) URLs stay
as remote `<img>` do. A rule's selector can load nothing, so selectors stay as written.

Bounded: style text (STYLE_BUDGET characters in all), rules (MAX_RULES), nesting
(MAX_DEPTH); what is beyond a bound is dropped and counted. The output never contains
`<`, so it cannot end the `<style>` element it is put in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import tinycss2  # type: ignore[import-untyped]
from tinycss2 import ast

STYLE_BUDGET = 256 * 1024  # characters of CSS read from one message
MAX_RULES = 4000
MAX_DEPTH = 6  # nested @media/@supports/... blocks followed
MAX_VALUE_DEPTH = 32  # nested functions and brackets in one value (calc() in calc() ...)
SAFE_FUNCTIONS = frozenset(
    """rgb rgba hsl hsla hwb lab lch oklab oklch color color-mix calc min max clamp var env
    linear-gradient radial-gradient conic-gradient repeating-linear-gradient
    repeating-radial-gradient repeating-conic-gradient translate translatex translatey
    translatez translate3d rotate rotatex rotatey rotatez rotate3d scale scalex scaley scalez
    scale3d skew skewx skewy matrix matrix3d perspective cubic-bezier steps local format
    counter counters attr rect inset circle ellipse polygon blur brightness contrast
    drop-shadow grayscale hue-rotate invert opacity saturate sepia minmax repeat fit-content
    not is where has nth-child nth-last-child nth-of-type nth-last-of-type lang dir""".split()
)
BANNED_PROPERTIES = frozenset({"behavior", "-ms-behavior", "-moz-binding", "binding"})
NESTED_RULES = frozenset({"media", "supports", "container", "layer"})
KEYFRAMES = frozenset({"keyframes", "-webkit-keyframes"})
IMAGE_TYPES = ("data:image/png", "data:image/jpeg", "data:image/jpg", "data:image/gif",
               "data:image/webp", "data:image/avif", "data:image/bmp")  # fmt: skip
FONT_TYPES = ("data:font/", "data:application/font", "data:application/x-font",
              "data:application/vnd.ms-fontobject")  # fmt: skip
SCRIPT_SCHEMES = ("javascript:", "vbscript:")
BLOCKED = "none"  # what a blocked remote image in CSS becomes
BRACKETS = {
    ast.SquareBracketsBlock: ("[", "]"),
    ast.ParenthesesBlock: ("(", ")"),
    ast.CurlyBracketsBlock: ("{", "}"),
}


@dataclass
class Cleaned:
    """Safe CSS text, how many rules and declarations went, and the remote URLs that were
    blocked (to list) and kept (the reader asked for remote content)."""

    css: str = ""
    removed: int = 0
    blocked: list[str] = field(default_factory=list)
    kept_remote: list[str] = field(default_factory=list)


class _Unsafe(Exception):
    """A declaration (or rule) that cannot be kept."""


@dataclass
class _Context:
    remote_allowed: bool
    cid_url: Callable[[str], str | None]
    result: Cleaned
    rules: int = 0


def stylesheet(text: str, *, remote_allowed: bool, cid_url: Callable[[str], str | None]) -> Cleaned:
    """A `<style>` block's CSS, cleaned."""
    result = Cleaned()
    if len(text) > STYLE_BUDGET:
        text, result.removed = text[:STYLE_BUDGET], 1
    context = _Context(remote_allowed, cid_url, result)
    nodes = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    result.css = _escape_markup("\n".join(_rules(nodes, context, 0)))
    return result


def declarations(
    text: str, *, remote_allowed: bool, cid_url: Callable[[str], str | None]
) -> Cleaned:
    """A `style` attribute's declarations, cleaned."""
    result = Cleaned()
    context = _Context(remote_allowed, cid_url, result)
    result.css = _escape_markup(
        _declaration_block(text[:STYLE_BUDGET], context, in_font_face=False)
    )
    return result


def _rules(nodes: Iterable[ast.Node], context: _Context, depth: int) -> list[str]:
    kept: list[str] = []
    for node in nodes:
        if isinstance(node, (ast.WhitespaceToken, ast.Comment)):
            continue
        context.rules += 1
        if context.rules > MAX_RULES or depth > MAX_DEPTH:
            context.result.removed += 1
            continue
        rule = _rule(node, context, depth)
        if rule is None:
            context.result.removed += 1
        else:
            kept.append(rule)
    return kept


def _rule(node: ast.Node, context: _Context, depth: int) -> str | None:
    if isinstance(node, ast.QualifiedRule):
        if _loads_anything(node.prelude):
            return None
        body = _declaration_block(node.content, context, in_font_face=False)
        return f"{_plain(node.prelude).strip()}{{{body}}}"
    if not isinstance(node, ast.AtRule) or node.content is None:
        return None  # a parse error, @import, @namespace, @charset: nothing to keep
    name = node.lower_at_keyword
    prelude = _plain(node.prelude).strip()
    if _loads_anything(node.prelude):
        return None
    if name in NESTED_RULES or name in KEYFRAMES:
        inner = tinycss2.parse_rule_list(node.content, skip_comments=True, skip_whitespace=True)
        return f"@{name} {prelude}{{{chr(10).join(_rules(inner, context, depth + 1))}}}"
    if name == "font-face":
        body = _declaration_block(node.content, context, in_font_face=True, strict=True)
        return f"@font-face{{{body}}}" if body else None
    return None


def _declaration_block(
    content: str | list[ast.Node], context: _Context, *, in_font_face: bool, strict: bool = False
) -> str:
    kept: list[str] = []
    for item in tinycss2.parse_declaration_list(content, skip_comments=True, skip_whitespace=True):
        if not isinstance(item, ast.Declaration):
            context.result.removed += 1
            continue
        try:
            kept.append(_declaration(item, context, in_font_face))
        except _Unsafe:
            context.result.removed += 1
            if strict:  # a font face with one remote source loads it: drop the whole face
                return ""
    return ";".join(kept)


def _declaration(item: ast.Declaration, context: _Context, in_font_face: bool) -> str:
    if item.lower_name in BANNED_PROPERTIES:
        raise _Unsafe(item.lower_name)
    value = _value(item.value, context, in_font_face)
    important = " !important" if item.important else ""
    return f"{item.name}:{value.strip()}{important}"


def _value(nodes: Iterable[ast.Node], context: _Context, in_font_face: bool, depth: int = 0) -> str:
    if depth > MAX_VALUE_DEPTH:
        raise _Unsafe("nested too deep")
    out: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Comment):
            continue
        if node.type in {"bad-url", "error"}:  # what a browser would also not read as CSS
            raise _Unsafe(node.type)
        if isinstance(node, ast.URLToken):
            out.append(_url(node.value, context, in_font_face))
        elif isinstance(node, ast.FunctionBlock):
            name = node.lower_name
            if name in {"url", "src"}:
                strings = [arg for arg in node.arguments if isinstance(arg, ast.StringToken)]
                if len(strings) != 1:
                    raise _Unsafe("url()")
                out.append(_url(strings[0].value, context, in_font_face))
            elif name in SAFE_FUNCTIONS:
                inner = _value(node.arguments, context, in_font_face, depth + 1)
                out.append(f"{node.name}({inner})")
            else:
                raise _Unsafe(name)  # expression(), image-set(), element(), paint() ...
        elif type(node) in BRACKETS:
            opening, closing = BRACKETS[type(node)]
            inner = _value(node.content, context, in_font_face, depth + 1)
            out.append(f"{opening}{inner}{closing}")
        else:
            if isinstance(node, (ast.IdentToken, ast.StringToken)) and _scripted(node.value):
                raise _Unsafe("script scheme")
            out.append(node.serialize())
    return "".join(out)


def _url(raw: str, context: _Context, in_font_face: bool) -> str:
    url = raw.strip()
    lowered = url.lower()
    if lowered.startswith(IMAGE_TYPES) or (in_font_face and lowered.startswith(FONT_TYPES)):
        return _css_url(url)
    if lowered.startswith("cid:"):
        found = context.cid_url(url[4:].strip("<>"))
        if found is None:
            raise _Unsafe("unknown cid")
        return _css_url(found)
    if lowered.startswith(("http://", "https://", "//")) and not in_font_face:
        if context.remote_allowed:
            context.result.kept_remote.append(url)
            return _css_url(url)
        if url not in context.result.blocked:
            context.result.blocked.append(url)
        # The image as a blocked load leaves it: none. The rest of the declaration stays (a
        # background's colour, a list's style), as it does in a browser whose load failed.
        return BLOCKED
    if in_font_face or lowered.startswith(("data:", *SCRIPT_SCHEMES)) or _scripted(lowered):
        raise _Unsafe("url")  # a font from elsewhere, an SVG or other active data:, a script
    # A relative (or other) URL: a mail has no base, so it loads nothing where it was
    # written (and here it could only reach us): none, the rest stays. Neither unsafe nor
    # remote, so neither counted nor listed.
    return BLOCKED


def _scripted(text: str) -> bool:
    squeezed = "".join(text.split()).lower()
    return any(scheme in squeezed for scheme in SCRIPT_SCHEMES)


def _loads_anything(nodes: Iterable[ast.Node], depth: int = 0) -> bool:
    """A selector or at-rule prelude with a URL or a function outside the safe list (or
    nested beyond reason)."""
    if depth > MAX_VALUE_DEPTH:
        return True
    for node in nodes:
        if isinstance(node, ast.URLToken):
            return True
        if isinstance(node, ast.FunctionBlock):
            if node.lower_name not in SAFE_FUNCTIONS or _loads_anything(node.arguments, depth + 1):
                return True
        elif type(node) in BRACKETS and _loads_anything(node.content, depth + 1):
            return True
    return False


def _plain(nodes: Iterable[ast.Node]) -> str:
    return "".join(node.serialize() for node in nodes if not isinstance(node, ast.Comment))


def _css_url(url: str) -> str:
    escaped = url.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")
    return f'url("{escaped}")'


def _escape_markup(css: str) -> str:
    """`<` as a CSS escape: valid wherever it can legally appear (strings, escaped names),
    and no `</style>` or `<!--` can come out of the text."""
    return css.replace("<", "\\3c ")
