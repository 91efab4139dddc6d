"""Mailpit's HTMLCheckResponse for one message's HTML: a warning for each caniemail
feature the message uses (with how many times it does), its per-client results, and the
totals, weighted as Mailpit weighs them: a feature counts by the share of the message's
nodes that use it, and the overall figure is the worst of them. Pure."""

from __future__ import annotations

from functools import cache
from typing import Any

from burnbox.qa.htmlcheck.document import Census, census_of
from burnbox.qa.htmlcheck.probes import Probe, probe_of
from burnbox.qa.htmlcheck.support import Feature, features, platforms

SCRIPT_WARNING: dict[
    str, Any
] = {  # not a caniemail feature: no email client runs a message's scripts
    "Category": "html",
    "Description": "JavaScript is not supported in any email client.",
    "Keywords": "script, javascript",
    "NotesByNumber": {},
    "Results": [],
    "Score": {"Found": 0, "Partial": 0.0, "Supported": 0.0, "Unsupported": 100.0},
    "Slug": "html-script",
    "Tags": [],
    "Title": "<script> element",
    "URL": "",
}


@cache
def _probes() -> tuple[tuple[Feature, Probe], ...]:
    return tuple((feature, probe) for feature in features() if (probe := probe_of(feature)))


def check(html: str) -> dict[str, Any]:
    census, nodes = census_of(html)
    warnings = [
        _found_in(feature.warning, found)
        for feature, probe in _probes()
        if (found := _found(census, probe))
    ]
    if scripts := census["element", "script"]:
        warnings.append(_found_in(SCRIPT_WARNING, scripts))
    warnings.sort(key=lambda warning: -_weight(warning, nodes))
    return {"Platforms": platforms(), "Total": _total(warnings, nodes), "Warnings": warnings}


def _found_in(warning: dict[str, Any], found: int) -> dict[str, Any]:
    """The feature's warning with this message's count: a new Score, the rest shared (the
    answer is only serialised, never changed)."""
    return {**warning, "Score": {**warning["Score"], "Found": found}}


def _found(census: Census, probe: Probe) -> int:
    total = 0
    for kind, name in probe:
        if name.endswith("*"):
            stem = name[:-1]
            total += sum(
                count for (k, n), count in census.items() if k == kind and n.startswith(stem)
            )
        else:
            total += census[kind, name]
    return total


def _share(warning: dict[str, Any], nodes: int) -> float:
    """The part of the message a feature touches: at most all of it (Mailpit lets a unit
    used 300 times in 100 nodes count thrice, and its totals go below zero)."""
    return float(min(warning["Score"]["Found"] / nodes, 1.0))


def _weight(warning: dict[str, Any], nodes: int) -> float:
    score = warning["Score"]
    return float((score["Unsupported"] + score["Partial"]) * _share(warning, nodes))


def _total(warnings: list[dict[str, Any]], nodes: int) -> dict[str, Any]:
    """The worst partial and the worst unsupported share, as Mailpit, kept within 100%."""
    partial = max((w["Score"]["Partial"] * _share(w, nodes) for w in warnings), default=0.0)
    unsupported = max((w["Score"]["Unsupported"] * _share(w, nodes) for w in warnings), default=0.0)
    unsupported = min(unsupported, 100 - partial)
    return {
        "Nodes": nodes,
        "Partial": partial,
        "Supported": 100 - partial - unsupported,
        "Tests": len(_probes()) + 1,  # and the script check
        "Unsupported": unsupported,
    }
