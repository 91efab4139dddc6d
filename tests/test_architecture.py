"""The written rules of docs/architecture.md, checked against the code (in the spirit of
Datasette's documentation tests): every module is in the module table, every import follows
the import-rules table, no import cycle (TYPE_CHECKING imports count), and settings.py is
the only reader of the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "burnbox"
DOC = (ROOT / "docs" / "architecture.md").read_text()


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "burnbox"


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """burnbox's own modules that `path` imports, anywhere in it (TYPE_CHECKING and
    function-level imports included), as dotted names without the `burnbox.` prefix."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("burnbox"):
                continue
            base = node.module.removeprefix("burnbox").lstrip(".")
            for alias in node.names:  # `from burnbox.smtp import replies` names a module
                full = f"{base}.{alias.name}".lstrip(".")
                found.add(full if full in MODULES else base or "burnbox")
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix("burnbox.")
                for alias in node.names
                if alias.name.startswith("burnbox.")
            }
    found.discard(module_name(path))
    found.discard("burnbox")  # the package itself: its version
    return found


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else None]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def names_in(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def rules() -> list[tuple[str, set[str] | None]]:
    """(module pattern, what it may import; None: anything), from the import-rules table."""
    found: list[tuple[str, set[str] | None]] = []
    for module_cell, allowed_cell in table_rows(section("Import rules")):
        allowed = None if allowed_cell == "anything" else set(names_in(allowed_cell))
        found += [(pattern, allowed) for pattern in names_in(module_cell)]
    return found


def matches(pattern: str, module: str) -> bool:
    return module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1]))


def rule_for(module: str) -> set[str] | None:
    ordered = sorted(rules(), key=lambda rule: rule[0].endswith(".*"))  # exact names first
    for pattern, allowed in ordered:
        if matches(pattern, module):
            return allowed
    raise AssertionError(f"{module} has no row in the import rules of docs/architecture.md")


def test_the_rules_table_was_read() -> None:
    assert len(rules()) > 20
    assert len(MODULES) > 40


def test_every_module_is_in_the_architecture_table() -> None:
    listed = set(names_in(section("Modules")))
    missing = [
        str(path.relative_to(SOURCE))
        for name, path in MODULES.items()
        if path.name != "__init__.py" and str(path.relative_to(SOURCE)) not in listed
    ]
    assert missing == [], "add these to the module table in docs/architecture.md"


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"burnbox"}))
def test_imports_follow_the_written_rules(module: str) -> None:
    allowed = rule_for(module)
    if allowed is None:
        return
    forbidden = sorted(
        dependency
        for dependency in GRAPH[module]
        if not any(matches(pattern, dependency) for pattern in allowed)
    )
    assert forbidden == [], f"{module} may not import {forbidden} (docs/architecture.md)"


def test_no_import_cycle() -> None:
    seen: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for dependency in sorted(GRAPH.get(module, ())):
            if seen.get(dependency) == 1:
                cycle = [*path[path.index(dependency) :], dependency]
                raise AssertionError(" → ".join(cycle))
            if dependency not in seen:
                visit(dependency, [*path, dependency])
        seen[module] = 2

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module, [module])


def reads_environment(path: Path) -> list[int]:
    """Lines where `path` reads os.environ or os.getenv. Setting a variable (for a library
    that reads it itself) is not reading: `os.environ[KEY] = value`."""
    tree = ast.parse(path.read_text())
    writes = {
        id(target.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv"}
        and id(node) not in writes
    ]


def test_only_settings_reads_the_environment() -> None:
    readers = {
        name: lines
        for name, path in MODULES.items()
        if name != "settings" and (lines := reads_environment(path))
    }
    assert readers == {}
