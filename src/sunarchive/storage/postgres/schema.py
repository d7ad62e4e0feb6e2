"""PostgreSQL schema shared by the TimescaleDB and the plain layout: column lists and idempotent
column upgrades (the bookkeeping tables come from :mod:`sunarchive.storage.migrations`)."""

from __future__ import annotations

import psycopg

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import POSTGRES
from sunarchive.storage.tiered import tier_columns

Q = POSTGRES.quote
def column_defs(profile: Profile, tier: str) -> str:
    """Column definitions of a tier table in PostgreSQL types."""
    return ", ".join(
        f"{Q(n)} {POSTGRES.sql_type(t)}{' NOT NULL' if n in ('time', 'series_id') else ''}"
        for n, t in tier_columns(profile, tier))


def existing_columns(con: psycopg.Connection[tuple[object, ...]], table: str) -> list[str]:
    """Columns of ``table`` (found as the search path finds it), in order; [] when there is
    no such table. Read from ``pg_attribute`` by the relation's oid: the
    ``information_schema.columns`` view scans every column of the database."""
    rows = con.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                       "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                       [Q(table)]).fetchall()
    return [str(r[0]) for r in rows]


def relation_kind(con: psycopg.Connection[tuple[object, ...]], name: str) -> str | None:
    """pg_class.relkind of a relation in the current schema ('r', 'p', 'v', ...) or None."""
    row = con.execute("SELECT c.relkind FROM pg_class c JOIN pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                      "AND c.relname = %s", [name]).fetchone()
    return None if row is None else str(row[0])


def add_missing_columns(con: psycopg.Connection[tuple[object, ...]], profile: Profile,
                        tier: str, table: str | None = None) -> list[str]:
    """Columns a profile gained since the table was made (existing rows get NULL);
    ``table``: the tier's table when it is not ``<m>_<tier>``."""
    table = table or profile.table(tier)
    existing = existing_columns(con, table)
    missing = [(name, sql_type) for name, sql_type in tier_columns(profile, tier)
               if name not in existing]
    if missing:   # one statement: a field's five columns are one change of the table
        con.execute(f"ALTER TABLE {Q(table)} " + ", ".join(
            f"ADD COLUMN {Q(name)} {POSTGRES.sql_type(sql_type)}" for name, sql_type in missing))
    return [f"added column {table}.{name}" for name, _ in missing]
