"""Which DuckDB table functions user SQL may call: only those that read.

A table function is a ``SELECT`` to DuckDB's parser, and a ``READ ONLY`` transaction does not
stop all of them: ``SELECT * FROM checkpoint()`` wrote the WAL into the file. DuckDB marks no
table function as having side effects, a second read-only connection to the same file is
impossible in-process (another configuration of an open file, or ``ATTACH … (READ_ONLY)``:
"unique file handle conflict"), and no setting turns single functions off. So user SQL may
call a table function only if it is one of :data:`READ_FUNCTIONS` (value generators and the
catalog), checked twice:

* :func:`check_parsed` — before anything is bound, every table function the statement names
  (DuckDB's own parse tree, ``json_serialize_sql``), in subqueries and laterals too;
* :func:`check_plan` — after binding, every table-function scan in the physical plan
  (``EXPLAIN (FORMAT json)``), which also shows what views and macros call.

Everything not on the list is refused, including functions a later DuckDB adds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb

from sunarchive.storage.user_sql import UserSqlError

GENERATORS = frozenset({"range", "generate_series", "unnest", "repeat", "repeat_row",
                        "json_each", "json_tree", "seq_scan"})
"""Table functions that produce values or scan the store's own tables."""

CATALOG = frozenset({
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies",
    "duckdb_functions", "duckdb_indexes", "duckdb_keywords", "duckdb_schemas",
    "duckdb_sequences", "duckdb_settings", "duckdb_tables", "duckdb_types", "duckdb_views",
    "pragma_table_info", "pragma_show", "pragma_version", "pragma_platform",
    "pragma_database_size", "pragma_collations", "pg_timezone_names", "icu_calendar_names"})
"""Table functions that describe the catalog (``information_schema``, ``pg_catalog``,
``SHOW``, ``DESCRIBE`` and Grafana's schema browser use them)."""

READ_FUNCTIONS = GENERATORS | CATALOG

_table_functions: frozenset[str] | None = None


def check_parsed(cur: duckdb.DuckDBPyConnection, text: str) -> None:
    """Refuse ``text`` (one SELECT) if it names a table function that is not a read."""
    row = cur.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise UserSqlError("SQL refused: DuckDB cannot show which functions the statement "
                           f"calls ({tree.get('error_message', 'no parse tree')})")
    for name in _named_functions(tree):
        _allow(name)


def check_plan(cur: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse ``query`` if its physical plan scans a table function that is not a read."""
    statements = duckdb.extract_statements(f"EXPLAIN (FORMAT json) {query}")
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.EXPLAIN:
        raise UserSqlError("SQL refused: DuckDB cannot show the statement's plan")
    known = _known_table_functions(cur)
    for _, plan in cur.execute(statements[0]).fetchall():
        for node in _nodes(json.loads(plan)):
            called = {str(node.get("name", "")).upper(),
                      str(node.get("extra_info", {}).get("Function", "")).upper()}
            for name in called & known:
                _allow(name)


def _allow(name: str) -> None:
    if name.lower() not in READ_FUNCTIONS:
        raise UserSqlError(f"SQL refused: table function {name.lower()}() is not a read; "
                           "user SQL may call generators (range, generate_series, unnest, "
                           "…) and catalog functions (duckdb_tables, pragma_table_info, …)")


def _named_functions(tree: Any) -> Iterator[str]:
    """Names of every ``TABLE_FUNCTION`` reference in a parse tree, at any depth."""
    if isinstance(tree, dict):
        if tree.get("type") == "TABLE_FUNCTION":
            function = tree.get("function")
            name = function.get("function_name") if isinstance(function, dict) else None
            yield name if isinstance(name, str) else "(unnamed)"
        for value in tree.values():
            yield from _named_functions(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _named_functions(value)


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every operator of an ``EXPLAIN (FORMAT json)`` plan."""
    for node in plan if isinstance(plan, list) else [plan]:
        if isinstance(node, dict):
            yield node
            yield from _nodes(node.get("children", []))


def _known_table_functions(cur: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every table function DuckDB has, upper case (they are fixed for the process: no
    extension can be loaded)."""
    global _table_functions
    if _table_functions is None:
        rows = cur.execute("SELECT DISTINCT upper(function_name) FROM duckdb_functions() "
                           "WHERE function_type IN ('table', 'table_macro')").fetchall()
        _table_functions = frozenset(str(r[0]) for r in rows)
    return _table_functions
