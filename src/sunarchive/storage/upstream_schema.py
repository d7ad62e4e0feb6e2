"""The upstream schema: relations user SQL finds before the store's own, under the same names.

An upstream system's document sometimes gives a table columns that sunarchive computes rather
than stores (PS100's ``ps100_readings_1s.efficiency_percent``: :mod:`sunarchive.upstream.
ps100_view`). The writer and sunarchive's own reads keep using the table; user SQL
(``sunarchive sql``, ``/api/v1/sql``, the PostgreSQL reader role) looks names up in this
schema first, where a view of the same name adds the computed columns. Nothing is stored twice.

* DuckDB: schema ``sunarchive_upstream``; the user SQL cursor sets ``search_path`` to
  ``sunarchive_upstream,main`` (a setting of that cursor only, allowed with the configuration
  locked; the user's statement cannot ``SET``).
* PostgreSQL: schema ``sunarchive_upstream`` for a store in ``public``, else
  ``<schema>_upstream``; user SQL puts it first in ``search_path`` for its transaction, and
  ``setup`` makes it the reader role's default in this database (for Grafana's own
  connections), with SELECT on its views.

Views in the store's schema (the tier views) name the store's tables and are not affected.
"""

from __future__ import annotations

from sunarchive.storage.migrations import Schema

DEFAULT = "sunarchive_upstream"
STORE_DEFAULT_SCHEMAS = ("public", "main")


def name_for(store_schema: str) -> str:
    """The upstream schema of a store kept in ``store_schema``."""
    if store_schema in STORE_DEFAULT_SCHEMAS:
        return DEFAULT
    return f"{store_schema}_upstream"[:63]


def ensure(s: Schema) -> str:
    """Create the upstream schema of the store ``s`` if missing; its name."""
    here = str(s.fetch("SELECT current_schema()", None)[0][0])
    name = name_for(here)
    s.execute(f"CREATE SCHEMA IF NOT EXISTS {s.dialect.quote(name)}", None)
    return name


POSTGRES_SEARCH_PATH = (
    "SELECT set_config('search_path', CASE WHEN to_regnamespace(quote_ident(u)) IS NOT NULL "
    "THEN quote_ident(u) || ', ' ELSE '' END || current_setting('search_path'), true) FROM "
    "(SELECT %s::text AS u) AS upstream")
"""Puts the upstream schema (the parameter; if it exists) first in the transaction's
``search_path``."""
