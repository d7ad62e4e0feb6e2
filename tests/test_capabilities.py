"""Engine abilities are asked for by capability, never by engine type (issue 16, point 2):
each engine lists what it can do now, the CLI's answers follow from that, and no module
outside ``sunarchive.storage`` tests a store's class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sunarchive.profiles import load_profiles
from sunarchive.storage import capabilities
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres import layouts, timescale
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.cli import cli

pytestmark = pytest.mark.engine

SRC = Path(__file__).resolve().parent.parent / "src" / "sunarchive"
PROFILES = {"ps100_readings": load_profiles()["ps100_readings"]}
ACCESSORS = {"Partitioned": capabilities.partitioned, "Compressing": capabilities.compressing,
             "ContinuousAggregates": capabilities.continuous_aggregates,
             "DroppedRanges": capabilities.dropped_ranges}


def offered(store: object) -> set[str]:
    return {name for name, accessor in ACCESSORS.items() if accessor(store) is not None}


def test_duckdb_offers_none(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb", dict(PROFILES))
    try:
        store.setup()
        assert store.abilities() == frozenset() and offered(store) == set()
        assert store.layout is None
    finally:
        store.close()


def test_plain_postgres_lists_partitions_only(pg_url: str) -> None:
    """A server without TimescaleDB: the plain layout, whose 1 s tables are partitioned."""
    store = PostgresStore(pg_url, dict(PROFILES))
    try:
        store.setup()
        assert store.layout == "plain"
        assert offered(store) == {"Partitioned"} == set(store.abilities())
        partitioned = capabilities.partitioned(store)
        assert partitioned is not None and partitioned.chunks("ps100_readings_1s")
    finally:
        store.close()


def test_timescaledb_offers_every_ability(timescale_url: str) -> None:
    store = PostgresStore(timescale_url, dict(PROFILES))
    try:
        store.setup()
        assert store.layout == "timescaledb"
        assert offered(store) == set(ACCESSORS) == set(store.abilities())
    finally:
        store.close()


def test_the_cli_answers_from_the_abilities(tmp_path: Path, pg_url: str) -> None:
    db = str(tmp_path / "c.duckdb")
    cli("setup", "--db", db)
    for args, words in ((["chunks", "ps100_readings_1s"], "chunks are a PostgreSQL notion"),
                        (["compress"], "compression needs TimescaleDB (this store uses "
                                       "DuckDB)")):
        result = cli(*args, "--db", db, check=False)
        assert result.returncode == 2 and words in result.stderr
    cli("setup", "--database-url", pg_url)
    result = cli("compress", "--database-url", pg_url, check=False)
    assert result.returncode == 2
    assert "compression needs TimescaleDB (this store uses plain PostgreSQL)" in result.stderr
    assert "ps100_readings_1s" in cli("chunks", "ps100_readings_1s", "--database-url", pg_url,
                                      "--json").stdout


def test_no_module_outside_storage_tests_an_engine_type() -> None:
    """``isinstance(store, DuckDBStore)`` and ``getattr(store, "layout")`` outside the storage
    package would tie callers to engines; they ask for a capability instead."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if "storage" in path.relative_to(SRC).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            names = {a.id for a in node.args if isinstance(a, ast.Name)} | {
                a.attr for a in node.args if isinstance(a, ast.Attribute)}
            if node.func.id == "isinstance" and names & {"DuckDBStore", "PostgresStore"}:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            consts = {a.value for a in node.args if isinstance(a, ast.Constant)}
            if node.func.id in ("getattr", "hasattr") and "layout" in consts:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


def test_open_takes_the_stored_layout_without_detecting(pg_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader's open (``load_state``) reads the layout setup chose from the store and gets
    that layout's object, abilities and grid, without probing the server for TimescaleDB."""
    store = PostgresStore(pg_url, dict(PROFILES))
    try:
        store.setup()
        assert isinstance(store.layout_impl, layouts.PlainLayout)
        store._execute("UPDATE sunarchive_meta SET value = 'timescaledb' WHERE key = 'layout'")
    finally:
        store.close()

    def no_detection(con: object) -> tuple[str | None, str]:
        raise AssertionError("load_state detected the layout again")

    monkeypatch.setattr(timescale, "ensure_extension", no_detection)
    reader = PostgresStore(pg_url, dict(PROFILES), read_only=True)
    try:
        reader.load_state()
        assert isinstance(reader.layout_impl, layouts.TimescaleLayout)
        assert reader.layout == "timescaledb" and reader.value_grid == "binary"
        assert offered(reader) == set(ACCESSORS)
    finally:
        reader.close()
