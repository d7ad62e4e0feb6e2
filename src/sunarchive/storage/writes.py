"""The write layer of the tiered store: the 1 s tier's appends, merges of late and re-delivered
rows, and replaced ranges, each in one transaction with its batch id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sunarchive.model import StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.replacement import replaced_ranges, replaced_seconds, split_replacements
from sunarchive.rollup import (
    REPLAY_NEW,
    merge_select,
)
from sunarchive.storage.base import REPLAY_COLUMN, rows_to_arrow
from sunarchive.storage.engine import INCOMING, tier_columns
from sunarchive.storage.rollups import Rollups


class Writes(Rollups):
    """The 1 s tier's writes: a batch appended and recorded once, late rows merged,
    replaced ranges swapped, each in one transaction, and the rollup buckets it dirtied
    remembered."""

    # -- writing -----------------------------------------------------------------------------
    def last_batch(self, measurement: str) -> int:
        """Id of the last writer batch committed for ``measurement`` (0 for none)."""
        with self._lock:
            rows = self._fetch("SELECT last_batch FROM sunarchive_writer_state "
                               f"WHERE measurement = {self._p}", [measurement])
        return int(rows[0][0]) if rows else 0

    def write(self, fresh: StatsRows, merge: StatsRows, tags: dict[int, tuple[str, ...]],
              batch_id: int | None = None) -> bool:
        """Append ``fresh`` and merge ``merge`` into the 1 s tier in one transaction.

        With ``batch_id``, the batch is recorded in the same transaction and a batch at or
        below the last recorded one is skipped (returns False): a replay after a connection
        lost during commit writes nothing twice.
        """
        measurement = fresh.measurement or merge.measurement
        profile = self.profiles[measurement]
        with self._lock, self._transaction():
            if batch_id is not None and not self._claim_batch(measurement, batch_id):
                return False
            if len(fresh):
                self._append(profile, profile.table("1s"), rows_to_arrow(profile, fresh, tags))
            self._merge_all(profile, merge, tags)
            self._after_write(profile, written_seconds(fresh, merge), len(merge) > 0)
        return True

    def _claim_batch(self, measurement: str, batch_id: int) -> bool:
        p = self._p
        rows = self._fetch(f"SELECT last_batch FROM sunarchive_writer_state "
                           f"WHERE measurement = {p}", [measurement])
        if rows and int(rows[0][0]) >= batch_id:
            return False
        if rows:
            self._execute(f"UPDATE sunarchive_writer_state SET last_batch = {p} "
                          f"WHERE measurement = {p}", [batch_id, measurement])
        else:
            self._execute(f"INSERT INTO sunarchive_writer_state VALUES ({p}, {p})",
                          [measurement, batch_id])
        return True

    def _after_write(self, profile: Profile, times: list[np.ndarray[Any, Any]],
                     merged: bool) -> None:
        """Remember which rollup buckets the written rows dirtied."""
        self._mark_dirty(profile.name, times)

    def _merge_all(self, profile: Profile, merge: StatsRows,
                   tags: dict[int, tuple[str, ...]]) -> None:
        """Merge late rows (their energy adds) and re-delivered rows (``REPLAY_COLUMN``),
        then replace the ranges recomputed for replaced points (:mod:`sunarchive.replacement`)."""
        merge, replacing = split_replacements(merge)
        for rows, replay in _merge_kinds(merge):
            self._merge_rows(profile, rows_to_arrow(profile, rows, tags), replay)
        if len(replacing):
            self._replace_ranges(profile, replacing, tags)

    def _replace_ranges(self, profile: Profile, rows: StatsRows,
                        tags: dict[int, tuple[str, ...]]) -> None:
        """Delete each series' stored rows in its replaced range and insert ``rows``."""
        table = self.q(profile.table("1s"))
        p = self._p
        for series_id, lo, hi in replaced_ranges(rows):
            self._execute(f"DELETE FROM {table} WHERE series_id = {p} AND "
                          f"time >= {self.ts(lo)} AND time < {self.ts(hi)}", [series_id])
        self._append(profile, profile.table("1s"), rows_to_arrow(profile, rows, tags))

    def _merge_rows(self, profile: Profile, incoming: pa.Table, replay: bool = False) -> None:
        """Merge rows into stored 1 s rows of the same series and second (late samples).

        ``replay``: the rows re-deliver seconds an earlier run stored; their energy is not
        added (``merge_select(..., replay=True)``)."""
        table = self.q(profile.table("1s"))
        cols = ", ".join(self.q(c) for c, _ in tier_columns(profile, "1s"))
        self._load_incoming(profile, incoming)
        times = incoming.column("time").cast(pa.int64()).to_numpy() // 1_000_000
        lo, hi = int(times.min()), int(times.max()) + 1
        def span(alias: str) -> str:  # bounds let engines prune partitions
            return f"{alias}.time >= {self.ts(lo)} AND {alias}.time < {self.ts(hi)}"

        source = (f"(SELECT {cols}, 0 AS {REPLAY_NEW} FROM {table} t WHERE {span('t')} AND "
                  f"EXISTS (SELECT 1 FROM {INCOMING} i WHERE t.series_id = i.series_id AND "
                  f"t.time = i.time) UNION ALL SELECT {cols}, 1 AS {REPLAY_NEW} FROM {INCOMING})")
        merged = merge_select(profile, source, "src.time", self.dialect, same_bucket=True,
                              replay=replay)
        self._execute(f"CREATE TEMP TABLE _sunarchive_merged AS {merged}")
        self._execute(f"DELETE FROM {table} USING {INCOMING} i WHERE {span(table)} AND "
                      f"{table}.series_id = i.series_id AND {table}.time = i.time")
        self._execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _sunarchive_merged")
        self._execute(f"DROP TABLE {INCOMING}")
        self._execute("DROP TABLE _sunarchive_merged")


def written_seconds(fresh: StatsRows, merge: StatsRows) -> list[np.ndarray[Any, Any]]:
    """Seconds (UTC epoch s) whose rollup buckets a write touches."""
    return [fresh.time_s, merge.time_s, replaced_seconds(merge)]


def _merge_kinds(merge: StatsRows) -> list[tuple[StatsRows, bool]]:
    """Merge rows split into (late rows whose energy adds, rows re-delivering seconds an
    earlier run stored — marked by ``REPLAY_COLUMN``), leaving out an empty part."""
    marker = merge.columns.get(REPLAY_COLUMN)
    replay = np.zeros(len(merge), bool) if marker is None else np.nan_to_num(marker) > 0
    parts = []
    for mask, is_replay in ((~replay, False), (replay, True)):
        if mask.any():
            parts.append((StatsRows(merge.measurement, merge.time_s[mask],
                                    merge.series_id[mask],
                                    {k: v[mask] for k, v in merge.columns.items()}), is_replay))
    return parts


