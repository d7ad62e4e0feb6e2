"""The reducer's output: ``ReduceResult`` (fresh rows, merge rows, events, counts) and the
row helpers (select, concatenate, fresh/merge split)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sunarchive.model import Event, IntArray, StatsRows
from sunarchive.reducer.carry import BoolArray


@dataclass
class ReduceResult:
    """Rows produced by one close: ``fresh`` rows are new, ``merge`` rows update stored rows."""

    fresh: StatsRows
    merge: StatsRows
    events: list[Event] = field(default_factory=list)
    too_late_samples: int = 0
    duplicates: int = 0
    """Exact duplicate points merged into the earlier ones or dropped (see ``add``)."""


def split_rows(rows: StatsRows, prev_until: IntArray) -> tuple[StatsRows, StatsRows]:
    """(fresh rows, merge rows): a row is merged when its series had closed its second."""
    old = rows.time_s < prev_until[rows.series_id]
    return select_rows(rows, ~old), select_rows(rows, old)


def select_rows(rows: StatsRows, mask: BoolArray | npt.NDArray[np.intp]) -> StatsRows:
    """Rows picked by a boolean mask or index array."""
    return StatsRows(rows.measurement, rows.time_s[mask], rows.series_id[mask],
                     {k: v[mask] for k, v in rows.columns.items()})


def concat_rows(parts: list[StatsRows]) -> StatsRows:
    """Concatenate rows of one measurement (columns missing in a part become NaN)."""
    measurement = parts[0].measurement if parts else ""
    parts = [p for p in parts if len(p)]
    if not parts:
        return StatsRows.empty(measurement)
    if len(parts) == 1:
        return parts[0]
    names = sorted({k for p in parts for k in p.columns})
    cols = {n: np.concatenate([p.columns.get(n, np.full(len(p), np.nan)).astype(np.float64)
                               for p in parts]) for n in names}
    return StatsRows(parts[0].measurement, np.concatenate([p.time_s for p in parts]),
                     np.concatenate([p.series_id for p in parts]), cols)
