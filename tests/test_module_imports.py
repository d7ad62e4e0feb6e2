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


HEAVY = ("fastapi", "uvicorn", "starlette", "pandas", "adbc_driver_manager",
         "adbc_driver_postgresql", "pvlib", "sunarchive.app", "sunarchive.api.app")
"""What a command that only opens the store must not load: the web server, pandas, ADBC,
pvlib (each costs a fraction of a second at every start of the CLI)."""


def loaded_with(statements: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when a module loads: its body, its ``if``/``try``/``with``
    blocks and class bodies; not functions, nor ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                found += loaded_with(node.body) + loaded_with(node.orelse)
        elif isinstance(node, ast.Try):
            found += loaded_with(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                found += loaded_with(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += loaded_with(node.body)
    return found


def loaded_by(start: str) -> set[str]:
    """Every module (ours and others', by full dotted name) that importing ``start`` loads,
    as far as the source shows (``from p import name`` counts ``p.name`` where that is one of
    ours, else ``p``; importing ``a.b`` loads ``a`` too)."""
    paths = {module_name(p): p for p in (SRC / "sunarchive").rglob("*.py")}
    loaded: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)]
        for module in parents:
            if module in loaded:
                continue
            loaded.add(module)
            if module not in paths:
                continue
            path = paths[module]
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for node in loaded_with(ast.parse(path.read_text(), str(path)).body):
                if isinstance(node, ast.Import):
                    todo += [alias.name for alias in node.names]
                    continue
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                todo += [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                         for a in node.names]
    return loaded


def test_the_walk_finds_what_the_server_loads() -> None:
    assert {"fastapi", "uvicorn", "sunarchive.api.app"} <= loaded_by("sunarchive.app")


@pytest.mark.parametrize("module", ["sunarchive.cli", "sunarchive.stores"])
def test_opening_the_store_loads_no_web_server_nor_pandas(module: str) -> None:
    heavy = {m for m in loaded_by(module) if m.startswith(HEAVY)}
    assert heavy == set(), f"{module} loads {sorted(heavy)} when imported"
