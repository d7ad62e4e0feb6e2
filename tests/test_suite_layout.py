"""The test suite's own layout (issue 16, point 7): shared helpers live in ``tests/support``
with one definition each; no test file imports another test file or conftest; every test
module says what it needs with exactly one marker (unit, engine, integration, browser)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "engine", "integration", "browser")
SUPPORT = TESTS / "support"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from . import x`` counts as ``.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            if not node.module:
                found.update(base + alias.name for alias in node.names)
    return found


def is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def definitions(path: Path) -> dict[str, str]:
    """``path``'s top-level functions and classes: their code without name and docstring
    (``ast.dump`` of the body) → name."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            found[ast.dump(ast.Module(body=body, type_ignores=[]))] = node.name
    return found


def module_marks(path: Path) -> list[str]:
    """The marks of ``pytestmark = pytest.mark.X`` (or a list of them) in ``path``."""
    marks: list[str] = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            marks += [v.attr for v in values if isinstance(v, ast.Attribute)]
    return marks


def test_every_test_module_has_exactly_one_kind() -> None:
    wrong = {path.name: marks for path in sorted(TESTS.glob("test_*.py"))
             if len(marks := [m for m in module_marks(path) if m in KINDS]) != 1}
    assert not wrong, f"set pytestmark = pytest.mark.<one of {KINDS}> in: {wrong}"


def test_the_kinds_are_registered_markers() -> None:
    with (TESTS.parent / "pyproject.toml").open("rb") as f:
        markers = tomllib.load(f)["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":")[0] for m in markers} >= set(KINDS)


def test_no_test_file_imports_another_test_file_or_conftest() -> None:
    files = sorted(TESTS.glob("test_*.py")) + sorted(SUPPORT.glob("*.py"))
    offending = {f"{path.relative_to(TESTS)} imports {module}"
                 for path in files for module in imported_modules(path)
                 if is_test_or_conftest(module)}
    assert not offending, "shared helpers belong in tests/support: " + "; ".join(
        sorted(offending))


def test_conftest_imports_only_support() -> None:
    local = {m for m in imported_modules(TESTS / "conftest.py") if m.startswith(("tests", "."))}
    assert local and all(m.startswith("tests.support.") for m in local), local


def test_no_helper_is_written_twice() -> None:
    """The same code (whatever its name) as a top-level function or class in two files."""
    seen: dict[str, str] = {}
    twice = []
    for path in sorted(TESTS.glob("test_*.py")) + sorted(SUPPORT.glob("*.py")):
        for code, name in definitions(path).items():
            here = f"{path.relative_to(TESTS)}:{name}"
            if code in seen:
                twice.append(f"{here} repeats {seen[code]}")
            seen.setdefault(code, here)
    assert not twice, "move it to tests/support: " + "; ".join(twice)
