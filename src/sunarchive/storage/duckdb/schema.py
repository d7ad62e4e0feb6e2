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
    rows = con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                       "ORDER BY column_index", [table]).fetchall()
    return [r[0] for r in rows]


def create_schema(con: duckdb.DuckDBPyConnection, profiles: Iterable[Profile]) -> list[str]:
    """Create or upgrade every measurement table; return a description of each change made.
    (The bookkeeping tables are :mod:`sunarchive.storage.migrations`' job.)"""
    changes: list[str] = []
    for profile in profiles:
        for tier in ALL_TIERS:
            changes.extend(_ensure_table(con, profile, tier))
    return changes


def _ensure_table(con: duckdb.DuckDBPyConnection, profile: Profile, tier: str) -> list[str]:
    table = stored_table(profile, tier)
    wanted = tier_columns(profile, tier)
    existing = table_columns(con, table)
    if not existing:
        body = ", ".join(f"{Q(n)} {t}{' NOT NULL' if n in ('time', 'series_id') else ''}"
                         for n, t in wanted)
        con.execute(f"CREATE TABLE {Q(table)} ({body})")
        return [f"created table {table}"]
    changes = []
    for name, sql_type in wanted:
        if name not in existing:
            con.execute(f"ALTER TABLE {Q(table)} ADD COLUMN {Q(name)} {sql_type}")
            changes.append(f"added column {table}.{name}")
    return changes
