"""The PostgreSQL layout is chosen once, as an object (issue 16, point 2): ``PostgresStore``
hands every layout-dependent step to it (:mod:`sunarchive.storage.postgres.layouts`) and
never compares layout names itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sunarchive.model import ConfigError
from sunarchive.storage.postgres import layouts
from sunarchive.storage.postgres.layouts import Layout, PlainLayout, TimescaleLayout

pytestmark = pytest.mark.unit

STORE = (Path(__file__).resolve().parent.parent / "src" / "sunarchive" / "storage" / "postgres"
         / "store.py")
NAMES = {"plain", "timescaledb"}


def is_layout_name(node: ast.expr) -> bool:
    """``<x>.layout``, ``<x>.name`` or the string ``plain`` / ``timescaledb``."""
    if isinstance(node, ast.Attribute):
        return node.attr in ("layout", "name")
    return isinstance(node, ast.Constant) and node.value in NAMES


def names_compared(tree: ast.AST) -> list[int]:
    """Lines of comparisons with a ``layout`` attribute or a layout name (``self.layout ==
    "plain"``, ``"timescaledb" != x``, ``self.layout in (...)``)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        parts: list[ast.expr] = []
        for side in (node.left, *node.comparators):
            parts += side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
        if any(is_layout_name(part) for part in parts):
            lines.append(node.lineno)
    return lines


def test_the_store_never_compares_layout_names() -> None:
    assert names_compared(ast.parse(STORE.read_text(), str(STORE))) == []


def test_the_check_sees_a_comparison() -> None:
    for code in ('if self.layout == "plain": pass', 'x = "timescaledb" != y',
                 "z = self.layout in (a, b)", "w = self.layout_impl.name == n"):
        assert names_compared(ast.parse(code)) == [1], code


def test_both_layouts_have_every_step() -> None:
    steps = {name for name in vars(Layout) if not name.startswith("_")} | {"name"}
    assert {"set_up", "rollup", "apply_retention", "latest_rows", "compress"} <= steps
    for kind in (PlainLayout, TimescaleLayout):
        layout: Layout = kind()
        assert {s for s in steps if not hasattr(layout, s)} == set(), kind


def test_a_new_store_takes_timescaledb_when_the_server_has_it() -> None:
    assert layouts.choose(None, "2.28.3", "", "url") == ("timescaledb", "", [])
    assert layouts.choose(None, None, "not installed", "url") == ("plain", "not installed", [])


def test_a_store_keeps_the_layout_it_was_created_with() -> None:
    name, why, notes = layouts.choose("plain", "2.28.3", "", "url")
    assert (name, why) == ("plain", "") and "it keeps it" in notes[0]
    assert layouts.choose("timescaledb", "2.28.3", "", "url") == ("timescaledb", "", [])
    with pytest.raises(ConfigError, match="url: this store uses TimescaleDB, which is not "
                                          r"available now \(not installed\)"):
        layouts.choose("timescaledb", None, "not installed", "url")


def test_adopting_the_same_layout_keeps_its_bookkeeping() -> None:
    timescale = TimescaleLayout()
    timescale.owing.add("ps100_readings")
    assert layouts.adopt(timescale, "timescaledb") is timescale
    plain = layouts.adopt(timescale, "plain")
    assert isinstance(plain, PlainLayout) and layouts.adopt(plain, "plain") is plain
    again = layouts.adopt(plain, "timescaledb")
    assert isinstance(again, TimescaleLayout) and again.owing == set()
    with pytest.raises(ConfigError, match="unknown PostgreSQL layout 'columnar'"):
        layouts.adopt(plain, "columnar")


def test_grids_and_abilities() -> None:
    assert PlainLayout().value_grid("binary") == "decimal"
    assert TimescaleLayout().value_grid("binary") == "binary"
    assert TimescaleLayout().value_grid("decimal") == "decimal"
    assert PlainLayout().abilities() == {"Partitioned"}
    assert TimescaleLayout().abilities() == {"Partitioned", "Compressing",
                                             "ContinuousAggregates", "DroppedRanges"}
