"""DuckDB schema: one table per measurement and tier — ``<m>_1s`` and the rollups' complete
buckets in ``<m>_<tier>_materialized``, read through views (:mod:`sunarchive.storage.tier_views`)
— (the bookkeeping tables come from the numbered steps of :mod:`sunarchive.storage.migrations`).

``setup`` is idempotent: it creates what is missing and adds columns a profile gained since
(existing rows get NULL there; nothing is lost).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ALL_TIERS, DUCKDB
from sunarchive.storage.migrations import stored_table
from sunarchive.storage.tiered import tier_columns

Q = DUCKDB.quote


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Columns of ``table`` in order ([] when there is no such table). A direct catalog
    lookup: ``duckdb_columns()`` lists every column of the store (7 ms with 1500 tables).
    A missing table makes the lookup a failed statement: never call this inside a
    transaction (a transaction with a failed statement cannot commit)."""
    try:
        rows = con.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid",
                           [Q(table)]).fetchall()
    except duckdb.CatalogException:
        return []
    return [r[0] for r in rows]


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every table of the store, case-folded (DuckDB compares names so)."""
    return {str(r[0]).casefold() for r in
            con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def create_schema(con: duckdb.DuckDBPyConnection, profiles: Iterable[Profile],
                  tables: set[str] | None = None) -> list[str]:
    """Create or upgrade every measurement table; return a description of each change made.
    (The bookkeeping tables are :mod:`sunarchive.storage.migrations`' job.)

    ``tables``: the store's tables, case-folded (:func:`table_names`; read when not given),
    kept up to date here: only the columns of tables that exist are looked up, so the cost
    does not grow with the number of tables. Every change is made in one transaction."""
    known = table_names(con) if tables is None else tables
    todo = [step for profile in profiles for tier in ALL_TIERS
            for step in _table_steps(con, profile, tier, known)]
    if not todo:
        return []
    con.execute("BEGIN TRANSACTION")
    try:
        for statement, _ in todo:
            con.execute(statement)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    known.update(stored_table(profile, tier).casefold() for profile in profiles
                 for tier in ALL_TIERS)
    return [change for _, change in todo]


def _table_steps(con: duckdb.DuckDBPyConnection, profile: Profile, tier: str,
                 tables: set[str]) -> list[tuple[str, str]]:
    """(statement, what it changes) to create a tier table or add the columns it lacks."""
    table = stored_table(profile, tier)
    wanted = tier_columns(profile, tier)
    existing = table_columns(con, table) if table.casefold() in tables else []
    if not existing:
        body = ", ".join(f"{Q(n)} {t}{' NOT NULL' if n in ('time', 'series_id') else ''}"
                         for n, t in wanted)
        return [(f"CREATE TABLE {Q(table)} ({body})", f"created table {table}")]
    return [(f"ALTER TABLE {Q(table)} ADD COLUMN {Q(name)} {sql_type}",
             f"added column {table}.{name}") for name, sql_type in wanted
            if name not in existing]
