"""The storage contract every engine implements, and helpers shared by engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sunarchive.model import Event, SeriesKey, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.resolution import ValueGrid

ARROW_TYPES: dict[str, pa.DataType] = {
    "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BIGINT": pa.int64(), "BOOLEAN": pa.bool_()}


@dataclass
class QueryResult:
    """Rows of a read: column names and an Arrow table (times are UTC, timezone-aware)."""

    table: pa.Table
    tier: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def rows(self) -> list[tuple[Any, ...]]:
        data = self.table.to_pydict()
        return list(zip(*(data[c] for c in self.columns), strict=True))


class Store(Protocol):
    """What the writer and the readers need from an engine."""

    profiles: dict[str, Profile]
    value_grid: ValueGrid
    """The grid the statistics are rounded to before they are stored (decimal or binary,
    :mod:`sunarchive.resolution`)."""

    def setup(self) -> list[str]:
        """Create or upgrade the schema (idempotent); return what was changed."""

    def load_series(self) -> dict[SeriesKey, int]:
        """All known series and their ids."""

    def add_series(self, key: SeriesKey, series_id: int) -> None:
        """Persist a new series id."""

    def save_series(self, series: list[tuple[SeriesKey, int]]) -> None:
        """Persist new series ids in one transaction (idempotent)."""

    def write(self, fresh: StatsRows, merge: StatsRows, tags: dict[int, tuple[str, ...]],
              batch_id: int | None = None) -> bool:
        """Append ``fresh`` rows and merge ``merge`` rows into the 1 s tier, in one commit.

        With ``batch_id`` a batch at or below the last one committed is skipped (False).
        Merge rows whose column ``REPLAY_COLUMN`` is 1 re-deliver seconds an earlier run
        stored: their statistics merge, their energy is not added (README, invariant 9).
        """

    def last_batch(self, measurement: str) -> int:
        """Id of the last batch committed for ``measurement`` (0 for none)."""

    def rollup(self, measurement: str, complete_until_s: int | None) -> int:
        """Materialize rollup buckets complete before ``complete_until_s`` and dirty ones."""

    def write_events(self, events: list[Event]) -> None:
        """Record events."""

    def apply_retention(self, now: datetime) -> dict[str, int]:
        """Delete rows older than each tier's retention; return rows deleted per table."""

    def last_time_s(self, measurement: str) -> int | None:
        """Newest stored 1 s bucket of a measurement (UTC epoch s) or None."""

    def last_times_by_series(self, measurement: str, since_s: int) -> dict[int, int]:
        """Newest stored 1 s bucket (UTC epoch s) per series id, of the series that have
        rows at or after ``since_s``."""

    def query_tier(self, measurement: str, tier: str, start_s: int, end_s: int,
                   where: dict[str, str], columns: list[str] | None) -> pa.Table:
        """Rows of one tier in [start, end), materialized plus real-time buckets."""

    def sql(self, text: str) -> QueryResult:
        """Run the program's own read-only SQL (user text goes through :meth:`read_sql`)."""

    def read_sql(self, text: str) -> QueryResult:
        """Run one user statement where it cannot write, read files or change settings."""

    def status(self) -> dict[str, Any]:
        """Engine, size and per-table figures."""

    def close(self) -> None:
        """Checkpoint and release the store."""


REPLAY_COLUMN = "_replay"
"""Marker column of merge rows (1.0) that re-deliver seconds an earlier run stored."""


def rows_to_arrow(profile: Profile, rows: StatsRows,
                  tags: dict[int, tuple[str, ...]]) -> pa.Table:
    """Arrow table with the 1 s tier's columns: time (UTC, naive), series_id, tags, stats.

    A tag a point lacks is ``""`` — NULL in a profile inferred from line protocol, where
    tags come and go as in InfluxDB (a tag key added later is NULL in the older rows too).

    Columns are built from numpy buffers directly: ``pa.array`` would import pandas (~40 MB
    resident) into the collector on its first write.
    """
    n = len(rows)
    arrays: dict[str, pa.Array[Any]] = {
        "time": _from_numpy(pa.timestamp("us"), rows.time_s.astype(np.int64) * 1_000_000),
        "series_id": _from_numpy(pa.int32(), rows.series_id.astype(np.int32)),
    }
    unique_ids, inverse = np.unique(rows.series_id, return_inverse=True)
    positions = _from_numpy(pa.int32(), inverse.astype(np.int32))
    absent_is_null = profile.extra.get("inferred") is True
    for pos, column in enumerate(profile.tag_column_names):
        # a series from before its profile grew this tag key has fewer values: empty
        names = _strings([_tag_value(tags[int(i)], pos) for i in unique_ids], absent_is_null)
        arrays[column] = pc.take(names, positions) if n else _strings([])
    for col in profile.stats_columns():
        data = rows.columns.get(col.name)
        values = np.full(n, np.nan) if data is None else np.asarray(data, np.float64)
        arrays[col.name] = _typed(values, col.sql_type)
    return pa.table(arrays)


def _tag_value(values: tuple[str, ...], position: int) -> str:
    return values[position] if position < len(values) else ""


def _from_numpy(arrow_type: pa.DataType, values: np.ndarray[Any, Any],
                valid: np.ndarray[Any, np.dtype[np.bool_]] | None = None) -> pa.Array[Any]:
    bitmap = None
    if valid is not None and not bool(valid.all()):
        bitmap = _buffer(np.packbits(valid, bitorder="little"))
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, _buffer(data)])


def _buffer(values: np.ndarray[Any, Any]) -> pa.Buffer:
    """Zero-copy Arrow buffer over a contiguous numpy array."""
    return pa.py_buffer(values.data)


def _strings(items: list[str], empty_is_null: bool = False) -> pa.Array[Any]:
    """A string array of ``items``; with ``empty_is_null``, ``""`` becomes NULL."""
    encoded = [item.encode("utf-8") for item in items]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    valid = None
    if empty_is_null and not all(encoded):
        valid = _buffer(np.packbits(np.array([bool(e) for e in encoded]), bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [valid, _buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _typed(values: np.ndarray[Any, np.dtype[np.float64]], sql_type: str) -> pa.Array[Any]:
    valid = ~np.isnan(values)
    if sql_type == "DOUBLE":
        return _from_numpy(pa.float64(), values, valid)
    if sql_type == "BOOLEAN":
        bits = np.packbits(np.nan_to_num(values) != 0, bitorder="little")
        bitmap = None if valid.all() else _buffer(np.packbits(valid, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [bitmap, _buffer(bits)])
    dtype = np.int32 if sql_type == "INTEGER" else np.int64
    return _from_numpy(ARROW_TYPES[sql_type], np.nan_to_num(values).astype(dtype), valid)
