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
                        tier: str, table: str | None = None) -> list[str]:
    """Columns a profile gained since the table was made (existing rows get NULL);
    ``table``: the tier's table when it is not ``<m>_<tier>``."""
    table = table or profile.table(tier)
    existing = existing_columns(con, table)
    changes = []
    for name, sql_type in tier_columns(profile, tier):
        if name not in existing:
            con.execute(f"ALTER TABLE {Q(table)} ADD COLUMN {Q(name)} "
                        f"{POSTGRES.sql_type(sql_type)}")
            changes.append(f"added column {table}.{name}")
    return changes
