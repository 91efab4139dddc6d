"""The CSS half of the census (document.py): style sheets and style attributes, read with
tinycss2, counted by property, `property:value`, keyword, function, unit, at-rule, media
feature and selector. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import tinycss2  # type: ignore[import-untyped]
from tinycss2 import ast

Census = Counter[tuple[str, str]]
_LEGACY_ELEMENTS = {"before", "after", "first-letter", "first-line"}  # `:after` is `::after`
_COMBINATORS = {">": "child", "+": "adjacent-sibling", "~": "general-sibling"}
_DEPTH = 16  # nested rules read this deep, no deeper


def scan_stylesheet(text: str, census: Census) -> None:
    _scan_rules(
        tinycss2.parse_stylesheet(text, skip_comments=False, skip_whitespace=True), census, 0
    )


def scan_declarations(nodes: Iterable[Any], census: Census, depth: int = 0) -> None:
    """Declarations (and, nested in them, rules: CSS nesting)."""
    for node in nodes:
        if node.type == "declaration":
            _declaration(node, census)
        elif node.type == "comment":
            census["css-comment", ""] += 1
        elif node.type == "qualified-rule" and depth < _DEPTH:
            census["nesting", ""] += 1
            _qualified(node, census, depth + 1)


def _scan_rules(rules: Iterable[Any], census: Census, depth: int) -> None:
    for rule in rules:
        if rule.type == "comment":
            census["css-comment", ""] += 1
        elif rule.type == "qualified-rule":
            _qualified(rule, census, depth)
        elif rule.type == "at-rule" and depth < _DEPTH:
            _at_rule(rule, census, depth)


def _qualified(rule: ast.QualifiedRule, census: Census, depth: int) -> None:
    _selectors(rule.prelude, census)
    scan_declarations(
        tinycss2.parse_blocks_contents(rule.content, skip_whitespace=True), census, depth
    )


def _at_rule(rule: ast.AtRule, census: Census, depth: int) -> None:
    name = rule.lower_at_keyword
    census["at", name.removeprefix("-webkit-")] += 1
    if name == "media":
        for block in rule.prelude:
            if block.type == "() block":
                feature = next((token for token in block.content if token.type == "ident"), None)
                if feature is not None:
                    census["media-feature", _media_feature(feature.lower_value)] += 1
    if rule.content is None:
        return
    if name in ("font-face", "page"):
        scan_declarations(
            tinycss2.parse_blocks_contents(rule.content, skip_whitespace=True), census, depth
        )
    elif not name.endswith("keyframes"):  # a keyframe's `50%` is not a selector
        _scan_rules(
            tinycss2.parse_rule_list(rule.content, skip_comments=False, skip_whitespace=True),
            census,
            depth + 1,
        )


def _media_feature(name: str) -> str:
    """`min-width` is `width`; `-webkit-min-device-pixel-ratio` is the vendor's ratio."""
    vendor = "-webkit-" if name.startswith("-webkit-") else ""
    bare = name.removeprefix(vendor)
    for bound in ("min-", "max-"):
        bare = bare.removeprefix(bound)
    return vendor + bare


def _declaration(node: ast.Declaration, census: Census) -> None:
    name = node.lower_name
    if name.startswith("--"):
        census["custom-property", ""] += 1
    else:
        census["property", name] += 1
    if node.important:
        census["important", ""] += 1
    _values(name, node.value, census)


def _values(name: str, tokens: Iterable[Any], census: Census) -> None:
    for token in tokens:
        if token.type == "ident" and not token.value.startswith("--"):
            census["keyword", token.lower_value] += 1
            census["value", f"{name}:{token.lower_value}"] += 1
        elif token.type == "function":
            census["function", token.lower_name] += 1
            _values(name, token.arguments, census)
        elif token.type == "dimension":
            census["unit", token.lower_unit] += 1
        elif token.type == "percentage":
            census["unit", "%"] += 1
        elif token.type == "comment":
            census["css-comment", ""] += 1


def _selectors(prelude: list[Any], census: Census) -> None:
    """Each kind of selector once for each time it is used in the rule's selector list."""
    groups: list[list[Any]] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            groups.append([])
        else:
            groups[-1].append(token)
    if len(groups) > 1:
        census["selector", "grouping"] += 1
    for group in groups:
        _selector(group, census)


def _selector(tokens: list[Any], census: Census) -> None:
    compound = 0  # simple selectors (not pseudo ones) in the compound being read
    gap = False  # white space since the last compound: a descendant, unless a combinator
    prefix = ""  # `:`, `::` or `.` just read: the next token is a name
    for token in tokens:
        if token.type == "whitespace":
            gap = compound > 0 or gap
            continue
        if token.type == "literal" and token.value in _COMBINATORS:
            census["selector", _COMBINATORS[token.value]] += 1
            gap, compound = False, 0
            continue
        if gap:
            census["selector", "descendant"] += 1
            gap, compound = False, 0
        if token.type == "literal" and token.value in (":", "."):
            prefix += token.value
            continue
        kind = _simple(token, prefix)
        prefix = ""
        if kind is None:
            continue
        census[kind] += 1
        if not kind[0].startswith("pseudo"):
            compound += 1
            if compound == 2:
                census["selector", "chaining"] += 1


def _simple(token: Any, prefix: str) -> tuple[str, str] | None:
    if prefix == ".":
        return ("selector", "class")
    if prefix:
        name = token.lower_value if token.type == "ident" else getattr(token, "lower_name", "")
        element = prefix == "::" or name in _LEGACY_ELEMENTS
        return ("pseudo-element" if element else "pseudo-class", name)
    if token.type == "ident":
        return ("selector", "type")
    if token.type == "hash":
        return ("selector", "id")
    if token.type == "[] block":
        return ("selector", "attribute")
    if token.type == "literal" and token.value == "*":
        return ("selector", "universal")
    return None
