"""User SQL on DuckDB, where it cannot write, read files, reach the network or change settings.

* Exactly one statement, and DuckDB's own parser must call it a ``SELECT`` (that includes
  ``VALUES``, ``TABLE t``, ``FROM t``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``); what runs is the
  parsed statement, not the text again.
* It runs in a ``READ ONLY`` transaction on its own connection (a cursor), so the writer's
  connection and its open transaction are never touched.
* The table functions it calls, named or reached through views, must be reads
  (:mod:`~sunarchive.storage.duckdb.read_functions`): ``checkpoint()`` is a SELECT that
  writes even in a read-only transaction.
* The database is opened with ``enable_external_access = false`` (no files, no network, no
  extensions) and its configuration is locked once the store has set it up
  (:func:`lock_down`): no statement can change a setting afterwards.
* Names resolve in the upstream schema first (:mod:`sunarchive.storage.upstream_schema`):
  ``ps100_readings_1s`` is the view with the PS100 document's columns there.
* A timer interrupts the statement after ``sql_timeout_s``; at most ``sql_max_rows`` rows
  are read (one more tells that the result is larger, which is refused).
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sunarchive.storage import upstream_schema
from sunarchive.storage.duckdb.read_functions import check_parsed, check_plan
from sunarchive.storage.user_sql import (
    SqlLimits,
    check_text,
    failed,
    not_one_read,
    timed_out,
    too_many_rows,
)

CLOSED_CONFIG: dict[str, Any] = {"enable_external_access": False}
"""Connection config of every DuckDB store: file system, network and extension loading off
(it can be switched off at run time, never back on)."""


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Lock the database's configuration (after the store's own ``SET`` statements). A
    file this process has open already (a second reader of it: DuckDB keeps one database
    per file and process) is locked already, and setting the lock again is refused."""
    locked = con.execute("SELECT current_setting('lock_configuration')").fetchone()
    if not (locked and locked[0]):
        con.execute("SET lock_configuration = true")


def one_select(text: str) -> duckdb.Statement:
    """The one statement of ``text``, if DuckDB's parser calls it a SELECT."""
    check_text(text)
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise failed(exc) from None
    if not statements:
        raise not_one_read("none (only comments)")
    if len(statements) != 1:
        raise not_one_read(f"{len(statements)} statements")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise not_one_read(f"a {kind.name} statement")
    return statements[0]


def run(con: duckdb.DuckDBPyConnection, text: str, limits: SqlLimits) -> pa.Table:
    """Rows of the user statement ``text`` on a new cursor of ``con``."""
    statement = one_select(text)
    cur = con.cursor()
    expired = threading.Event()

    def interrupt() -> None:
        expired.set()
        cur.interrupt()

    timer = threading.Timer(limits.timeout_s, interrupt)
    timer.daemon = True
    try:
        use_upstream_schema(cur)
        cur.execute("BEGIN TRANSACTION READ ONLY")
        timer.start()
        check_parsed(cur, statement.query)
        check_plan(cur, statement.query)
        table: pa.Table = cur.sql(statement).limit(limits.max_rows + 1).to_arrow_table()
    except duckdb.Error as exc:
        raise (timed_out(limits) if expired.is_set() else failed(exc)) from None
    finally:
        timer.cancel()
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        cur.close()
    if table.num_rows > limits.max_rows:
        raise too_many_rows(limits)
    return infinities_as_text(intervals_as_durations(table))


def use_upstream_schema(cur: duckdb.DuckDBPyConnection) -> None:
    """Names resolve in the upstream schema first, if the store has one
    (:mod:`sunarchive.storage.upstream_schema`); a setting of this cursor only."""
    found = cur.execute("SELECT 1 FROM duckdb_schemas() WHERE schema_name = ? AND "
                        "database_name = current_database()", [upstream_schema.DEFAULT])
    if found.fetchone():
        cur.execute(f"SET search_path = '{upstream_schema.DEFAULT},main'")


MONTH_US = 30 * 86_400 * 1_000_000
"""A month of an interval as psycopg reads PostgreSQL's: 30 days."""


def intervals_as_durations(table: pa.Table) -> pa.Table:
    """DuckDB's ``INTERVAL`` columns (Arrow month-day-nano) as Arrow durations, as the
    PostgreSQL engine gives them (``MAX(time) - MIN(time)``): a month counts 30 days, as
    psycopg reads PostgreSQL's intervals; the API writes them as seconds."""
    for i, kind in enumerate(table.schema.types):
        if kind != pa.month_day_nano_interval():
            continue
        values = [None if v is None else v.months * MONTH_US + v.days * 86_400_000_000
                  + v.nanoseconds // 1000 for v in table.column(i).to_pylist()]
        table = table.set_column(i, table.schema.names[i],
                                 pa.array(values, pa.int64()).cast(pa.duration("us")))
    return table


def infinities_as_text(table: pa.Table) -> pa.Table:
    """A time or date column holding DuckDB's ``infinity`` or ``-infinity`` (values beyond
    any date Python can hold) as text: those words, the other values in ISO 8601, as the
    PostgreSQL engine gives them (:func:`sunarchive.storage.postgres.rows.load_infinities`).
    Other columns are left as they are."""
    for i, kind in enumerate(table.schema.types):
        if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
            continue
        column = table.column(i)
        raw = column.cast(pa.int64() if pa.types.is_timestamp(kind) else pa.int32())
        lo, hi = _python_range(kind)
        bounds = pc.min_max(raw)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or (low >= lo and high <= hi):
            continue
        words = [None if r is None else "infinity" if r > hi else "-infinity" if r < lo
                 else _iso(kind, r) for r in raw.to_pylist()]
        table = table.set_column(i, table.schema.names[i], pa.array(words, pa.string()))
    return table


def _python_range(kind: pa.DataType) -> tuple[int, int]:
    """The raw values (µs, ns ... or days since 1970) Python's dates can hold for ``kind``."""
    if pa.types.is_date(kind):
        return (date.min - EPOCH_DAY).days, (date.max - EPOCH_DAY).days
    assert isinstance(kind, pa.TimestampType)
    per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
    return MIN_PYTHON_S * per_s, MAX_PYTHON_S * per_s


def _iso(kind: pa.DataType, raw: int) -> str:
    value = pa.scalar(raw, pa.int64() if pa.types.is_timestamp(kind) else pa.int32()).cast(kind)
    return str(value.as_py().isoformat())


EPOCH_DAY = date(1970, 1, 1)
MIN_PYTHON_S = int((datetime.min.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
                   .total_seconds())
MAX_PYTHON_S = int((datetime.max.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
                   .total_seconds())
