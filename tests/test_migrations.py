"""Numbered migrations (sunarchive.storage.migrations) on stores made by the release before them.

``tests/data/store_v1_duckdb_demo.duckdb.gz``: ``sunarchive demo --speed 0 --duration 600
--panels 2 --start 2026-06-21T10:00:00+02:00 --timezone Europe/Berlin`` run by the code of
commit e0fa3f3 (the last without numbered migrations). ``store_v1_postgres_plain.sql.gz``: the
same demo into plain PostgreSQL, dumped with ``pg_dump --inserts --no-owner --no-privileges``.
Each migrates forward to the current version with every row it held unchanged.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sunarchive.errors import StoreTooNewError
from sunarchive.profiles import load_profiles
from sunarchive.storage import migrations
from sunarchive.storage.open import SqlStore, StoreOptions, open_store
from tests.support.cli import cli

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ZONE = "Europe/Berlin"
Snapshot = dict[str, list[tuple[Any, ...]]]


def _options() -> StoreOptions:
    return StoreOptions(profiles=load_profiles(), timezone=ZONE)


def _old_duckdb(tmp_path: Path) -> Path:
    db = tmp_path / "old.duckdb"
    with gzip.open(DATA / "store_v1_duckdb_demo.duckdb.gz") as src, db.open("wb") as out:
        shutil.copyfileobj(src, out)
    return db


@contextlib.contextmanager
def _opened(url: str, read_only: bool = False) -> Iterator[SqlStore]:
    store = open_store(url, _options(), read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def _snapshot(store: SqlStore) -> Snapshot:
    """Every row of every base table, sorted (the migration's own table left out)."""
    p = "?" if store.engine == "duckdb" else "%s"
    names = [r[0] for r in store._fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_type = "
        f"{p} AND table_schema = current_schema()", ["BASE TABLE"])]
    out = {}
    for name in sorted(names):
        if name != migrations.CHANGES_TABLE:
            rows = store._fetch(f"SELECT * FROM {store.dialect.quote(name)}")
            out[name] = sorted(rows, key=repr)
    return out


def _same_rows(before: Snapshot, after: Snapshot) -> None:
    assert sum(len(rows) for rows in before.values()) > 1200
    for name, rows in before.items():
        assert after.get(name) == rows, f"{name} changed"


def _versions(store: SqlStore) -> list[int]:
    return [int(r[0]) for r in store._fetch(
        f"SELECT version FROM {migrations.CHANGES_TABLE} ORDER BY version")]


def test_the_duckdb_store_of_the_last_release_migrates_without_a_data_change(
        tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    with _opened(f"duckdb:///{db}", read_only=True) as reader:
        assert reader.schema_version() == 0
        before = _snapshot(reader)
    with _opened(f"duckdb:///{db}") as store:
        assert store.schema_version() == migrations.CURRENT_VERSION
        assert _versions(store) == [step.version for step in migrations.STEPS]
        _same_rows(before, _snapshot(store))
    with _opened(f"duckdb:///{db}") as again:   # nothing left to apply
        assert again.migrate() == []
        assert _versions(again) == [step.version for step in migrations.STEPS]
    out = cli("sql", "SELECT COUNT(*) AS n FROM ps100_readings_1s", "--db", str(db),
              "--format", "csv").stdout
    assert out.split() == ["n", "1200"]


def test_a_store_written_by_a_newer_sunarchive_is_refused(tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    newer = migrations.CURRENT_VERSION + 1
    with _opened(f"duckdb:///{db}") as store:
        store._execute(f"INSERT INTO {migrations.CHANGES_TABLE} VALUES (?, NOW())", [newer])
    for read_only in (False, True):
        with pytest.raises(StoreTooNewError, match=f"schema version {newer}.*newer sunarchive"):
            open_store(f"duckdb:///{db}", _options(), read_only=read_only)
    result = cli("status", "--db", str(db), check=False)
    assert result.returncode == 2
    assert f"schema version {newer}" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_steps_apply_in_order_each_with_its_record_and_resume_after_a_failure(
        tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    with _opened(f"duckdb:///{db}") as store:
        schema = store._schema()
        seen: list[int] = []

        def note(version: int, fail: bool = False) -> migrations.Step:
            def apply(s: migrations.Schema) -> None:
                s.execute("CREATE TABLE IF NOT EXISTS seen (version INTEGER)", None)
                s.execute("INSERT INTO seen VALUES (?)", [version])
                seen.append(version)
                if fail:
                    raise RuntimeError(f"step {version} failed")
            return migrations.Step(version, f"note {version}", apply)

        base = migrations.CURRENT_VERSION
        failing = (*migrations.STEPS, note(base + 2), note(base + 1), note(base + 3, fail=True))
        with pytest.raises(RuntimeError):
            migrations.migrate(schema, failing)
        assert seen == [base + 1, base + 2, base + 3]
        assert _versions(store)[-1] == base + 2     # step 3 rolled back with its record
        assert [r[0] for r in store._fetch("SELECT version FROM seen")] == [base + 1, base + 2]
        fixed = (*migrations.STEPS, note(base + 1), note(base + 2), note(base + 3))
        assert migrations.migrate(schema, fixed) == [f"schema version {base + 3}: note "
                                                     f"{base + 3}"]
        assert _versions(store)[-3:] == [base + 1, base + 2, base + 3]


def _restore_plain(url: str) -> None:
    script = gzip.decompress((DATA / "store_v1_postgres_plain.sql.gz").read_bytes()).decode()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(script.encode())


def test_the_plain_postgres_layout_of_the_last_release_migrates_without_a_data_change(
        pg_url: str) -> None:
    _restore_plain(pg_url)
    with _opened(pg_url, read_only=True) as reader:
        assert reader.schema_version() == 0
        before = _snapshot(reader)
    with psycopg.connect(pg_url, autocommit=True) as con:   # as stores older than it were
        con.execute("DROP TABLE sunarchive_newest")
    with _opened(pg_url) as store:
        assert store.schema_version() == migrations.CURRENT_VERSION
        assert _versions(store) == [step.version for step in migrations.STEPS]
        after = _snapshot(store)
        _same_rows(before, after)     # sunarchive_newest included: recorded again, the same
        assert after["sunarchive_newest"]
    with _opened(pg_url, read_only=True) as reader:
        assert reader.last_time_s("ps100_readings") == before["sunarchive_newest"][0][1]
