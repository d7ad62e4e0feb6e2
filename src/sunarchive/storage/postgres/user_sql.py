"""User SQL on PostgreSQL, where it cannot write, read server files, run programs, signal
other sessions or change settings.

* It runs on a connection of its own, logged in as the reader role (``postgres_reader_role``,
  default ``sunarchive_reader``) that ``setup`` creates with SELECT rights only — not a
  superuser, no ``pg_read_server_files``, ``pg_execute_server_program``,
  ``pg_write_server_files`` or ``pg_signal_backend``. A role with any of those is refused.
  Only ``postgres_sql_as_owner: true`` runs it as the ``database_url`` role instead.
* The statement becomes the query of a cursor (``DECLARE … CURSOR FOR <statement>``) sent
  with the extended protocol: the server's own parser accepts exactly one statement, and a
  cursor only a query (SELECT, VALUES, TABLE, WITH … SELECT without data-modifying parts).
* Names resolve in the store's upstream schema first
  (:mod:`sunarchive.storage.upstream_schema`), set for the transaction only.
* All of it inside a ``READ ONLY`` transaction with a local ``statement_timeout``
  (``sql_timeout_s``), rolled back, and the connection closed: nothing it sets or locks
  outlives it. At most ``sql_max_rows`` + 1 rows are fetched.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from sunarchive.model import ConfigError, TransientStoreError
from sunarchive.storage import upstream_schema
from sunarchive.storage.postgres.refusals import refused_for_good
from sunarchive.storage.postgres.rows import load_infinities, rows_table
from sunarchive.storage.user_sql import (
    SqlLimits,
    UserSqlError,
    check_text,
    failed,
    not_one_read,
    timed_out,
    too_many_rows,
)

Con = psycopg.Connection[tuple[Any, ...]]
CURSOR = "sunarchive_user_sql"
DECLARE = f"DECLARE {CURSOR} NO SCROLL CURSOR FOR "
POWERFUL_ROLES = ("pg_read_server_files", "pg_write_server_files",
                  "pg_execute_server_program", "pg_signal_backend")
"""Memberships (a superuser has them all) that would let SQL reach beyond the tables."""
BEGIN = ("SELECT set_config('statement_timeout', %s, true), "
         + " OR ".join(f"pg_has_role('{r}', 'MEMBER')" for r in POWERFUL_ROLES))


@dataclass(frozen=True)
class ReaderRole:
    """Who user SQL runs as on PostgreSQL (settings ``postgres_reader_*``)."""

    name: str = "sunarchive_reader"
    password: str | None = None
    as_owner: bool = False
    """Fallback: run user SQL as the ``database_url`` role (``postgres_sql_as_owner``)."""


def run(url: str, owner_password: str | None, role: ReaderRole, limits: SqlLimits,
        connect_timeout_s: int, text: str, upstream: str | None = None) -> pa.Table:
    """Rows of the user statement ``text`` (see the module docstring for how it runs)."""
    check_text(text)
    con = _connect(url, owner_password, role, connect_timeout_s)
    try:
        return _read(con, text, role, limits, upstream)
    except psycopg.OperationalError as exc:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            raise timed_out(limits) from None
        raise TransientStoreError(f"PostgreSQL connection lost: {_first(exc)}") from None
    except psycopg.Error as exc:
        raise _refusal(exc, text) from None
    finally:
        con.close()


def _connect(url: str, owner_password: str | None, role: ReaderRole,
             connect_timeout_s: int) -> Con:
    login: dict[str, Any] = {"password": owner_password} if role.as_owner else \
        {"user": role.name, "password": role.password or ""}
    try:
        con: Con = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s,
                                   options="-c TimeZone=UTC",
                                   **login)
        load_infinities(con)
    except psycopg.OperationalError as exc:
        if role.as_owner or not refused_for_good(str(exc)):
            raise TransientStoreError(f"cannot connect to PostgreSQL for SQL: "
                                      f"{_first(exc)}") from None
        raise ConfigError(
            f"cannot connect as the SQL reader role {role.name!r} ({_first(exc)}); "
            "`sunarchive setup` creates it (set postgres_reader_password if the server "
            "asks for one), or set postgres_sql_as_owner: true to run SQL as the store's "
            "own role (docs/postgresql.md)") from None
    return con


def _read(con: Con, text: str, role: ReaderRole, limits: SqlLimits,
          upstream: str | None) -> pa.Table:
    con.execute("BEGIN READ ONLY")
    try:
        row = con.execute(BEGIN, [f"{limits.timeout_ms}ms"]).fetchone()
        if row is not None and row[1] and not role.as_owner:
            raise UserSqlError(f"SQL refused: the reader role {role.name!r} may read server "
                               "files or signal sessions; give it SELECT rights only "
                               "(docs/postgresql.md)")
        if upstream is not None:
            con.execute(upstream_schema.POSTGRES_SEARCH_PATH, [upstream])
        con.execute(DECLARE.encode() + text.encode(), prepare=True)
        table = rows_table(con.execute(f"FETCH FORWARD {limits.max_rows + 1} FROM {CURSOR}"))
    finally:
        with suppress(psycopg.Error):
            con.execute("ROLLBACK")
    if table.num_rows > limits.max_rows:
        raise too_many_rows(limits)
    return table


def _refusal(exc: psycopg.Error, text: str) -> UserSqlError:
    """The one-line message for a statement the server refused."""
    message = _first(exc)
    if "cannot insert multiple commands" in message:
        return not_one_read("more than one statement")
    position = exc.diag.statement_position
    if isinstance(exc, psycopg.errors.SyntaxError) and position is not None \
            and int(position) > len(DECLARE) \
            and only_comments(text[:int(position) - len(DECLARE) - 1]):
        return not_one_read(f"a statement that is not a query ({message})")
    return failed(exc)


COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def only_comments(text: str) -> bool:
    """Is ``text`` nothing but whitespace and SQL comments? (The upstream documents'
    statements start with ``-- name:`` lines.)"""
    return not COMMENTS.sub("", text).strip()


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- the role, made by `setup` -------------------------------------------------------------
def ensure_reader_role(con: Con, role: ReaderRole) -> list[str]:
    """Create the reader role if missing and grant it SELECT on this database's tables (now
    and later); returns what was changed. Refuses a role that could do more than read."""
    changes: list[str] = []
    name = sql.Identifier(role.name)
    found = con.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication "
                        "OR rolbypassrls FROM pg_roles WHERE rolname = %s",
                        [role.name]).fetchall()
    if found and found[0][0]:
        raise ConfigError(f"postgres_reader_role: {role.name!r} is a role with more than "
                          "read rights; choose another name (docs/postgresql.md)")
    if not found:
        con.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                            "NOINHERIT NOREPLICATION NOBYPASSRLS").format(name))
        changes.append(f"created role {role.name} (SQL reader, SELECT only)")
    if role.password:
        con.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            name, sql.Literal(role.password)))
    schema_name, database_name = con.execute(
        "SELECT current_schema(), current_database()").fetchall()[0]
    schema, database = sql.Identifier(str(schema_name)), sql.Identifier(str(database_name))
    for statement in ("GRANT CONNECT ON DATABASE {db} TO {role}",
                      "GRANT USAGE ON SCHEMA {schema} TO {role}",
                      "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
                      "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES "
                      "TO {role}"):
        con.execute(sql.SQL(statement).format(db=database, schema=schema, role=name))
    changes += _grant_upstream(con, role, str(schema_name))
    return changes


def _grant_upstream(con: Con, role: ReaderRole, store_schema: str) -> list[str]:
    """SELECT on the upstream schema's views (now and later), and that schema first in the
    role's ``search_path`` in this database, so Grafana's own connections see them too."""
    upstream = upstream_schema.name_for(store_schema)
    if not con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [upstream]).fetchall():
        return []
    name, up = sql.Identifier(role.name), sql.Identifier(upstream)
    for statement in ("GRANT USAGE ON SCHEMA {up} TO {role}",
                      "GRANT SELECT ON ALL TABLES IN SCHEMA {up} TO {role}",
                      "ALTER DEFAULT PRIVILEGES IN SCHEMA {up} GRANT SELECT ON TABLES "
                      "TO {role}",
                      "ALTER ROLE {role} IN DATABASE {db} SET search_path = {up}, {schema}"):
        con.execute(sql.SQL(statement).format(
            up=up, role=name, schema=sql.Identifier(store_schema),
            db=sql.Identifier(str(con.execute("SELECT current_database()").fetchall()[0][0]))))
    return []
