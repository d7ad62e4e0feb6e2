"""PostgreSQL schema shared by the TimescaleDB and the plain layout: bookkeeping tables, column
lists and idempotent column upgrades."""

from __future__ import annotations

import psycopg

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import POSTGRES
from sunarchive.storage.tiered import tier_columns

Q = POSTGRES.quote
SCHEMA_VERSION = 1

BOOKKEEPING = [
    "CREATE TABLE IF NOT EXISTS sunarchive_meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE IF NOT EXISTS sunarchive_series (
        series_id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, tags TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_rollup_state (
        measurement TEXT NOT NULL, tier TEXT NOT NULL, horizon_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_dirty (
        measurement TEXT NOT NULL, bucket_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_profiles (
        name TEXT PRIMARY KEY, spec TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_writer_state (
        measurement TEXT PRIMARY KEY, last_batch BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_batch_parts (
        measurement TEXT NOT NULL, batch_id BIGINT NOT NULL, part INTEGER NOT NULL,
        PRIMARY KEY (measurement, batch_id, part))""",
    """CREATE TABLE IF NOT EXISTS sunarchive_newest (
        measurement TEXT PRIMARY KEY, time_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sunarchive_state_labels (
        measurement TEXT NOT NULL, field TEXT NOT NULL, code INTEGER NOT NULL,
        label TEXT NOT NULL, PRIMARY KEY (measurement, field, label))""",
    """CREATE TABLE IF NOT EXISTS sunarchive_events (
        time TIMESTAMPTZ NOT NULL, end_time TIMESTAMPTZ, kind TEXT NOT NULL,
        measurement TEXT, series_id INTEGER, message TEXT NOT NULL)""",
]


def column_defs(profile: Profile, tier: str) -> str:
    """Column definitions of a tier table in PostgreSQL types."""
    return ", ".join(
        f"{Q(n)} {POSTGRES.sql_type(t)}{' NOT NULL' if n in ('time', 'series_id') else ''}"
        for n, t in tier_columns(profile, tier))


def create_bookkeeping(con: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement in BOOKKEEPING:
        con.execute(statement)
    con.execute("INSERT INTO sunarchive_meta VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [str(SCHEMA_VERSION)])


def existing_columns(con: psycopg.Connection[tuple[object, ...]], table: str) -> list[str]:
    rows = con.execute("SELECT column_name FROM information_schema.columns "
                       "WHERE table_schema = current_schema() AND table_name = %s "
                       "ORDER BY ordinal_position", [table]).fetchall()
    return [str(r[0]) for r in rows]


def relation_kind(con: psycopg.Connection[tuple[object, ...]], name: str) -> str | None:
    """pg_class.relkind of a relation in the current schema ('r', 'p', 'v', ...) or None."""
    row = con.execute("SELECT c.relkind FROM pg_class c JOIN pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                      "AND c.relname = %s", [name]).fetchone()
    return None if row is None else str(row[0])


def add_missing_columns(con: psycopg.Connection[tuple[object, ...]], profile: Profile,
                        tier: str) -> list[str]:
    """Columns a profile gained since the table was made (existing rows get NULL)."""
    table = profile.table(tier)
    existing = existing_columns(con, table)
    changes = []
    for name, sql_type in tier_columns(profile, tier):
        if name not in existing:
            con.execute(f"ALTER TABLE {Q(table)} ADD COLUMN {Q(name)} "
                        f"{POSTGRES.sql_type(sql_type)}")
            changes.append(f"added column {table}.{name}")
    return changes
