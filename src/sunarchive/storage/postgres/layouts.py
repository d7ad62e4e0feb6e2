"""How a PostgreSQL store keeps its tiers, chosen once: when ``setup`` chooses the layout or
a reader's ``load_state`` reads it from ``sunarchive_meta``.

:class:`~sunarchive.storage.postgres.store.PostgresStore` hands every step that differs
between the layouts to its :class:`Layout` object, by concern in the order of
:mod:`sunarchive.storage.tiered` (catalog, writes, rollups, retention, reads, status):

=====================  =================================  ====================================
concern                :class:`PlainLayout` (``plain``)   :class:`TimescaleLayout`
                                                          (``timescaledb``)
=====================  =================================  ====================================
1 s tables             range partitions, BRIN on time     a hypertable
                       (:mod:`.partitions`)               (:mod:`.timescale`)
upstream tables        views (:mod:`..plain_views`)       ``view_hypertable`` profiles: a
                                                          hypertable (:mod:`.view_tables`)
rollup tiers           tables the program maintains, as   hierarchical continuous aggregates
                       on DuckDB, read through views      that TimescaleDB's policies refresh;
                       with the open buckets              refreshes owed after a crash are
                                                          settled later
retention              drop old partitions and rows       the retention procedure (chunks)
stored values          decimal grid                       binary grid by default (compression)
abilities              Partitioned                        Partitioned, Compressing,
                                                          ContinuousAggregates, DroppedRanges
=====================  =================================  ====================================

The layout objects hold no connection: each step gets the store and uses its engine
primitives (writer connection, transactions, the lost-connection handling).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import psycopg
import pyarrow as pa

from sunarchive.model import ConfigError, Event, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.resolution import ValueGrid
from sunarchive.storage.migrations import rename_rollup_tables
from sunarchive.storage.postgres import drops, timescale, view_tables
from sunarchive.storage.postgres.partitions import create_plain_layout, table_bytes
from sunarchive.storage.tiered import TieredStore, iso_seconds
from sunarchive.upstream.homepot import schema as homepot_schema

if TYPE_CHECKING:
    from sunarchive.storage.postgres.store import Con, PostgresStore

log = logging.getLogger(__name__)
PLAIN_WARNING = ("TimescaleDB is not available on this server ({why}); using the plain "
                 "PostgreSQL fallback: partitioned 1 s tables and rollup tables maintained by "
                 "sunarchive. Install TimescaleDB for continuous aggregates and compression.")
Times = list[np.ndarray[Any, Any]]


class Layout(Protocol):
    """The steps of a PostgreSQL store that depend on its layout. Times are UTC epoch seconds;
    ranges are [start, end)."""

    name: str
    """``plain`` or ``timescaledb``: what ``sunarchive_meta`` and ``status`` say."""

    def abilities(self) -> frozenset[str]:
        """The capability protocols (:mod:`sunarchive.storage.capabilities`) it gives."""

    def value_grid(self, timescale_grid: ValueGrid) -> ValueGrid:
        """The grid writers round to; ``timescale_grid`` is the one configured for
        TimescaleDB."""

    # -- catalog -----------------------------------------------------------------------------
    def set_up(self, store: PostgresStore, why: str) -> list[str]:
        """Create or repair the tiers of every profile at setup; ``why``: why TimescaleDB is
        not available ('' if it is). What changed."""

    def tier_views(self, store: PostgresStore) -> list[str]:
        """Views over the tiers, made in setup's view transaction. What changed."""

    def create_aggregates(self, store: PostgresStore) -> list[str]:
        """Create or repair engine-maintained aggregates and their policies."""

    def create_tables(self, store: PostgresStore, profile: Profile) -> list[str]:
        """The tiers of a profile added at run time."""

    def grow_tables(self, store: PostgresStore, old: Profile, new: Profile) -> list[str]:
        """The tiers of a profile that gained columns."""

    # -- writes ------------------------------------------------------------------------------
    def before_append(self, store: PostgresStore, profile: Profile, table_name: str,
                      rows: pa.Table) -> None:
        """Make room for ``rows`` before they are copied into ``table_name``."""

    def before_parts(self, store: PostgresStore, profile: Profile, fresh: StatsRows) -> None:
        """Make room for a large batch before its parts are copied in parallel."""

    def admit(self, store: PostgresStore, fresh: StatsRows, merge: StatsRows
              ) -> tuple[StatsRows, StatsRows]:
        """The rows of a batch the layout accepts (fresh, merge)."""

    def after_write(self, store: PostgresStore, profile: Profile, times: Times,
                    merged: bool) -> None:
        """Keep the rollups' bookkeeping after a write of ``times`` (s), in its transaction."""

    # -- rollups -----------------------------------------------------------------------------
    def rollup(self, store: PostgresStore, measurement: str,
               complete_until_s: int | None) -> int:
        """Bring the rollup tiers up to date; rows written by the program."""

    def refresh(self, store: PostgresStore, measurement: str, start_s: int, end_s: int) -> int:
        """Recompute the rollups over [start_s, end_s); rows written by the program."""

    def materialized(self, store: PostgresStore, profile: Profile, tier: str
                     ) -> tuple[str, int | None]:
        """The relation holding a tier's complete buckets and how far it goes (s)."""

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, store: PostgresStore, now: datetime) -> dict[str, int]:
        """Let go what retention allows; rows dropped by table, where counted."""

    def raw_dropped(self, store: PostgresStore, measurement: str, start_s: int, end_s: int,
                    look: bool) -> list[tuple[int, int]]:
        """Ranges (s) overlapping [start_s, end_s) whose 1 s data is gone under kept
        rollups."""

    def has_raw_chunks(self, store: PostgresStore, measurement: str, start_s: int,
                       end_s: int) -> bool:
        """Does 1 s data storage overlap [start_s, end_s)?"""

    # -- reads and status --------------------------------------------------------------------
    def latest_rows(self, store: PostgresStore, measurement: str, window_s: int) -> pa.Table:
        """The newest row of each series in the last ``window_s`` seconds of data."""

    def stored_table(self, store: PostgresStore, profile: Profile, tier: str) -> str:
        """The relation ``status`` counts for a tier."""

    def relation_bytes(self, con: Con, name: str) -> int:
        """Bytes on disk of a tier's stored relation."""

    def status(self, store: PostgresStore) -> dict[str, Any]:
        """What ``status`` adds about the layout."""

    def chunks(self, store: PostgresStore, profile: Profile, table: str
               ) -> list[dict[str, Any]]:
        """Chunks or partitions of ``table`` (a tier of ``profile``), oldest first."""

    def compress(self, store: PostgresStore, older_than_s: int) -> list[str]:
        """Compress 1 s chunks older than ``older_than_s`` seconds; the chunks compressed."""


def choose(stored: str | None, version: str | None, why: str, where: str
           ) -> tuple[str, str, list[str]]:
    """The layout name setup keeps: the one ``stored`` in ``sunarchive_meta``, else TimescaleDB
    when the server has it (``version``), else plain. Returns (name, why TimescaleDB is not
    used or '', notes for the operator); a TimescaleDB store on a server without it is a
    :class:`ConfigError` (``where``: the store's URL without password)."""
    notes = []
    if stored == PlainLayout.name and version:
        why = ""
        notes.append("TimescaleDB is available, but this store was created with the "
                     "plain layout; it keeps it.")
    name = stored or (TimescaleLayout.name if version else PlainLayout.name)
    if name == TimescaleLayout.name and not version:
        raise ConfigError(f"{where}: this store uses TimescaleDB, which is not "
                          f"available now ({why})")
    return name, why, notes


def adopt(current: Layout, name: str) -> Layout:
    """The layout object for ``name``: ``current`` if it is that layout already (it keeps its
    bookkeeping), else a new one."""
    if current.name == name:
        return current
    kinds: dict[str, type[PlainLayout] | type[TimescaleLayout]] = {
        PlainLayout.name: PlainLayout, TimescaleLayout.name: TimescaleLayout}
    if name not in kinds:
        raise ConfigError(f"unknown PostgreSQL layout {name!r} in sunarchive_meta (expected "
                          f"{' or '.join(kinds)})")
    return kinds[name]()


class PlainLayout:
    """Plain PostgreSQL: ``<m>_1s`` range-partitioned by time (BRIN on time, no series index);
    the rollup tiers are tables maintained by the same program logic as the DuckDB engine
    (:class:`~sunarchive.storage.tiered.TieredStore`), read through views that add the open
    buckets (:mod:`sunarchive.storage.tier_views`)."""

    name = "plain"

    def abilities(self) -> frozenset[str]:
        return frozenset({"Partitioned"})

    def value_grid(self, timescale_grid: ValueGrid) -> ValueGrid:
        return "decimal"

    # -- catalog -----------------------------------------------------------------------------
    def set_up(self, store: PostgresStore, why: str) -> list[str]:
        if why:
            warning = PLAIN_WARNING.format(why=why)
            log.warning(warning)
            store.notes.append(warning)
        with store._transaction():
            changes = rename_rollup_tables(store._schema())  # profiles added since
            for profile in store.profiles.values():
                changes.extend(create_plain_layout(store._con, profile))
                store.partitions.load(store._con, profile)
                now = int(time.time())
                changes.extend(f"created partition {p}" for p in
                               store.partitions.ensure_ahead(store._con, profile, now))
        return changes

    def tier_views(self, store: PostgresStore) -> list[str]:
        return store.ensure_tier_views()

    def create_aggregates(self, store: PostgresStore) -> list[str]:
        return []

    def create_tables(self, store: PostgresStore, profile: Profile) -> list[str]:
        return self._tables(store, profile)

    def grow_tables(self, store: PostgresStore, old: Profile, new: Profile) -> list[str]:
        return self._tables(store, new)   # adds the columns a profile gained

    def _tables(self, store: PostgresStore, profile: Profile) -> list[str]:
        with store._transaction():
            changes = create_plain_layout(store._con, profile)
            store.partitions.load(store._con, profile)
            changes.extend(f"created partition {p}" for p in
                           store.partitions.ensure_ahead(store._con, profile, int(time.time())))
        return changes

    # -- writes ------------------------------------------------------------------------------
    def before_append(self, store: PostgresStore, profile: Profile, table_name: str,
                      rows: pa.Table) -> None:
        """Partitions for the rows of the 1 s table (times in µs → s)."""
        if table_name == profile.table("1s") and rows.num_rows:
            times = rows.column("time").cast(pa.int64()).to_numpy() // 1_000_000
            store.partitions.ensure(store._con, profile, int(times.min()), int(times.max()))

    def before_parts(self, store: PostgresStore, profile: Profile, fresh: StatsRows) -> None:
        with store._transaction():
            store.partitions.ensure(store._con, profile, int(fresh.time_s.min()),
                                    int(fresh.time_s.max()))

    def admit(self, store: PostgresStore, fresh: StatsRows, merge: StatsRows
              ) -> tuple[StatsRows, StatsRows]:
        return fresh, merge

    def after_write(self, store: PostgresStore, profile: Profile, times: Times,
                    merged: bool) -> None:
        TieredStore._after_write(store, profile, times, merged)

    # -- rollups: the program's, as on DuckDB -------------------------------------------------
    def rollup(self, store: PostgresStore, measurement: str,
               complete_until_s: int | None) -> int:
        return TieredStore.rollup(store, measurement, complete_until_s)

    def refresh(self, store: PostgresStore, measurement: str, start_s: int, end_s: int) -> int:
        return TieredStore.refresh(store, measurement, start_s, end_s)

    def materialized(self, store: PostgresStore, profile: Profile, tier: str
                     ) -> tuple[str, int | None]:
        return TieredStore._materialized(store, profile, tier)

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, store: PostgresStore, now: datetime) -> dict[str, int]:
        """Partitions ahead of ``now``, then old partitions and rollup rows dropped."""
        with store._lock, store._transaction():
            for profile in store.profiles.values():
                store.partitions.ensure_ahead(store._con, profile, int(now.timestamp()))
        return TieredStore.apply_retention(store, now)

    def raw_dropped(self, store: PostgresStore, measurement: str, start_s: int, end_s: int,
                    look: bool) -> list[tuple[int, int]]:
        return []   # nothing is dropped that is not rolled up

    def has_raw_chunks(self, store: PostgresStore, measurement: str, start_s: int,
                       end_s: int) -> bool:
        return True

    # -- reads and status --------------------------------------------------------------------
    def latest_rows(self, store: PostgresStore, measurement: str, window_s: int) -> pa.Table:
        """As every engine: the probe of the last seconds first, the newest row of each
        series picked by the server."""
        return TieredStore.latest_rows(store, measurement, window_s)

    def stored_table(self, store: PostgresStore, profile: Profile, tier: str) -> str:
        return store.stored_table(profile, tier)

    def relation_bytes(self, con: Con, name: str) -> int:
        return table_bytes(con, name)

    def status(self, store: PostgresStore) -> dict[str, Any]:
        return {"extension": "fallback: plain PostgreSQL",
                "partitions": {p.table("1s"): len(store.partitions.listing(store._con, p))
                               for p in store.profiles.values()}}

    def chunks(self, store: PostgresStore, profile: Profile, table: str
               ) -> list[dict[str, Any]]:
        if table != profile.table("1s"):
            raise ConfigError(f"{table} is a view of the rollup (its complete buckets in "
                              f"{store.stored_table(profile, table.rsplit('_', 1)[1])}, an "
                              f"unpartitioned table, and the open ones); only "
                              f"{profile.table('1s')} is partitioned")
        return store.partitions.listing(store._con, profile)

    def compress(self, store: PostgresStore, older_than_s: int) -> list[str]:
        raise ConfigError("compression needs TimescaleDB; this store uses the plain "
                          "PostgreSQL layout")


class TimescaleLayout:
    """TimescaleDB: ``<m>_1s`` is a hypertable; the rollup tiers are hierarchical continuous
    aggregates maintained by TimescaleDB's policies (:mod:`.timescale`).

    A write older than the 5-minute policy's window, or one that merged late rows, owes a
    refresh, recorded in ``sunarchive_refresh_owed`` in the write's transaction and settled
    by the next :meth:`rollup` (or at the next setup, after a crash); :attr:`owing` names the
    measurements that may have such rows."""

    name = "timescaledb"

    def __init__(self) -> None:
        self.owing: set[str] = set()

    def abilities(self) -> frozenset[str]:
        return frozenset({"Partitioned", "Compressing", "ContinuousAggregates",
                          "DroppedRanges"})

    def value_grid(self, timescale_grid: ValueGrid) -> ValueGrid:
        """The configured grid: binary by default, as Gorilla float compression needs ~4×
        fewer bytes for such values."""
        return timescale_grid

    # -- catalog -----------------------------------------------------------------------------
    def set_up(self, store: PostgresStore, why: str) -> list[str]:
        changes = store.create_aggregates()
        changes.extend(timescale.view_hypertables(store._con, store.profiles.values(),
                                                  store._timescale_policies))
        self.owing.update(store.profiles)
        changes.extend(self.settle_owed(store))
        return changes

    def tier_views(self, store: PostgresStore) -> list[str]:
        return []

    def create_aggregates(self, store: PostgresStore) -> list[str]:
        changes: list[str] = []
        for profile in store.profiles.values():
            changes.extend(timescale.create_layout(
                store._con, profile, store.tz.key, store._retention_for(profile),
                policies=store._timescale_policies))
        return changes

    def create_tables(self, store: PostgresStore, profile: Profile) -> list[str]:
        return store._guarded(lambda: [
            *timescale.create_layout(store._con, profile, store.tz.key,
                                     store._retention_for(profile),
                                     policies=store._timescale_policies),
            *timescale.view_hypertables(store._con, [profile], store._timescale_policies)])

    def grow_tables(self, store: PostgresStore, old: Profile, new: Profile) -> list[str]:
        changes = store._guarded(lambda: timescale.grow_layout(
            store._con, new, store.tz, store._retention_for(new),
            policies=store._timescale_policies, remade=homepot_schema.aggregate_names()))
        changes.extend(store._guarded(lambda: timescale.view_hypertables(
            store._con, [new], store._timescale_policies)))
        with store._transaction():   # aggregates on the remade ones (HOMEPOT's) again
            changes.extend(homepot_schema.ensure(store._schema(), store._homepot_layout()))
        return changes

    # -- writes ------------------------------------------------------------------------------
    def before_append(self, store: PostgresStore, profile: Profile, table_name: str,
                      rows: pa.Table) -> None:
        return None   # the hypertable makes its chunks

    def before_parts(self, store: PostgresStore, profile: Profile, fresh: StatsRows) -> None:
        return None

    def admit(self, store: PostgresStore, fresh: StatsRows, merge: StatsRows
              ) -> tuple[StatsRows, StatsRows]:
        """Rows inside a range whose raw chunks were dropped are refused, with an event:
        refreshing that range from them alone would replace the rollups it keeps (a 5-minute
        bucket of every panel from one late sample). Batches with rows older than the
        5-minute policy's window first look for drops made by hand in the catalog."""
        measurement = fresh.measurement or merge.measurement
        times = np.concatenate([fresh.time_s, merge.time_s])
        if not len(times):
            return fresh, merge
        lo, hi = int(times.min()), int(times.max()) + 1
        ranges = store.raw_dropped(measurement, lo, hi,
                                   look=lo < time.time() - timescale.REFRESH_LOOKBACK_S)
        if not ranges:
            return fresh, merge
        old = times[inside(times, ranges)]
        if not len(old):
            return fresh, merge
        message = (f"refused {len(old)} rows of {measurement} from {iso_seconds(int(old.min()))}"
                   f" to {iso_seconds(int(old.max()))}: their raw data was dropped (retention "
                   f"or drop_chunks: {drops.describe(ranges)}); the rollups keep that range "
                   "as it was")
        log.warning(message)
        store.write_events([Event(time.time(), "refused_below_retention", measurement,
                                  message)])
        return outside(fresh, ranges), outside(merge, ranges)

    def after_write(self, store: PostgresStore, profile: Profile, times: Times,
                    merged: bool) -> None:
        """Owe a refresh for writes the policies will not see (s: [min, max + 1)); derive
        the profile's view hypertable (:mod:`.view_tables`) again over the seconds written."""
        stamps = np.concatenate(times)
        if not len(stamps):
            return
        if view_tables.kept(profile, self.name):
            view_tables.sync(store._con, profile, times)
        lo, hi = int(stamps.min()), int(stamps.max()) + 1
        if merged or lo < time.time() - timescale.REFRESH_LOOKBACK_S:
            timescale.owe_refresh(store._con, profile.name, lo, hi)
            self.owing.add(profile.name)

    # -- rollups: TimescaleDB maintains them itself ------------------------------------------
    def rollup(self, store: PostgresStore, measurement: str,
               complete_until_s: int | None) -> int:
        """Settle the refreshes owed; the policies do the rest (0 rows by the program)."""
        if measurement in self.owing:
            try:
                timescale.settle_owed(store._con, store.profiles[measurement], store.tz)
            except psycopg.OperationalError as exc:
                raise store._lost(exc) from None
            self.owing.discard(measurement)
        return 0

    def settle_owed(self, store: PostgresStore) -> list[str]:
        """At start: the refreshes a writer owed when it stopped (a crash right after a
        commit leaves them recorded in ``sunarchive_refresh_owed``)."""
        changes = []
        for name in sorted(self.owing):
            owed = timescale.settle_owed(store._con, store.profiles[name], store.tz)
            self.owing.discard(name)
            if owed:
                changes.append(f"{name}: refreshed the aggregates over {owed} write(s) a "
                               "previous writer stopped before refreshing")
        return changes

    def refresh(self, store: PostgresStore, measurement: str, start_s: int, end_s: int) -> int:
        timescale.refresh(store._con, store.profiles[measurement], start_s, end_s, store.tz)
        return 0

    def materialized(self, store: PostgresStore, profile: Profile, tier: str
                     ) -> tuple[str, int | None]:
        """The aggregate's materialized hypertable and its watermark (s).

        Reads then take what is materialized straight from that hypertable and aggregate
        only the part past the watermark, as on the plain layout, instead of going through
        the real-time view: its plan (a union over the aggregate and every chunk below it)
        took about 2 ms to make for every read."""
        found = store._read_rows(timescale.MATERIALIZATION_SQL, [profile.table(tier)])
        if not found:
            raise ConfigError(f"{profile.table(tier)} is not a continuous aggregate; run "
                              "`sunarchive create-aggregates`")
        table, watermark = found[0]
        return str(table), None if watermark is None else int(watermark)

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, store: PostgresStore, now: datetime) -> dict[str, int]:
        """The retention procedure its background job runs (chunk drops; no row counts)."""
        for profile in store.profiles.values():
            timescale.apply_retention(store._con, profile, store._retention_for(profile), now)
        return {}

    def raw_dropped(self, store: PostgresStore, measurement: str, start_s: int, end_s: int,
                    look: bool) -> list[tuple[int, int]]:
        with store._lock:
            try:
                return drops.raw_dropped(store._con, store.profiles[measurement], store.tz,
                                         start_s, end_s, look)
            except psycopg.OperationalError as exc:
                raise store._lost(exc) from None

    def has_raw_chunks(self, store: PostgresStore, measurement: str, start_s: int,
                       end_s: int) -> bool:
        with store._lock:
            try:
                return drops.has_chunks(store._con, store.profiles[measurement].table("1s"),
                                        start_s, end_s)
            except psycopg.OperationalError as exc:
                raise store._lost(exc) from None

    # -- reads and status --------------------------------------------------------------------
    def latest_rows(self, store: PostgresStore, measurement: str, window_s: int) -> pa.Table:
        """One probe of the ``(series_id, time DESC)`` index per series."""
        last = store.last_time_s(measurement)
        if last is None:
            return TieredStore.latest_rows(store, measurement, window_s)
        return store._newest_by_series(measurement, last - window_s)

    def stored_table(self, store: PostgresStore, profile: Profile, tier: str) -> str:
        return profile.table(tier)

    def relation_bytes(self, con: Con, name: str) -> int:
        return timescale.relation_bytes(con, name)

    def status(self, store: PostgresStore) -> dict[str, Any]:
        return {"timescaledb": timescale.status(store._con, store.timescale_version)}

    def chunks(self, store: PostgresStore, profile: Profile, table: str
               ) -> list[dict[str, Any]]:
        return timescale.chunks(store._con, table)

    def compress(self, store: PostgresStore, older_than_s: int) -> list[str]:
        done: list[str] = []
        for profile in store.profiles.values():
            done.extend(timescale.compress(store._con, profile.table("1s"), older_than_s))
        for table in view_tables.tables(store._con, store.profiles.values()):
            done.extend(timescale.compress(store._con, table, older_than_s))
        return done


def inside(times_s: np.ndarray[Any, Any], ranges: list[tuple[int, int]]
           ) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which of ``times_s`` (UTC epoch s) fall in one of the [lo, hi) ``ranges``."""
    found = np.zeros(len(times_s), dtype=bool)
    for lo, hi in ranges:
        found |= (times_s >= lo) & (times_s < hi)
    return found


def outside(rows: StatsRows, ranges: list[tuple[int, int]]) -> StatsRows:
    """The rows outside every [lo, hi) of ``ranges`` (UTC epoch s)."""
    keep = ~inside(rows.time_s, ranges)
    return StatsRows(rows.measurement, rows.time_s[keep], rows.series_id[keep],
                     {name: column[keep] for name, column in rows.columns.items()})
