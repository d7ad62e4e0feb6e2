"""The storage contract every engine implements, and helpers shared by engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from sunarchive.model import Event, SeriesKey, StatsRows
from sunarchive.profiles.spec import Profile

ARROW_TYPES = {"DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
               "BOOLEAN": pa.bool_()}


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

    def setup(self) -> list[str]:
        """Create or upgrade the schema (idempotent); return what was changed."""

    def load_series(self) -> dict[SeriesKey, int]:
        """All known series and their ids."""

    def add_series(self, key: SeriesKey, series_id: int) -> None:
        """Persist a new series id."""

    def write(self, fresh: StatsRows, merge: StatsRows,
              tags: dict[int, tuple[str, ...]]) -> None:
        """Append ``fresh`` rows and merge ``merge`` rows into the 1 s tier, in one commit."""

    def rollup(self, measurement: str, complete_until_s: int | None) -> int:
        """Materialize rollup buckets complete before ``complete_until_s`` and dirty ones."""

    def write_events(self, events: list[Event]) -> None:
        """Record events."""

    def apply_retention(self, now: datetime) -> dict[str, int]:
        """Delete rows older than each tier's retention; return rows deleted per table."""

    def last_time_s(self, measurement: str) -> int | None:
        """Newest stored 1 s bucket of a measurement (UTC epoch s) or None."""

    def query_tier(self, measurement: str, tier: str, start_s: int, end_s: int,
                   where: dict[str, str], columns: list[str] | None) -> pa.Table:
        """Rows of one tier in [start, end), materialized plus real-time buckets."""

    def sql(self, text: str) -> QueryResult:
        """Run read-only SQL."""

    def status(self) -> dict[str, Any]:
        """Engine, size and per-table figures."""

    def close(self) -> None:
        """Checkpoint and release the store."""


def rows_to_arrow(profile: Profile, rows: StatsRows,
                  tags: dict[int, tuple[str, ...]]) -> pa.Table:
    """Arrow table with the 1 s tier's columns: time (UTC, naive), series_id, tags, stats."""
    time = pa.array(rows.time_s.astype("datetime64[s]").astype("datetime64[us]"),
                    pa.timestamp("us"))
    arrays: dict[str, pa.Array[Any]] = {"time": time, "series_id": pa.array(rows.series_id,
                                                                        pa.int32())}
    ids = rows.series_id
    unique_ids, inverse = np.unique(ids, return_inverse=True)
    for pos, tag in enumerate(profile.tags):
        values = np.array([tags[int(i)][pos] for i in unique_ids], dtype=object)
        arrays[tag] = pa.array(values[inverse] if len(ids) else [], pa.string())
    for col in profile.stats_columns():
        data = rows.columns.get(col.name)
        if data is None:
            data = np.full(len(rows), np.nan)
        arrays[col.name] = _typed(np.asarray(data, np.float64), col.sql_type)
    return pa.table(arrays)


def _typed(values: np.ndarray[Any, np.dtype[np.float64]], sql_type: str) -> pa.Array[Any]:
    missing = np.isnan(values)
    if sql_type == "DOUBLE":
        return pa.array(values, pa.float64(), mask=missing)
    if sql_type == "BOOLEAN":
        return pa.array(np.nan_to_num(values) != 0, pa.bool_(), mask=missing)
    target = ARROW_TYPES[sql_type]
    return pa.array(np.nan_to_num(values).astype(np.int64), target, mask=missing)
