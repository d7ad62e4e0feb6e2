"""DuckDB schema: one table per measurement and tier, plus bookkeeping tables.

``setup`` is idempotent: it creates what is missing and adds columns a profile gained since
(existing rows get NULL there; nothing is lost).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ALL_TIERS, DUCKDB
from sunarchive.storage.tiered import tier_columns

Q = DUCKDB.quote
SCHEMA_VERSION = 1

BOOKKEEPING = [
    """CREATE TABLE IF NOT EXISTS sunarchive_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_series (
        series_id INTEGER PRIMARY KEY, measurement VARCHAR NOT NULL, tags VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_rollup_state (
        measurement VARCHAR NOT NULL, tier VARCHAR NOT NULL, horizon_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_dirty (
        measurement VARCHAR NOT NULL, bucket_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_profiles (
        name VARCHAR PRIMARY KEY, spec VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_writer_state (
        measurement VARCHAR PRIMARY KEY, last_batch BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_state_labels (
        measurement VARCHAR NOT NULL, field VARCHAR NOT NULL, code INTEGER NOT NULL,
        label VARCHAR NOT NULL, PRIMARY KEY (measurement, field, label))""",
    """CREATE TABLE IF NOT EXISTS sunarchive_events (
        time TIMESTAMP NOT NULL, end_time TIMESTAMP, kind VARCHAR NOT NULL,
        measurement VARCHAR, series_id INTEGER, message VARCHAR NOT NULL)""",
]


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                       "ORDER BY column_index", [table]).fetchall()
    return [r[0] for r in rows]


def create_schema(con: duckdb.DuckDBPyConnection, profiles: Iterable[Profile]) -> list[str]:
    """Create or upgrade every table; return a description of each change made."""
    changes: list[str] = []
    for statement in BOOKKEEPING:
        con.execute(statement)
    con.execute("INSERT OR REPLACE INTO sunarchive_meta VALUES ('schema_version', ?)",
                [str(SCHEMA_VERSION)])
    for profile in profiles:
        for tier in ALL_TIERS:
            changes.extend(_ensure_table(con, profile, tier))
    return changes


def _ensure_table(con: duckdb.DuckDBPyConnection, profile: Profile, tier: str) -> list[str]:
    table = profile.table(tier)
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
