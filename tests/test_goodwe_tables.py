"""The GoodWe plan's tables (tests/data/upstream-sql/goodwe_tables.sql) on every engine.

Each ``CREATE TABLE`` block of the plan runs verbatim on PostgreSQL (plain, and TimescaleDB in
PGlite) next to the store's own table, and the two have the same columns in the same order
with the same types — except the instants, ``TIMESTAMPTZ`` in the store (the store's instants
are UTC and aware). DuckDB has neither ``SERIAL`` nor ``JSONB``, so the verbatim block cannot
run there; its tables have the same columns with DuckDB's equivalents (``INTEGER`` drawing
from a sequence, ``JSON``). Then the write path: sessions stored once, configuration versions
with one active per name, reports.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sunarchive.model import InputError
from sunarchive.profiles import load_profiles
from sunarchive.storage.open import SqlStore, StoreOptions, open_store
from sunarchive.upstream.goodwe.tables import (
    Session,
    active_config,
    add_report,
    insert_sessions,
    put_config,
    sessions_between,
    sessions_by_id,
)
from tests.support.goodwe_files import plan_tables
from tests.support.pglite_server import drop_schema, fresh_schema

pytestmark = pytest.mark.engine

DATA = Path(__file__).parent / "data"
DUCKDB_TYPES = {"SERIAL": "INTEGER", "JSONB": "JSON"}
T = datetime(2025, 5, 1, 23, 0, tzinfo=UTC)


def _open(url: str, zone: str = "Europe/Warsaw") -> SqlStore:
    return open_store(url, StoreOptions(profiles=load_profiles(), timezone=zone))


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    url = f"duckdb:///{tmp_path / 's.duckdb'}" if request.param == "duckdb" else \
        request.getfixturevalue("pg_url")
    opened = _open(url)
    try:
        yield opened
    finally:
        opened.close()


def _pg_columns(con: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
        "numeric_scale, column_default IS NOT NULL AND column_default LIKE 'nextval%%' "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", [schema, table]).fetchall()


def _pg_constraints(con: psycopg.Connection[Any], schema: str, table: str) -> list[Any]:
    return sorted(con.execute(
        "SELECT c.constraint_type, k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, "
        "constraint_name) WHERE c.table_schema = %s AND c.table_name = %s",
        [schema, table]).fetchall())


def _assert_plan_verbatim(con: psycopg.Connection[Any], store_schema: str) -> None:
    con.execute('CREATE SCHEMA "plan_verbatim"')
    try:
        for table in plan_tables():
            con.execute('SET search_path TO "plan_verbatim"')
            con.execute(table.sql)                              # the plan's text, unchanged
            plan = _pg_columns(con, "plan_verbatim", table.name)
            ours = _pg_columns(con, store_schema, table.name)
            instants = {"timestamp without time zone": "timestamp with time zone"}
            assert [(c[0], instants.get(c[1], c[1]), *c[2:]) for c in plan] == ours
            assert _pg_constraints(con, "plan_verbatim", table.name) == \
                _pg_constraints(con, store_schema, table.name)
    finally:
        con.execute('DROP SCHEMA "plan_verbatim" CASCADE')
        con.execute(f'SET search_path TO "{store_schema}", public')


def test_plan_blocks_run_verbatim_beside_the_store_tables_on_postgresql(pg_url: str) -> None:
    _open(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as con:
        _assert_plan_verbatim(con, "public")


def test_plan_blocks_run_verbatim_beside_the_store_tables_on_timescaledb(
        pglite_url: str) -> None:
    from sunarchive.storage.postgres.store import PostgresStore
    from sunarchive.storage.postgres.user_sql import ReaderRole

    name = fresh_schema(pglite_url)
    try:
        store = PostgresStore(pglite_url, load_profiles(), timezone="Europe/Warsaw",
                              reader=ReaderRole(as_owner=True))
        try:
            store.setup()
            assert store.layout == "timescaledb"
        finally:
            store.close()
        with psycopg.connect(pglite_url, autocommit=True) as con:
            con.execute(f'SET search_path TO "{name}", public')
            _assert_plan_verbatim(con, name)
            con.execute("INSERT INTO charging_sessions (session_id, start_time, "
                        "energy_charged_kwh) VALUES ('a', '2025-05-01T01:00:00Z', 1.2345)")
            row = con.execute("SELECT id, energy_charged_kwh, created_at IS NOT NULL FROM "
                              "charging_sessions").fetchall()
            assert row == [(1, Decimal("1.235"), True)]
    finally:
        drop_schema(pglite_url, name)


def test_duckdb_tables_have_the_plan_columns_with_duckdb_types(tmp_path: Path) -> None:
    store = _open(f"duckdb:///{tmp_path / 's.duckdb'}")
    try:
        for table in plan_tables():
            rows = store.sql(f"SELECT column_name, data_type, column_default FROM "
                             f"information_schema.columns WHERE table_name = "
                             f"'{table.name}' ORDER BY ordinal_position").rows()
            expected = [(name, DUCKDB_TYPES.get(kind, kind.split("(")[0] if
                                                kind.startswith("VARCHAR") else kind))
                        for name, kind in table.columns]
            assert [(r[0], r[1]) for r in rows] == expected
            assert "nextval" in str(rows[0][2])
    finally:
        store.close()


def test_an_existing_store_gets_the_tables_by_migration(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    with gzip.open(DATA / "store_v1_duckdb_demo.duckdb.gz") as src, db.open("wb") as out:
        shutil.copyfileobj(src, out)
    store = _open(f"duckdb:///{db}", "Europe/Berlin")
    try:
        names = {r[0] for r in store.sql("SELECT table_name FROM information_schema.tables")
                 .rows()}
        assert {"charging_sessions", "system_configs", "analytics_reports"} <= names
    finally:
        store.close()


def _session(n: int, **values: Any) -> Session:
    base: dict[str, Any] = {"start_time": T + timedelta(hours=n),
                            "end_time": T + timedelta(hours=n, minutes=90),
                            "battery_soc_start": 20, "battery_soc_end": 80,
                            "energy_charged_kwh": Decimal("5.125"),
                            "average_price_pln": Decimal("0.4100"),
                            "total_cost_pln": Decimal("2.10"), "status": "completed"}
    base.update(values)
    return Session(f"s{n}", **base)


def test_sessions_are_stored_once_and_read_by_start(store: SqlStore) -> None:
    before = datetime.now(UTC)
    assert insert_sessions(store, [_session(0), _session(1), _session(2)]) == ["s0", "s1", "s2"]
    again = insert_sessions(store, [_session(1, status="other"), _session(3)])
    assert again == ["s3"]                                 # s1 is kept as stored
    rows = sessions_between(store, T, T + timedelta(hours=2))
    assert [r["session_id"] for r in rows] == ["s0", "s1"]
    assert rows[1]["status"] == "completed" and rows[1]["start_time"] == T + timedelta(hours=1)
    assert rows[0]["energy_charged_kwh"] == Decimal("5.125")
    assert before - timedelta(seconds=1) <= rows[0]["created_at"] <= \
        datetime.now(UTC) + timedelta(seconds=1)         # the UTC now, on either engine
    assert len({r["id"] for r in sessions_by_id(store, ["s0", "s1", "s2", "s3"]).values()}) == 4


def test_config_versions_keep_one_active_per_name(store: SqlStore) -> None:
    first = put_config(store, "charging", {"max_price": 0.5})
    assert first["version"] == "1" and first["is_active"] is True
    second = put_config(store, "charging", {"max_price": 0.45})
    put_config(store, "weather", {"source": "imgw"}, version="2025.1")
    assert second["version"] == "2" and second["config_data"] == {"max_price": 0.45}
    assert active_config(store, "charging") == second
    rows = store.sql("SELECT config_name, version, is_active FROM system_configs "
                     "ORDER BY config_name, version").rows()
    assert rows == [("charging", "1", False), ("charging", "2", True),
                    ("weather", "2025.1", True)]
    with pytest.raises(InputError, match="already has version '2'"):
        put_config(store, "charging", {}, version="2")
    with pytest.raises(InputError, match="config_name: 101 characters"):
        put_config(store, "x" * 101, {})


def test_only_one_active_version_on_postgresql(pg_url: str) -> None:
    store = _open(pg_url)
    try:
        put_config(store, "charging", {"a": 1})
    finally:
        store.close()
    with psycopg.connect(pg_url) as con, pytest.raises(psycopg.errors.UniqueViolation):
        con.execute("INSERT INTO system_configs (config_name, config_data, version) VALUES "
                    "('charging', '{}', '9')")


def test_reports_are_stored(store: SqlStore) -> None:
    add_report(store, "daily_savings", date(2025, 5, 1), {"saved_pln": 3.5})
    rows = store.sql("SELECT report_type, report_date, report_data FROM analytics_reports"
                     ).rows()
    assert rows[0][:2] == ("daily_savings", date(2025, 5, 1))
    assert "3.5" in str(rows[0][2])
