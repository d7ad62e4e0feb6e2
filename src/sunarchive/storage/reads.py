"""The read layer of the tiered store: newest rows, and tier reads that add the open buckets
to the materialized ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import (
    TIER_SOURCE,
    tier_floor,
    tier_next,
)
from sunarchive.storage.engine import tier_columns
from sunarchive.storage.retention import Retention

LATEST_PROBE_S = 15
"""Seconds before the newest data where ``latest_rows`` looks first."""


class Reads(Retention):
    """Reads of the tiers: the newest rows, and any tier over a range as the materialized
    buckets plus those not yet materialized, computed from the tier below."""

    # -- reading -----------------------------------------------------------------------------
    def last_time_s(self, measurement: str) -> int | None:
        table = self.q(self.profiles[measurement].table("1s"))
        result = self._read_arrow(f"SELECT {self.dialect.epoch('MAX(time)')} AS t FROM {table}")
        value = result.column(0)[0].as_py() if result.num_rows else None
        return None if value is None else int(value)

    def last_times_by_series(self, measurement: str, since_s: int) -> dict[int, int]:
        table = self.q(self.profiles[measurement].table("1s"))
        rows = self._fetch(f"SELECT series_id, {self.dialect.epoch('MAX(time)')} FROM {table} "
                           f"WHERE time >= {self.ts(since_s)} GROUP BY series_id")
        return {int(sid): int(t) for sid, t in rows}

    def latest_rows(self, measurement: str, window_s: int = 600) -> pa.Table:
        """The newest 1 s row of each series that has one in the last ``window_s`` seconds
        of the measurement's data: first only the last :data:`LATEST_PROBE_S` seconds (a
        series with a row there has its newest there); the whole window only when some
        registered series of the measurement has no row in the probe."""
        last = self.last_time_s(measurement)
        if last is None:
            return self._newest_since(measurement, None)
        found = self._newest_since(measurement, last - min(window_s, LATEST_PROBE_S))
        if window_s > LATEST_PROBE_S and found.num_rows < self._series_count(measurement):
            found = self._newest_since(measurement, last - window_s)
        return found

    def _series_count(self, measurement: str) -> int:
        counted = self._read_arrow("SELECT COUNT(*) AS n FROM sunarchive_series WHERE "
                                   f"measurement = {self._p}", [measurement])
        return int(counted.column(0)[0].as_py())

    def _newest_since(self, measurement: str, since_s: int | None) -> pa.Table:
        """The newest 1 s row of each series with one since ``since_s`` (UTC epoch s; None:
        no rows), picked in numpy: one range scan, no self-join."""
        profile = self.profiles[measurement]
        cols = ["time", *profile.tag_column_names, *(c.name for c in profile.stats_columns())]
        table = self.q(profile.table("1s"))
        since = "false" if since_s is None else f"time >= {self.ts(since_s)}"
        rows = self._read_arrow(f"SELECT series_id, {', '.join(self.q(c) for c in cols)} "
                                f"FROM {table} WHERE {since}")
        if not rows.num_rows:
            return rows.select(cols)
        series = rows.column("series_id").to_numpy()
        stamps = rows.column("time").to_numpy().astype("int64")
        order = np.lexsort((-stamps, series))
        _, first = np.unique(series[order], return_index=True)
        return rows.take(order[first]).select(cols)

    def tier_relation(self, profile: Profile, tier: str, lo: int, hi: int,
                      data_end: int | None = None) -> str:
        """SQL for buckets of ``tier`` starting in [lo, hi): materialized + real-time part.

        ``data_end`` (UTC epoch s; the second after the newest 1 s row) lets the real-time
        part be skipped where no data can be: a range that runs past the newest data (the
        dashboard's "today") then costs no aggregation over empty ranges."""
        table = self.q(profile.table(tier))
        cols = ", ".join(self.q(c) for c, _ in tier_columns(profile, tier))
        if tier == "1s":
            return (f"(SELECT {cols} FROM {table} WHERE time >= {self.ts(lo)} "
                    f"AND time < {self.ts(hi)})")
        table, horizon = self._materialized(profile, tier)
        done = lo if horizon is None else max(lo, min(horizon, hi))
        parts = []
        if horizon is not None and done > lo:
            parts.append(f"SELECT {cols} FROM {table} WHERE time >= {self.ts(lo)} "
                         f"AND time < {self.ts(done)}")
        live_hi = hi if data_end is None else min(hi, data_end)
        if done < live_hi:
            start = tier_floor(tier, done, self.tz)
            end = tier_next(tier, tier_floor(tier, hi - 1, self.tz), self.tz)
            source = self.tier_relation(profile, TIER_SOURCE[tier], start, end, data_end)
            live = self._rollup_select(profile, tier, start, end, source)
            parts.append(f"SELECT {cols} FROM ({live}) AS live WHERE time >= {self.ts(done)} "
                         f"AND time < {self.ts(hi)}")
        if not parts:
            return f"(SELECT {cols} FROM {table} WHERE false)"
        return "(" + " UNION ALL ".join(parts) + ")"

    def _materialized(self, profile: Profile, tier: str) -> tuple[str, int | None]:
        """The table holding ``tier``'s complete buckets, and the end of what it holds (UTC
        epoch s; None: nothing yet)."""
        return self.q(self.stored_table(profile, tier)), self._horizons.get((profile.name, tier))

    def query_tier(self, measurement: str, tier: str, start_s: int, end_s: int,
                   where: dict[str, str], columns: list[str] | None) -> pa.Table:
        profile = self.profiles[measurement]
        if columns:   # none or an empty list: every column, as before
            profile = profile.narrowed_to(columns)   # the open buckets' SQL merges only those
        newest = self.last_time_s(measurement) if tier != "1s" else start_s
        relation = self.tier_relation(profile, tier, start_s, end_s,
                                      start_s if newest is None else newest + 1)
        cols = ["time", *profile.tag_column_names, *(columns or [c.name for c in
                                                     profile.stats_columns()])]
        if tier == "daily":
            cols.insert(1, "day")
        conditions = " AND ".join(f"{self.q(profile.tag_column(k))} = {self._p}"
                                  for k in where) or "true"
        if tier == "1s" and where:
            conditions += self._series_condition(measurement, where)
        select = ", ".join(self.q(c) for c in cols)
        sql = f"SELECT {select} FROM {relation} AS tier WHERE {conditions}"
        return self._read_sorted(sql, ["time", *profile.tag_column_names],
                                 list(where.values()) or None)

    def _series_condition(self, measurement: str, where: dict[str, str]) -> str:
        """The series a tag filter selects, as a condition on ``series_id``: the 1 s tier is
        indexed by series (TimescaleDB: ``(series_id, time DESC)``), not by tag values."""
        found = self._read_arrow("SELECT series_id, tags FROM sunarchive_series WHERE "
                                 f"measurement = {self._p}", [measurement]).to_pylist()
        ids = [int(r["series_id"]) for r in found
               if all(json.loads(r["tags"]).get(k) == v for k, v in where.items())]
        # rows written without registering their series (no writer of sunarchive does that)
        # are still found by the tag condition alone
        return f" AND series_id IN ({', '.join(map(str, ids))})" if ids else ""

    def _read_sorted(self, sql: str, keys: list[str],
                     params: Sequence[Any] | None) -> pa.Table:
        """Rows of ``sql`` ordered by ``keys`` (ascending, text by code point)."""
        order = ", ".join(self.q(k) for k in keys)
        return self._read_arrow(f"{sql} ORDER BY {order}", params)


