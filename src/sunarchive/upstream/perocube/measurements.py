"""Lab measurements of a set of registry devices: the reads behind the ``device_id``,
``experiment_id``, ``project_id`` and ``scientist_id`` filters of ``/measurements/{kind}``
and ``/statistics/{kind}``.

A measurement row belongs to device ``n`` when its ``device_id`` tag is ``n`` written as
decimal text (``"7"``). Each device is read as its own series filter (the 1 s tier is
indexed by series), and the rows are merged by time and tags, as one read of them all would
give them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import pyarrow as pa

from sunarchive.query import choose_tier, run_query
from sunarchive.storage.base import QueryResult
from sunarchive.storage.open import SqlStore

DEVICE_TAG = "device_id"


def read_devices(store: SqlStore, measurement: str, tier: str, start: datetime,
                 end: datetime, tags: dict[str, str], devices: Iterable[int] | None,
                 max_points: int) -> QueryResult:
    """Rows of ``measurement`` in [start, end) whose ``device_id`` tag is one of
    ``devices`` (None: every row) and whose tags match ``tags``; ``tier`` as
    :func:`~sunarchive.query.run_query` takes it."""
    if devices is None:
        return run_query(store, measurement, tier, start, end, tags, None, max_points)
    chosen = choose_tier(start, end, max_points) if tier == "auto" else tier
    wanted = [str(d) for d in sorted(set(devices))
              if tags.get(DEVICE_TAG) in (None, str(d))]
    parts = [run_query(store, measurement, chosen, start, end, {**tags, DEVICE_TAG: d}, None,
                       max_points).table for d in wanted]
    if not parts:   # no device selected: no rows, with the columns of the tier
        window = min(end, start + timedelta(seconds=1))
        parts = [run_query(store, measurement, chosen, start, window, tags, None,
                           max_points).table.slice(0, 0)]
    table = pa.concat_tables(parts)
    tag_columns = store.profiles[measurement].tag_column_names
    order: list[tuple[str, Literal["ascending", "descending"]]] = [
        (c, "ascending") for c in ("time", *tag_columns)]
    return QueryResult(table.sort_by(order), tier=chosen)
