"""The embedded DuckDB engine: one file, one writer connection, readers on cursors.

Instants are stored as UTC ``TIMESTAMP`` (bucketing a ``TIMESTAMPTZ`` is many times slower);
the session time zone is UTC so ``NOW()`` comparisons in user SQL behave. Local-day buckets of
the daily tier come from an explicit table of day boundaries computed with the zone database.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa

from sunarchive.model import ConfigError, Event, SeriesKey, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import (
    ALL_TIERS,
    DAY_TABLE,
    DUCKDB,
    ROLLUP_TIERS,
    TIER_SECONDS,
    TIER_SOURCE,
    coalesce_ranges,
    local_days,
    merge_select,
    tier_floor,
    tier_next,
)
from sunarchive.storage.base import QueryResult, rows_to_arrow
from sunarchive.storage.duckdb.schema import create_schema, table_columns
from sunarchive.storage.duckdb.sizes import table_bytes

Q = DUCKDB.quote
PROTECT_ALL = 0  # 1970: a tier whose consumer has never run keeps every row


class StoreLockedError(ConfigError):
    """Another process holds the DuckDB file for writing."""


def _ts(seconds: int) -> str:
    return f"TIMESTAMP '{datetime.fromtimestamp(seconds, UTC).strftime('%Y-%m-%d %H:%M:%S')}'"


class DuckDBStore:
    """Store on one DuckDB file. Methods other than readers run on the writer thread."""

    engine = "duckdb"

    def __init__(self, path: Path, profiles: dict[str, Profile], timezone: str = "UTC",
                 memory_limit_mb: int = 256, threads: int = 2, read_only: bool = False,
                 retention_days: dict[str, float | None] | None = None) -> None:
        self.path = path
        self.profiles = profiles
        self.tz = ZoneInfo(timezone)
        self.read_only = read_only
        self.retention_days = retention_days or {}
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise ConfigError(f"{path}: no store here yet; run `sunarchive demo` or "
                              "`sunarchive setup` first")
        try:
            self._con = duckdb.connect(str(path), read_only=read_only,
                                       config={"memory_limit": f"{memory_limit_mb}MB",
                                               "threads": threads})
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"{path} is in use by another sunarchive process (DuckDB allows one "
                    "writer per file). Stop it, or read through its API.") from None
            raise
        self._set_utc()
        self._lock = threading.RLock()
        self._horizons: dict[tuple[str, str], int] = {}
        self._maybe_dirty: set[str] = set(profiles)

    def _set_utc(self) -> None:
        """Session time zone UTC, so stored UTC TIMESTAMPs compare right with NOW()."""
        with contextlib.suppress(duckdb.Error):  # without ICU, DuckDB is always UTC
            self._con.execute("SET TimeZone = 'UTC'")

    # -- schema ------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        with self._lock:
            changes = create_schema(self._con, self.profiles.values())
            self._load_horizons()
            return changes

    def load_state(self) -> None:
        """Read rollup horizons (for a read-only store that was not set up here)."""
        with self._lock:
            self._load_horizons()

    def _load_horizons(self) -> None:
        rows = self._con.execute(
            "SELECT measurement, tier, horizon_s FROM sunarchive_rollup_state").fetchall()
        self._horizons = {(m, t): int(h) for m, t, h in rows}

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # -- series ------------------------------------------------------------------------------
    def load_series(self) -> dict[SeriesKey, int]:
        with self._lock:
            rows = self._con.execute(
                "SELECT series_id, measurement, tags FROM sunarchive_series").fetchall()
        out: dict[SeriesKey, int] = {}
        for sid, measurement, tags in rows:
            profile = self.profiles.get(measurement)
            values = json.loads(tags)
            order = profile.tags if profile else tuple(values)
            out[SeriesKey(measurement, tuple(values.get(t, "") for t in order))] = int(sid)
        return out

    def add_series(self, key: SeriesKey, series_id: int) -> None:
        profile = self.profiles[key.measurement]
        tags = json.dumps(dict(zip(profile.tags, key.tags, strict=True)))
        with self._lock:
            self._con.execute("INSERT INTO sunarchive_series VALUES (?, ?, ?)",
                              [series_id, key.measurement, tags])

    # -- writing -----------------------------------------------------------------------------
    def write(self, fresh: StatsRows, merge: StatsRows,
              tags: dict[int, tuple[str, ...]]) -> None:
        measurement = fresh.measurement or merge.measurement
        if not len(fresh) and not len(merge):
            return
        profile = self.profiles[measurement]
        table = profile.table("1s")
        with self._lock, self._transaction() as con:
            if len(fresh):
                con.register("_fresh", rows_to_arrow(profile, fresh, tags))
                con.execute(f"INSERT INTO {Q(table)} BY NAME SELECT * FROM _fresh")
                con.unregister("_fresh")
            if len(merge):
                self._merge_rows(con, profile, rows_to_arrow(profile, merge, tags))
            self._mark_dirty(con, measurement, [fresh.time_s, merge.time_s])

    def _merge_rows(self, con: duckdb.DuckDBPyConnection, profile: Profile,
                    incoming: pa.Table) -> None:
        table = Q(profile.table("1s"))
        con.register("_incoming_arrow", incoming)
        con.execute("CREATE OR REPLACE TEMP TABLE _incoming AS SELECT * FROM _incoming_arrow")
        con.unregister("_incoming_arrow")
        source = (f"(SELECT t.* FROM {table} t SEMI JOIN _incoming i "
                  f"ON t.series_id = i.series_id AND t.time = i.time "
                  f"UNION ALL BY NAME SELECT * FROM _incoming)")
        merged = merge_select(profile, source, "src.time", DUCKDB, same_bucket=True)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _merged AS {merged}")
        con.execute(f"DELETE FROM {table} USING _incoming i "
                    f"WHERE {table}.series_id = i.series_id AND {table}.time = i.time")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _merged")
        con.execute("DROP TABLE _incoming")
        con.execute("DROP TABLE _merged")

    def _mark_dirty(self, con: duckdb.DuckDBPyConnection, measurement: str,
                    times: list[np.ndarray[Any, np.dtype[np.int64]]]) -> None:
        horizon = self._horizons.get((measurement, "5min"))
        if horizon is None:
            return
        stamps = np.concatenate(times)
        old = stamps[stamps < horizon]
        if not len(old):
            return
        buckets = np.unique(old - old % TIER_SECONDS["5min"])
        self._maybe_dirty.add(measurement)
        con.executemany("INSERT INTO sunarchive_dirty VALUES (?, ?)",
                        [[measurement, int(b)] for b in buckets])

    def write_events(self, events: list[Event]) -> None:
        if not events:
            return
        rows = [[datetime.fromtimestamp(e.time_s, UTC).replace(tzinfo=None),
                 None if e.end_s is None else
                 datetime.fromtimestamp(e.end_s, UTC).replace(tzinfo=None),
                 e.kind, e.measurement, e.series_id, e.message] for e in events]
        with self._lock:
            self._con.executemany("INSERT INTO sunarchive_events VALUES (?, ?, ?, ?, ?, ?)",
                                  rows)

    # -- rollups -----------------------------------------------------------------------------
    def rollup(self, measurement: str, complete_until_s: int | None) -> int:
        """Materialize complete buckets and re-materialize dirty ones; returns rows written.

        Idempotent and resumable: horizons and the dirty list change in the same transaction
        as the rows they describe.
        """
        profile = self.profiles[measurement]
        if not self._rollup_due(measurement, complete_until_s):
            return 0
        written = 0
        with self._lock, self._transaction() as con:
            dirty = [int(r[0]) for r in con.execute(
                "SELECT DISTINCT bucket_s FROM sunarchive_dirty WHERE measurement = ?",
                [measurement]).fetchall()]
            refreshed: list[tuple[int, int]] = [(b, b + TIER_SECONDS["5min"]) for b in dirty]
            complete = complete_until_s
            for tier in ROLLUP_TIERS:
                ranges, horizon = self._plan(con, profile, tier, complete, refreshed)
                for lo, hi in ranges:
                    written += self._materialize(con, profile, tier, lo, hi)
                if horizon is not None:
                    self._save_horizon(con, measurement, tier, horizon)
                refreshed = ranges
                complete = horizon
            con.execute("DELETE FROM sunarchive_dirty WHERE measurement = ?", [measurement])
        self._maybe_dirty.discard(measurement)
        return written

    def _rollup_due(self, measurement: str, complete_until_s: int | None) -> bool:
        """Cheap check: is there a dirty bucket or a 5-minute bucket that became complete?"""
        if measurement in self._maybe_dirty:
            return True
        old = self._horizons.get((measurement, "5min"))
        if complete_until_s is None:
            return False
        return old is None or tier_floor("5min", complete_until_s, self.tz) > old

    def _plan(self, con: duckdb.DuckDBPyConnection, profile: Profile, tier: str,
              complete: int | None, source_ranges: list[tuple[int, int]],
              ) -> tuple[list[tuple[int, int]], int | None]:
        old = self._horizons.get((profile.name, tier))
        new = None if complete is None else tier_floor(tier, complete, self.tz)
        if old is None and new is not None:
            first = con.execute(f"SELECT epoch(MIN(time))::BIGINT FROM "
                                f"{Q(profile.table(TIER_SOURCE[tier]))}").fetchone()
            if first is None or first[0] is None:
                return [], None
            old = tier_floor(tier, int(first[0]), self.tz)
        ranges = []
        if old is not None and new is not None and new > old:
            ranges.append((old, new))
        limit = max(old or 0, new or 0)
        for lo, hi in source_ranges:
            if lo < limit:
                start = tier_floor(tier, lo, self.tz)
                end = tier_next(tier, tier_floor(tier, min(hi, limit) - 1, self.tz), self.tz)
                ranges.append((start, min(end, limit)))
        horizon = None if old is None else max(old, new if new is not None else old)
        return coalesce_ranges(ranges), horizon

    def _materialize(self, con: duckdb.DuckDBPyConnection, profile: Profile, tier: str,
                     lo: int, hi: int) -> int:
        table = Q(profile.table(tier))
        con.execute(f"DELETE FROM {table} WHERE time >= {_ts(lo)} AND time < {_ts(hi)}")
        select = self._rollup_select(con, profile, tier, lo, hi,
                                     Q(profile.table(TIER_SOURCE[tier])))
        before = self._count(con, table)
        con.execute(f"INSERT INTO {table} BY NAME {select}")
        return self._count(con, table) - before

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
        row = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def _rollup_select(self, con: duckdb.DuckDBPyConnection, profile: Profile, tier: str,
                       lo: int, hi: int, source: str) -> str:
        filtered = f"(SELECT * FROM {source} WHERE time >= {_ts(lo)} AND time < {_ts(hi)})"
        if tier != "daily":
            return merge_select(profile, filtered, DUCKDB.bucket(TIER_SECONDS[tier], "src.time"),
                                DUCKDB)
        self._register_days(con, lo, hi)
        join = (f"JOIN {DAY_TABLE} d ON src.time >= d.day_start AND src.time < d.day_end")
        return merge_select(profile, filtered, "d.day_start", DUCKDB, join=join,
                            extra_inner=", d.day AS _day", extra_select=", MIN(_day) AS day")

    def _register_days(self, con: duckdb.DuckDBPyConnection, lo: int, hi: int) -> None:
        days = local_days(lo, hi, self.tz)
        table = pa.table({
            "day": pa.array([d for d, _, _ in days], pa.date32()),
            "day_start": pa.array([s * 1_000_000 for _, s, _ in days], pa.timestamp("us")),
            "day_end": pa.array([e * 1_000_000 for _, _, e in days], pa.timestamp("us")),
        })
        con.register(DAY_TABLE, table)

    def _save_horizon(self, con: duckdb.DuckDBPyConnection, measurement: str, tier: str,
                      horizon: int) -> None:
        con.execute("DELETE FROM sunarchive_rollup_state WHERE measurement = ? AND tier = ?",
                    [measurement, tier])
        con.execute("INSERT INTO sunarchive_rollup_state VALUES (?, ?, ?)",
                    [measurement, tier, horizon])
        self._horizons[(measurement, tier)] = horizon

    def horizon(self, measurement: str, tier: str) -> int | None:
        """Rollup buckets of ``tier`` before this instant (UTC epoch s) are materialized."""
        return self._horizons.get((measurement, tier))

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, now: datetime) -> dict[str, int]:
        deleted: dict[str, int] = {}
        with self._lock, self._transaction() as con:
            for profile in self.profiles.values():
                for tier in ALL_TIERS:
                    days = self._retention(profile, tier)
                    if days is None:
                        continue
                    cutoff = int((now - timedelta(days=days)).timestamp())
                    protected = self._protected_from(profile.name, tier)
                    if protected is not None:
                        cutoff = min(cutoff, protected)
                    table = Q(profile.table(tier))
                    before = self._count(con, table)
                    con.execute(f"DELETE FROM {table} WHERE time < {_ts(cutoff)}")
                    gone = before - self._count(con, table)
                    if gone:
                        deleted[profile.table(tier)] = gone
        return deleted

    def _retention(self, profile: Profile, tier: str) -> float | None:
        own = profile.extra.get(f"retention_{tier}_days")
        if isinstance(own, int | float):
            return float(own)
        return self.retention_days.get(tier)

    def _protected_from(self, measurement: str, tier: str) -> int | None:
        """Rows at or after this instant feed a rollup not yet materialized: never drop them.

        None when no rollup reads this tier.
        """
        consumers = [t for t, src in TIER_SOURCE.items() if src == tier]
        if not consumers:
            return None
        bounds = [self._horizons.get((measurement, t)) for t in consumers]
        return min(PROTECT_ALL if b is None else b for b in bounds)

    # -- reading -----------------------------------------------------------------------------
    def last_time_s(self, measurement: str) -> int | None:
        table = Q(self.profiles[measurement].table("1s"))
        row = self._cursor().execute(f"SELECT epoch(MAX(time))::BIGINT FROM {table}").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def tier_relation(self, con: duckdb.DuckDBPyConnection, profile: Profile, tier: str,
                      lo: int, hi: int) -> str:
        """SQL for buckets of ``tier`` starting in [lo, hi): materialized + real-time part."""
        table = Q(profile.table(tier))
        if tier == "1s":
            return f"(SELECT * FROM {table} WHERE time >= {_ts(lo)} AND time < {_ts(hi)})"
        horizon = self._horizons.get((profile.name, tier))
        done = lo if horizon is None else max(lo, min(horizon, hi))
        parts = []
        if horizon is not None and done > lo:
            parts.append(f"SELECT * FROM {table} WHERE time >= {_ts(lo)} AND time < {_ts(done)}")
        if done < hi:
            start = tier_floor(tier, done, self.tz)
            end = tier_next(tier, tier_floor(tier, hi - 1, self.tz), self.tz)
            source = self.tier_relation(con, profile, TIER_SOURCE[tier], start, end)
            live = self._rollup_select(con, profile, tier, start, end, source)
            parts.append(f"SELECT * FROM ({live}) WHERE time >= {_ts(done)} "
                         f"AND time < {_ts(hi)}")
        if not parts:
            return f"(SELECT * FROM {table} WHERE false)"
        return "(" + " UNION ALL BY NAME ".join(parts) + ")"

    def query_tier(self, measurement: str, tier: str, start_s: int, end_s: int,
                   where: dict[str, str], columns: list[str] | None) -> pa.Table:
        profile = self.profiles[measurement]
        con = self._cursor()
        relation = self.tier_relation(con, profile, tier, start_s, end_s)
        cols = ["time", *profile.tags, *(columns or [c.name for c in
                                                     profile.stats_columns()])]
        if tier == "daily":
            cols.insert(1, "day")
        conditions = " AND ".join(f"{Q(k)} = ?" for k in where) or "true"
        select = ", ".join(Q(c) for c in cols)
        sql = (f"SELECT {select} FROM {relation} WHERE {conditions} "
               f"ORDER BY time, {', '.join(Q(t) for t in profile.tags) or '1'}")
        table = fetch_arrow(con, sql, list(where.values()))
        assert table is not None
        return table

    def sql(self, text: str) -> QueryResult:
        con = self._cursor()
        if not self.read_only:
            con.execute("BEGIN TRANSACTION READ ONLY")
        try:
            table = fetch_arrow(con, text)
        finally:
            if not self.read_only:
                con.execute("ROLLBACK")
        return QueryResult(table if table is not None else pa.table({}))

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        con = self._cursor()
        size = os.path.getsize(self.path) if self.path.exists() else 0
        sizes = table_bytes(con)
        tables = []
        for profile in self.profiles.values():
            for tier in ALL_TIERS:
                name = profile.table(tier)
                row = con.execute(f"SELECT COUNT(*), MIN(time), MAX(time) FROM {Q(name)}"
                                  ).fetchone()
                assert row is not None
                count, first, last = int(row[0]), row[1], row[2]
                if not count:
                    continue
                nbytes = sizes.get(name, 0)
                tables.append({
                    "table": name, "measurement": profile.name, "tier": tier, "rows": count,
                    "first": _iso(first), "last": _iso(last), "bytes": nbytes,
                    "bytes_per_row": round(nbytes / count, 1) if count else None,
                    "rollup_horizon": _iso_s(self._horizons.get((profile.name, tier))),
                })
        events = con.execute("SELECT COUNT(*) FROM sunarchive_events").fetchone()
        return {"engine": "duckdb", "duckdb_version": duckdb.__version__,
                "path": str(self.path), "file_bytes": size, "timezone": str(self.tz),
                "tables": tables, "events": int(events[0]) if events else 0}

    def columns_of(self, table: str) -> list[str]:
        return table_columns(self._cursor(), table)

    def checkpoint(self) -> None:
        with self._lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        with self._lock:
            if not self.read_only:
                self._con.execute("CHECKPOINT")
            self._con.close()


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str,
                params: list[Any] | None = None) -> pa.Table | None:
    """Run ``sql`` and return its rows as Arrow (None for a statement without rows)."""
    relation = con.sql(sql, params=params) if params else con.sql(sql)
    if relation is None:
        return None
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = fetch()
    return table


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat()


def _iso_s(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()
