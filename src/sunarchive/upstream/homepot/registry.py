"""``sites`` and ``devices``: the registries HOMEPOT's health checks refer to by id.

Small tables on every engine, ids as HOMEPOT gives them (integers, not drawn from a
sequence: the health checks name them first). Nothing is deleted: a device or site that is
gone gets ``retired_at``. ``created_at`` defaults to the UTC now (``TIMESTAMPTZ`` on
PostgreSQL, a UTC ``TIMESTAMP`` on DuckDB, as every instant of the store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sunarchive.storage.migrations import Schema

TABLES = ("sites", "devices")


def statements(s: Schema) -> dict[str, list[str]]:
    """The DDL of each registry on ``s``'s engine."""
    text, instant = s.text, s.instant
    now = "NOW()" if s.postgres else "timezone('UTC', now())"
    stamps = (f"created_at {instant} NOT NULL DEFAULT {now}, retired_at {instant}")
    return {
        "sites": [f"""CREATE TABLE sites (
            id INTEGER PRIMARY KEY, name {text}, location {text}, description {text},
            {stamps})"""],
        "devices": [f"""CREATE TABLE devices (
            id INTEGER PRIMARY KEY, name {text}, site_id INTEGER, device_type {text},
            description {text}, {stamps})""",
                    "CREATE INDEX idx_devices_site ON devices (site_id)"],
    }


def create(s: Schema) -> list[str]:
    """Create the registries that are missing (a relation of that name, whoever made it,
    is left alone); return what was made."""
    made = []
    for table, ddl in statements(s).items():
        if s.has_table(table):
            continue
        for statement in ddl:
            s.execute(statement, None)
        made.append(f"created table {table} (HOMEPOT registry)")
    return made
