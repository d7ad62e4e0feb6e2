"""The registry tables on every engine: what each kind holds, and their DDL (schema step 6).

Four kinds, each a table with an integer ``id``, a ``name``, descriptive columns,
``created_at`` and ``retired_at`` (NULL while the row is active; a row is never deleted):

* ``project`` — a research project;
* ``scientist`` — who runs experiments;
* ``device`` (table ``solar_cell_device``) — a solar cell, in one project
  (``project_id``), mounted on the rig at ``board`` / ``channel``;
* ``experiment`` — run by one scientist (``scientist_id``) on devices: the link table
  ``experiment_device (experiment_id, device_id, created_at)``.

Measurements (``mpp_measurement``, ``temperature_measurement``, ``irradiance_measurement``)
refer to a device by their ``device_id`` tag, which holds the device's id as decimal text.

Ids come from ``SERIAL`` on PostgreSQL and from a sequence on DuckDB (``<table>_id_seq``, the
name PostgreSQL gives a ``SERIAL``'s). Instants are the store's: ``TIMESTAMPTZ`` on
PostgreSQL, a UTC ``TIMESTAMP`` on DuckDB. References are foreign keys on both engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sunarchive.upstream.kinds import Column, Kind

if TYPE_CHECKING:
    from sunarchive.storage.migrations import Schema

LINK_TABLE = "experiment_device"


NAME = Column("name", "text", "what people call it (required)")
DESCRIPTION = Column("description", "text", "free text")
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("project", "project", (NAME, DESCRIPTION)),
    Kind("scientist", "scientist", (
        NAME, Column("email", "text", "e-mail address"),
        Column("affiliation", "text", "group or institute"))),
    Kind("device", "solar_cell_device", (
        NAME, Column("project_id", "reference", "the project the device belongs to",
                     references="project"),
        Column("architecture", "text", "cell stack, e.g. perovskite/silicon tandem"),
        Column("area_cm2", "number", "active area in cm²"),
        Column("board", "integer", "rig board the device is mounted on"),
        Column("channel", "integer", "tracking channel of that board"),
        DESCRIPTION)),
    Kind("experiment", "experiment", (
        NAME, Column("scientist_id", "reference", "the scientist who runs it",
                     references="scientist"),
        DESCRIPTION)),
)}
"""The kinds, in the order their tables are created (a table after those it refers to)."""

SQL_TYPES = {"text": None, "integer": "INTEGER", "number": "DOUBLE PRECISION",
             "reference": "INTEGER"}


def statements(s: Schema) -> list[str]:
    """The DDL of the registry tables on ``s``'s engine (idempotent)."""
    now = "NOW()" if s.postgres else "timezone('UTC', now())"
    out: list[str] = []
    for kind in KINDS.values():
        if s.postgres:
            key = "id SERIAL PRIMARY KEY"
        else:
            out.append(f"CREATE SEQUENCE IF NOT EXISTS {kind.table}_id_seq")
            key = f"id INTEGER PRIMARY KEY DEFAULT nextval('{kind.table}_id_seq')"
        columns = [key] + [_column_sql(s, kind, c) for c in kind.columns]
        out.append(f"CREATE TABLE IF NOT EXISTS {kind.table} ({', '.join(columns)}, "
                   f"created_at {s.instant} NOT NULL DEFAULT {now}, "
                   f"retired_at {s.instant})")
    out.append(f"""CREATE TABLE IF NOT EXISTS {LINK_TABLE} (
        experiment_id INTEGER NOT NULL REFERENCES experiment (id),
        device_id INTEGER NOT NULL REFERENCES solar_cell_device (id),
        created_at {s.instant} NOT NULL DEFAULT {now},
        PRIMARY KEY (experiment_id, device_id))""")
    out.append("CREATE INDEX IF NOT EXISTS solar_cell_device_project ON solar_cell_device "
               "(project_id)")
    out.append(f"CREATE INDEX IF NOT EXISTS {LINK_TABLE}_device ON {LINK_TABLE} (device_id)")
    return out


def _column_sql(s: Schema, kind: Kind, column: Column) -> str:
    sql_type = SQL_TYPES[column.type] or s.text
    if column.type == "reference":
        assert column.references is not None
        sql_type += f" REFERENCES {KINDS[column.references].table} (id)"
    if column.name == "name":
        sql_type += " NOT NULL"
    return f"{column.name} {sql_type}"


def create(s: Schema) -> None:
    """Migration step: create the tables (a store that has them keeps them as they are)."""
    for statement in statements(s):
        s.execute(statement, None)
