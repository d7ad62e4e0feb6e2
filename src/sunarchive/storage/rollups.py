"""The rollup layer of the tiered store: program-maintained rollup tiers, their horizons and
dirty buckets, named rollups, and the views users read the tiers through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import (
    ROLLUP_TIERS,
    TIER_SECONDS,
    TIER_SOURCE,
    coalesce_ranges,
    daily_select,
    merge_select,
    named_rollup_select,
    tier_floor,
    tier_next,
)
from sunarchive.storage import capabilities, migrations
from sunarchive.storage.catalog import Catalog
from sunarchive.storage.engine import (
    tier_columns,
)
from sunarchive.storage.tier_views import VIEW_META_PREFIX, TierViews, digest


class Rollups(Catalog):
    """Rollup tiers the program maintains (DuckDB, plain PostgreSQL; TimescaleDB's engine
    overrides what its continuous aggregates do): which buckets became complete, which late
    data dirtied, how a tier is merged from the one below, the horizons, the named rollups
    and the views users read the tiers through."""

    def __init__(self, profiles: dict[str, Profile], timezone: str = "UTC",
                 retention_days: dict[str, float | None] | None = None) -> None:
        super().__init__(profiles, timezone, retention_days)
        self._horizons: dict[tuple[str, str], int] = {}
        self._maybe_dirty: set[str] = set(profiles)
        self._unrenamed: set[str] = set()
        """Rollup tables still under their tier name (``<m>_5min``): a store read before
        schema step 2 renamed them (:mod:`sunarchive.storage.migrations`)."""

    def _profile_added(self, name: str) -> None:
        self._maybe_dirty.add(name)

    def _tables_changed(self, profile: Profile) -> list[str]:
        """A measurement made or grown while running gets its tier views (or their new
        columns) at once, not at the next setup; continuous aggregates need none."""
        if capabilities.continuous_aggregates(self) is not None:
            return []
        with self._transaction():
            return self.ensure_tier_views()

    # -- named rollups ----------------------------------------------------------------------
    def ensure_named_rollups(self) -> list[str]:
        """Views for the rollups profiles name (``rollups: {site_hourly: …}``); idempotent."""
        changes = []
        for profile in self.profiles.values():
            for rollup in profile.rollups:
                exists = self._fetch("SELECT 1 FROM information_schema.tables WHERE "
                                     f"table_name = {self._p}", [rollup.name])
                self._execute(f"DROP VIEW IF EXISTS {self.q(rollup.name)}")
                select = named_rollup_select(profile, rollup.tier, rollup.group_by,
                                             self.dialect)
                self._execute(f"CREATE VIEW {self.q(rollup.name)} AS {select}")
                if not exists:
                    by = (f" per {', '.join(rollup.group_by)}" if rollup.group_by
                          else " per series")
                    changes.append(f"created view {rollup.name} ({profile.table(rollup.tier)}"
                                   f"{by})")
        return changes

    # -- the views users read the rollup tiers through (:mod:`.tier_views`) ----------------
    def tier_views(self) -> TierViews:
        return TierViews(self.dialect, self.tz.key,
                         lambda profile, tier: [c for c, _ in tier_columns(profile, tier)])

    def ensure_tier_views(self) -> list[str]:
        """Create the views ``<m>_5min``, ``<m>_1hour``, ``<m>_daily`` that add the open
        buckets, or replace those whose SQL changed (writers, in the caller's transaction;
        DuckDB and plain PostgreSQL — TimescaleDB's aggregates are real-time already)."""
        views = self.tier_views()
        wanted = views.wanted(list(self.profiles.values()))
        recorded = self.meta_values(VIEW_META_PREFIX)
        existing = self._view_columns(list(wanted))
        changes = []
        for name, (profile, tier) in wanted.items():
            sql = views.create_sql(profile, tier)
            key = VIEW_META_PREFIX + name
            if name in existing and recorded.get(key) == digest(sql):
                continue
            old = existing.get(name)
            if old is not None and self.dialect.name != "duckdb" and \
                    old != views.columns(profile, tier)[:len(old)]:
                # PostgreSQL replaces a view only with its columns kept in place
                self._execute(f"DROP VIEW {self.q(name)} CASCADE")
                changes.append(f"dropped view {name} (its columns changed) and the views on it")
            self._execute(sql)
            self._execute(f"DELETE FROM sunarchive_meta WHERE key = {self._p}", [key])
            self._execute(f"INSERT INTO sunarchive_meta VALUES ({self._p}, {self._p})",
                          [key, digest(sql)])
            if old is None:
                table = migrations.materialized_table(profile, tier)
                changes.append(f"created view {name} ({table} and the open buckets)")
            else:
                changes.append(f"replaced view {name} (its SQL changed)")
        return changes

    def _view_columns(self, names: list[str]) -> dict[str, list[str]]:
        """Column names, in order, of the views among ``names``."""
        if not names:
            return {}
        p = self._p
        rows = self._fetch(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN "
            "information_schema.tables t ON t.table_name = c.table_name AND "
            "t.table_schema = c.table_schema WHERE t.table_type = 'VIEW' AND "
            f"c.table_schema = current_schema() AND c.table_name IN "
            f"({', '.join([p] * len(names))}) ORDER BY c.table_name, c.ordinal_position",
            names)
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(str(table), []).append(str(column))
        return out

    def stored_table(self, profile: Profile, tier: str) -> str:
        """The table holding ``tier``'s rows (1 s rows, or a rollup's complete buckets)."""
        name = migrations.stored_table(profile, tier)
        return profile.table(tier) if name in self._unrenamed else name

    # -- state -------------------------------------------------------------------------------
    def _load_horizons(self) -> None:
        rows = self._fetch("SELECT measurement, tier, horizon_s FROM sunarchive_rollup_state")
        self._horizons = {(m, t): int(h) for m, t, h in rows}
        self._unrenamed = self._unrenamed_tables()

    def _unrenamed_tables(self) -> set[str]:
        """Materialized table names whose rows are still under the tier's own name."""
        base = {str(r[0]) for r in self._fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE'")}
        return {migrations.materialized_table(p, tier) for p in self.profiles.values()
                for tier in ROLLUP_TIERS
                if p.table(tier) in base and migrations.materialized_table(p, tier) not in base}

    def load_state(self) -> None:
        """Read rollup horizons (for a reader that did not run ``setup``)."""
        with self._lock:
            self._load_horizons()

    def horizon(self, measurement: str, tier: str) -> int | None:
        """Rollup buckets of ``tier`` before this instant (UTC epoch s) are materialized."""
        return self._horizons.get((measurement, tier))

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
        p = self._p
        with self._lock, self._transaction():
            dirty = [int(r[0]) for r in self._fetch(
                f"SELECT DISTINCT bucket_s FROM sunarchive_dirty WHERE measurement = {p}",
                [measurement])]
            refreshed = [(b, b + TIER_SECONDS["5min"]) for b in dirty]
            complete = complete_until_s
            for tier in ROLLUP_TIERS:
                ranges, horizon = self._plan(profile, tier, complete, refreshed)
                for lo, hi in ranges:
                    written += self._materialize(profile, tier, lo, hi)
                if horizon is not None:
                    self._save_horizon(measurement, tier, horizon)
                refreshed = ranges
                complete = horizon
            self._execute(f"DELETE FROM sunarchive_dirty WHERE measurement = {p}", [measurement])
        self._maybe_dirty.discard(measurement)
        return written

    def refresh(self, measurement: str, start_s: int, end_s: int) -> int:
        """Recompute every rollup bucket overlapping [start_s, end_s); returns rows written.

        Idempotent and resumable: the buckets are first recorded as dirty in one transaction,
        so an interrupted refresh finishes on the next rollup.
        """
        p = self._p
        step = TIER_SECONDS["5min"]
        with self._lock:
            with self._transaction():
                for bucket in range(start_s - start_s % step, end_s, step):
                    self._execute(f"INSERT INTO sunarchive_dirty VALUES ({p}, {p})",
                                  [measurement, bucket])
            self._maybe_dirty.add(measurement)
            return self.rollup(measurement, None)

    def data_range(self, measurement: str) -> tuple[int, int] | None:
        """First and last stored second of a measurement's 1 s tier (UTC epoch s)."""
        table = self.q(self.profiles[measurement].table("1s"))
        epoch = self.dialect.epoch
        rows = self._read_arrow(f"SELECT {epoch('MIN(time)')} AS lo, {epoch('MAX(time)')} AS hi "
                                f"FROM {table}").to_pylist()
        if not rows or rows[0]["lo"] is None:
            return None
        return int(rows[0]["lo"]), int(rows[0]["hi"])

    def _rollup_due(self, measurement: str, complete_until_s: int | None) -> bool:
        """Cheap check: is there a dirty bucket or a 5-minute bucket that became complete?"""
        if measurement in self._maybe_dirty:
            return True
        old = self._horizons.get((measurement, "5min"))
        if complete_until_s is None:
            return False
        return old is None or tier_floor("5min", complete_until_s, self.tz) > old

    def _plan(self, profile: Profile, tier: str, complete: int | None,
              source_ranges: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], int | None]:
        old = self._horizons.get((profile.name, tier))
        new = None if complete is None else tier_floor(tier, complete, self.tz)
        if old is None and new is not None:
            first = self._fetch(f"SELECT {self.dialect.epoch('MIN(time)')} FROM "
                                f"{self.q(self.stored_table(profile, TIER_SOURCE[tier]))}")
            if not first or first[0][0] is None:
                return [], None
            old = tier_floor(tier, int(first[0][0]), self.tz)
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

    def _materialize(self, profile: Profile, tier: str, lo: int, hi: int) -> int:
        table = self.q(self.stored_table(profile, tier))
        self._execute(f"DELETE FROM {table} WHERE time >= {self.ts(lo)} AND time < {self.ts(hi)}")
        select = self._rollup_select(profile, tier, lo, hi,
                                     self.q(self.stored_table(profile, TIER_SOURCE[tier])))
        cols = ", ".join(self.q(c) for c, _ in tier_columns(profile, tier))
        return max(self._execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ({select}) "
                                 f"AS r"), 0)

    def _rollup_select(self, profile: Profile, tier: str, lo: int, hi: int,
                       source: str) -> str:
        filtered = (f"(SELECT * FROM {source} AS s WHERE time >= {self.ts(lo)} "
                    f"AND time < {self.ts(hi)})")
        if tier != "daily":
            bucket = self.dialect.bucket(TIER_SECONDS[tier], "src.time")
            return merge_select(profile, filtered, bucket, self.dialect)
        return daily_select(profile, filtered, lo, hi, self.tz, self.dialect)

    def _save_horizon(self, measurement: str, tier: str, horizon: int) -> None:
        p = self._p
        self._execute(f"DELETE FROM sunarchive_rollup_state WHERE measurement = {p} "
                      f"AND tier = {p}", [measurement, tier])
        self._execute(f"INSERT INTO sunarchive_rollup_state VALUES ({p}, {p}, {p})",
                      [measurement, tier, horizon])
        self._horizons[(measurement, tier)] = horizon

    def _mark_dirty(self, measurement: str, times: list[np.ndarray[Any, Any]]) -> None:
        horizon = self._horizons.get((measurement, "5min"))
        if horizon is None:
            return
        stamps = np.concatenate(times)
        old = stamps[stamps < horizon]
        if not len(old):
            return
        buckets = np.unique(old - old % TIER_SECONDS["5min"])
        self._maybe_dirty.add(measurement)
        p = self._p
        for bucket in buckets:
            self._execute(f"INSERT INTO sunarchive_dirty VALUES ({p}, {p})",
                          [measurement, int(bucket)])

