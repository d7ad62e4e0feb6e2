"""Modules about one concept (issue 16, point 6): the packages split by concern import each
other's modules in one direction only. The graph is read from the source (every ``import`` at
any depth, also inside functions); ``from package import module`` counts as an import of the
module. That the modules also import one by one in a fresh interpreter is checked in
tests/test_cli.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parent.parent / "src"
SPLIT = ("sunarchive.cli", "sunarchive.reducer", "sunarchive.settings",
         "sunarchive.sources.simulator")
"""The packages whose modules must not take part in an import cycle."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the ``sunarchive`` modules it imports."""
    paths = {module_name(p): p for p in (SRC / "sunarchive").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths
                              else base)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cycles_through(graph: dict[str, set[str]], prefixes: tuple[str, ...]) -> list[list[str]]:
    """Every import cycle (as a path back to its start) through a module under ``prefixes``."""
    found: list[list[str]] = []
    for start in sorted(graph):
        if not start.startswith(prefixes):
            continue
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append([*path, start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_the_graph_sees_the_cli() -> None:
    graph = import_graph()
    assert "sunarchive.cli.maintenance" in graph["sunarchive.cli.main"]
    assert "sunarchive.cli.common" in graph["sunarchive.cli.maintenance"]


@pytest.mark.parametrize("package", SPLIT)
def test_no_import_cycle_goes_through_a_split_package(package: str) -> None:
    cycles = cycles_through(import_graph(), (package,))
    assert not cycles, " ; ".join(" → ".join(c) for c in cycles)


def test_only_the_entry_points_import_the_cli() -> None:
    importers = {name for name, imports in import_graph().items()
                 if not name.startswith("sunarchive.cli")
                 and any(m.startswith("sunarchive.cli") for m in imports)}
    assert importers == {"sunarchive.__main__"}
