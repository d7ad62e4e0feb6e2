"""Rows of a psycopg cursor as an Arrow table, as the DuckDB engine gives them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader

INFINITIES = (b"infinity", b"-infinity")


def _keeping_infinity(base: type[Any]) -> type[Any]:
    """A text loader of ``base`` that gives PostgreSQL's ``infinity`` and ``-infinity`` as
    those words (Python's dates cannot hold them; psycopg refuses them) and other values as
    ``base`` does: a column holding one comes out as text (:func:`column_array`), as psql
    shows it."""

    class Loader(base):  # type: ignore[misc]
        def load(self, data: Any) -> Any:
            if bytes(data) in INFINITIES:
                return bytes(data).decode()
            return super().load(data)

    Loader.__name__ = f"Infinite{base.__name__}"
    return Loader


def load_infinities(con: psycopg.Connection[Any]) -> None:
    """Read ``timestamptz``, ``timestamp`` and ``date`` values of ±infinity on ``con`` as text
    instead of failing ("timestamp too small"; TimescaleDB's ``job_stats`` has them)."""
    for name, base in (("timestamptz", TimestamptzLoader), ("timestamp", TimestampLoader),
                       ("date", DateLoader)):
        con.adapters.register_loader(name, _keeping_infinity(base))


def rows_table(cur: psycopg.Cursor[tuple[Any, ...]]) -> pa.Table:
    """Arrow table of a cursor's rows; times become naive UTC like the DuckDB engine's; a
    repeated column name gets ``_`` appended."""
    if cur.description is None:
        return pa.table({})
    names = [d.name for d in cur.description]
    rows = cur.fetchall()
    columns: dict[str, Any] = {}
    for i, name in enumerate(names):
        array = column_array([r[i] for r in rows])
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = array.cast(pa.timestamp("us", "UTC")).cast(pa.timestamp("us"))
        key = name
        while key in columns:
            key += "_"
        columns[key] = array
    return pa.table(columns)


def column_array(values: list[Any]) -> pa.Array[Any]:
    """One column's values as Arrow. ``numeric`` values Arrow's decimals cannot hold (NaN,
    Infinity, more than 76 digits) make the column float64; other values Arrow cannot type
    become text."""
    try:
        array: pa.Array[Any] = pa.array(values)
        return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    if all(v is None or isinstance(v, Decimal) for v in values):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else v.isoformat() if isinstance(v, date)
                     else str(v) for v in values], pa.string())
