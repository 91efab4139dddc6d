"""caniemail's data, loaded once a process: each feature with its per-client results and
scores in Mailpit's shapes, and the platforms with their clients. No I/O beyond reading
the packaged file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_NOTE = re.compile(r"#(\d+)")


@dataclass(frozen=True, slots=True)
class Feature:
    slug: str
    title: str
    category: str
    keywords: str
    warning: dict[str, Any]  # Mailpit's Warning without its Score's `Found`


@cache
def data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("caniemail.json").read_text("utf-8")
    found: dict[str, Any] = json.loads(text)
    return found


@cache
def features() -> tuple[Feature, ...]:
    names = data()["nicenames"]
    return tuple(
        Feature(
            item["slug"],
            item["title"],
            item["category"],
            item.get("keywords") or "",
            _warning(item, names),
        )
        for item in data()["data"]
    )


@cache
def platforms() -> dict[str, list[str]]:
    """Each platform (`ios`, `desktop-webmail`, ...) with its clients' names, sorted."""
    families = data()["nicenames"]["family"]
    found: dict[str, set[str]] = {}
    for item in data()["data"]:
        for family, by_platform in item["stats"].items():
            for platform in by_platform:
                found.setdefault(platform, set()).add(families.get(family, family))
    return {platform: sorted(clients) for platform, clients in sorted(found.items())}


def _warning(item: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    results = _results(item["stats"], names)
    total = len(results) or 1
    counts = {
        kind: sum(1 for result in results if result["Support"] == kind)
        for kind in ("yes", "no", "partial")
    }
    return {
        "Category": item["category"],
        "Description": item.get("description") or "",  # markdown, as caniemail writes it
        "Keywords": item.get("keywords") or "",
        "NotesByNumber": dict(item.get("notes_by_num") or {}),
        "Results": results,
        "Score": {
            "Found": 0,
            "Partial": counts["partial"] / total * 100,
            "Supported": counts["yes"] / total * 100,
            "Unsupported": counts["no"] / total * 100,
        },
        "Slug": item["slug"],
        "Tags": list(item.get("tags") or []),
        "Title": item["title"],
        "URL": item.get("url") or "",
    }


def _results(stats: dict[str, Any], names: dict[str, Any]) -> list[dict[str, str]]:
    """One result a client version: `y` is yes, `n` no, anything else (`a`, or a yes with a
    note) partial, as Mailpit reads it; `u` (not known) is left out."""
    families, platforms_named = names["family"], names["platform"]
    results = []
    for family, by_platform in stats.items():
        for platform, versions in by_platform.items():
            for version, said in versions.items():
                said = str(said).strip()
                if said.startswith("u"):
                    continue
                support = {"y": "yes", "n": "no"}.get(said, "partial")
                note = _NOTE.search(said) if support == "partial" else None
                name = f"{families.get(family, family)} {platforms_named.get(platform, platform)}"
                results.append(
                    {
                        "Family": family,
                        "Name": f"{name} ({version})",
                        "NoteNumber": note.group(1) if note else "",
                        "Platform": platform,
                        "Support": support,
                        "Version": version,
                    }
                )
    return results
