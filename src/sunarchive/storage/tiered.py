"""What every SQL engine shares: series, events, rollup planning, retention and tier reads.

Engines (DuckDB, PostgreSQL) subclass :class:`TieredStore` and provide a handful of
primitives: a transaction on the writer connection, statement execution, Arrow reads, and
loading Arrow rows into a table. The rollup logic — which buckets became complete, which were
dirtied by late data, how a tier is merged from the one below, and how reads add the buckets
not yet materialized — is written once, here, on top of :mod:`sunarchive.rollup`.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from sunarchive.errors import StoreError
from sunarchive.model import ConfigError, Event, SeriesKey, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.replacement import replaced_ranges, replaced_seconds, split_replacements
from sunarchive.resolution import ValueGrid
from sunarchive.rollup import (
    ALL_TIERS,
    REPLAY_NEW,
    ROLLUP_TIERS,
    TIER_SECONDS,
    TIER_SOURCE,
    Dialect,
    coalesce_ranges,
    daily_select,
    merge_select,
    named_rollup_select,
    tier_floor,
    tier_next,
)
from sunarchive.storage import migrations
from sunarchive.storage.base import REPLAY_COLUMN, QueryResult, rows_to_arrow
from sunarchive.storage.tier_views import VIEW_META_PREFIX, TierViews, digest
from sunarchive.upstream.homepot import registry as homepot_registry

PROTECT_ALL = 0  # 1970: a tier whose consumer has never run keeps every row
INCOMING = "_sunarchive_incoming"


def tier_columns(profile: Profile, tier: str) -> list[tuple[str, str]]:
    """(name, profile SQL type) of a tier table, in order."""
    cols = [("time", "TIMESTAMP"), ("series_id", "INTEGER")]
    if tier == "daily":
        cols.append(("day", "DATE"))
    cols.extend((column, "VARCHAR") for column in profile.tag_column_names)
    cols.extend((c.name, c.sql_type) for c in profile.stats_columns())
    return cols


class TieredStore(ABC):
    """Tier tables ``<m>_1s``, ``<m>_5min``, ``<m>_1hour``, ``<m>_daily`` on a SQL engine.

    Methods that write run on the single writer thread (in a running server or agent every
    write goes through :meth:`sunarchive.pipeline.agent.Agent.submit` or the writer's own
    loop); readers may run on other threads.

    ``_lock`` stays although only the writer writes: some reads (``_fetch``: series, state
    labels, meta, batch ids) run on the writer's own connection, which is not safe to share
    between threads (DuckDB) or would read inside the writer's open transaction
    (PostgreSQL). Write methods hold it so that such a read never interleaves with a
    transaction; it no longer serializes writers against each other (there is one).
    """

    engine = "sql"
    dialect: Dialect
    location = ""
    """Where the store is, for messages (a file, a URL without its password)."""
    value_grid: ValueGrid = "decimal"
    """The grid writers round the statistics to (:mod:`sunarchive.resolution`)."""

    layout: str | None = None
    """How a PostgreSQL store keeps its tiers (``timescaledb`` or ``plain``); None on DuckDB."""

    def abilities(self) -> frozenset[str]:
        """The capability protocols this store has now (:mod:`.capabilities`): none here."""
        return frozenset()

    def __init__(self, profiles: dict[str, Profile], timezone: str = "UTC",
                 retention_days: dict[str, float | None] | None = None) -> None:
        self.profiles = profiles
        self.tz = ZoneInfo(timezone)
        self.retention_days = retention_days or {}
        self._lock = threading.RLock()
        self._horizons: dict[tuple[str, str], int] = {}
        self._maybe_dirty: set[str] = set(profiles)
        self._unrenamed: set[str] = set()
        """Rollup tables still under their tier name (``<m>_5min``): a store read before
        schema step 2 renamed them (:mod:`sunarchive.storage.migrations`)."""

    # -- engine primitives -------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Run the block in one transaction on the writer connection."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a statement on the writer connection; return the rows it affected (or -1)."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query on the writer connection."""

    @abstractmethod
    def _read_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Rows of a read-only query as Arrow (times UTC)."""

    @abstractmethod
    def _append(self, profile: Profile, table_name: str, rows: pa.Table) -> None:
        """Append Arrow rows (tier columns) to a table inside the current transaction."""

    @abstractmethod
    def _load_incoming(self, profile: Profile, rows: pa.Table) -> None:
        """Put Arrow rows into a temporary table named ``INCOMING`` (replacing it)."""

    @property
    def _p(self) -> str:
        """Parameter placeholder of the engine's driver."""
        return "?" if self.dialect.name == "duckdb" else "%s"

    def q(self, ident: str) -> str:
        return self.dialect.quote(ident)

    def ts(self, seconds: int) -> str:
        return self.dialect.timestamp(seconds)

    def time_param(self, seconds: float) -> datetime:
        """A query parameter for an instant in the engine's time column type."""
        return datetime.fromtimestamp(seconds, UTC)

    # -- profiles added and grown at run time (schema on write) -----------------------------
    engine_errors: tuple[type[Exception], ...] = ()
    """The engine driver's errors (a refused ``ALTER TABLE``): a schema change failing with
    one is reported as a :class:`StoreError` naming the measurement."""

    def add_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        """Add a profile (inferred from line protocol), create its tables — only its own —
        and keep its document for the next start. Returns what was created."""
        with self._lock:
            taken = {p.table("1s").casefold() for p in self.profiles.values()}
            if profile.table("1s").casefold() in taken:   # DuckDB: Cpu_1s is cpu_1s
                raise ConfigError(f"measurement {profile.name!r} would use the tables of "
                                  "another measurement")
            changes = self._schema_change(profile.name, lambda: self._create_tables(profile))
            self._save_document(profile.name, document)
            self.profiles[profile.name] = profile
            self._maybe_dirty.add(profile.name)
            return changes

    def grow_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        """Replace a measurement's profile by ``profile``, the same with tag keys or fields
        added: the new columns are added to its tables (existing rows hold NULL there), then
        the document is kept for the next start. Returns what changed."""
        with self._lock:
            old = self.profiles[profile.name]
            changes = self._schema_change(profile.name,
                                          lambda: self._grow_tables(old, profile))
            self._save_document(profile.name, document)
            self.profiles[profile.name] = profile
            return changes

    def inferred_profiles(self) -> list[dict[str, Any]]:
        """The profiles inferred from line protocol: tags, fields, and how they grew (for
        ``status`` and ``/api/v1/series``)."""
        return [{"measurement": p.name, "tags": list(p.tags),
                 "fields": [f.name for f in p.fields], **growth_of(p)}
                for p in self.profiles.values() if p.extra.get("inferred") is True]

    def _schema_change(self, measurement: str, change: Callable[[], list[str]]) -> list[str]:
        try:
            return change()
        except self.engine_errors as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot change the tables of {measurement!r}: {first}") from None

    def _save_document(self, name: str, document: dict[str, Any]) -> None:
        p = self._p
        with self._transaction():
            self._execute("DELETE FROM sunarchive_profiles WHERE name = " + p, [name])
            self._execute(f"INSERT INTO sunarchive_profiles VALUES ({p}, {p})",
                          [name, json.dumps(document)])

    @abstractmethod
    def _create_tables(self, profile: Profile) -> list[str]:
        """Create the tables (and what the engine keeps beside them) of one new profile."""

    @abstractmethod
    def _grow_tables(self, old: Profile, new: Profile) -> list[str]:
        """Give the tables of ``old`` the columns ``new`` adds."""

    def stored_profiles(self) -> list[dict[str, Any]]:
        """Profile documents added at run time by earlier runs."""
        rows = self._fetch("SELECT spec FROM sunarchive_profiles ORDER BY name")
        return [json.loads(r[0]) for r in rows]

    @abstractmethod
    def setup(self) -> list[str]:
        """Create or upgrade the schema (idempotent); return what changed."""

    # -- numbered migrations (:mod:`sunarchive.storage.migrations`) -------------------------
    def _schema(self) -> migrations.Schema:
        return migrations.Schema(self.dialect, self._execute, self._fetch, self._transaction,
                                 list(self.profiles.values()), self.location)

    def migrate(self) -> list[str]:
        """Apply the schema steps this store lacks (writers; part of ``setup``)."""
        return migrations.migrate(self._schema())

    def schema_version(self) -> int:
        """The store's schema version; refuses a store written by a newer sunarchive."""
        return migrations.check_version(self._schema())

    def has_table(self, name: str) -> bool:
        return self._schema().has_table(name)

    # -- bookkeeping in ``sunarchive_meta`` ----------------------------------------------------
    def meta_values(self, prefix: str) -> dict[str, str]:
        """The ``sunarchive_meta`` records whose key starts with ``prefix``."""
        rows = self._fetch("SELECT key, value FROM sunarchive_meta "
                           f"WHERE starts_with(key, {self._p})", [prefix])
        return {str(key): str(value) for key, value in rows}

    def put_meta(self, items: dict[str, str], chunk_rows: int = 500) -> None:
        """Set ``sunarchive_meta`` records (replacing older values), in one transaction and
        a few multi-row statements of ``chunk_rows`` each."""
        p = self._p
        keys = list(items)
        with self._lock, self._transaction():
            for lo in range(0, len(keys), chunk_rows):
                chunk = keys[lo:lo + chunk_rows]
                self._execute(f"DELETE FROM sunarchive_meta WHERE key IN "
                              f"({', '.join([p] * len(chunk))})", chunk)
                self._execute(f"INSERT INTO sunarchive_meta VALUES "
                              f"{', '.join([f'({p}, {p})'] * len(chunk))}",
                              [v for key in chunk for v in (key, items[key])])

    # -- text values of state fields ----------------------------------------------------------
    def known_state_codes(self, measurement: str, field: str) -> dict[str, int]:
        """The codes of the text states of a state field kept so far (label → code; a code
        never changes once given, so a reader may use these without the writer)."""
        p = self._p
        with self._lock:
            rows = self._fetch("SELECT label, code FROM sunarchive_state_labels WHERE "
                               f"measurement = {p} AND field = {p}", [measurement, field])
        return {str(label): int(code) for label, code in rows}

    def state_codes(self, measurement: str, field: str, labels: Iterable[str]) -> dict[str, int]:
        """Integer codes of text states (``"on"``, ``"heating"``) of a state field; new
        labels get the next free codes, kept in ``sunarchive_state_labels`` for good
        (writers: in a running server, on the writer thread)."""
        wanted = set(labels)
        p = self._p
        with self._lock:
            codes = self.known_state_codes(measurement, field)
            new = sorted(wanted - codes.keys())
            if new:
                with self._transaction():
                    for label in new:
                        codes[label] = len(codes)
                        self._execute(f"INSERT INTO sunarchive_state_labels VALUES ({p}, {p}, "
                                      f"{p}, {p})", [measurement, field, codes[label], label])
        return {label: codes[label] for label in wanted}

    def state_labels(self) -> dict[str, dict[str, dict[int, str]]]:
        """measurement → field → code → label, for every state field written as text."""
        out: dict[str, dict[str, dict[int, str]]] = {}
        with self._lock:
            rows = self._fetch("SELECT measurement, field, code, label FROM "
                               "sunarchive_state_labels")
        for measurement, field, code, label in rows:
            out.setdefault(str(measurement), {}).setdefault(str(field), {})[int(code)] = \
                str(label)
        return out

    # -- named rollups ----------------------------------------------------------------------
    def ensure_named_rollups(self) -> list[str]:
        """Views for the rollups profiles name (e.g. ``site_metrics_hourly``); idempotent."""
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

    # -- series and events -------------------------------------------------------------------
    def load_series(self) -> dict[SeriesKey, int]:
        with self._lock:
            rows = self._fetch("SELECT series_id, measurement, tags FROM sunarchive_series")
        out: dict[SeriesKey, int] = {}
        for sid, measurement, tags in rows:
            profile = self.profiles.get(measurement)
            values = json.loads(tags)
            order = profile.tags if profile else tuple(values)
            out[SeriesKey(measurement, tuple(values.get(t, "") for t in order))] = int(sid)
        return out

    def add_series(self, key: SeriesKey, series_id: int) -> None:
        """Persist a series id (idempotent: adding a known id again changes nothing)."""
        self.save_series([(key, series_id)])

    def save_series(self, series: list[tuple[SeriesKey, int]]) -> None:
        """Persist series ids in one transaction — one commit (a WAL sync) for a fleet of
        new senders, not one each (idempotent)."""
        p = self._p
        with self._lock, self._transaction():
            for key, series_id in series:
                profile = self.profiles[key.measurement]
                values = key.tags + ("",) * (len(profile.tags) - len(key.tags))  # it grew
                tags = json.dumps(dict(zip(profile.tags, values, strict=True)))
                self._execute(f"INSERT INTO sunarchive_series SELECT {p}, {p}, {p} WHERE NOT "
                              f"EXISTS (SELECT 1 FROM sunarchive_series WHERE series_id = {p})",
                              [series_id, key.measurement, tags, series_id])
                if key.measurement == homepot_registry.MEASUREMENT:   # a new device?
                    homepot_registry.register(self._execute, self._fetch, p,
                                              json.loads(tags))

    def write_events(self, events: list[Event]) -> None:
        if not events:
            return
        p = self._p
        with self._lock, self._transaction():
            for e in events:
                end = None if e.end_s is None else self.time_param(e.end_s)
                self._execute(f"INSERT INTO sunarchive_events VALUES ({p}, {p}, {p}, {p}, {p}, "
                              f"{p})", [self.time_param(e.time_s), end, e.kind, e.measurement,
                                        e.series_id, e.message])

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

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, now: datetime) -> dict[str, int]:
        deleted: dict[str, int] = {}
        with self._lock, self._transaction():
            for profile in self.profiles.values():
                for tier in ALL_TIERS:
                    cutoff = self.retention_cutoff(profile, tier, now)
                    if cutoff is None:
                        continue
                    gone = self._delete_before(profile, tier, cutoff)
                    if gone:
                        deleted[profile.table(tier)] = gone
        return deleted

    def retention_cutoff(self, profile: Profile, tier: str, now: datetime) -> int | None:
        """Rows of ``tier`` before this instant may go (None: keep all).

        The cutoff never passes the horizon of a rollup that reads the tier: raw data that a
        rollup has not yet materialized is never dropped.
        """
        days = self.retention_of(profile, tier)
        if days is None:
            return None
        cutoff = int((now - timedelta(days=days)).timestamp())
        protected = self._protected_from(profile.name, tier)
        return cutoff if protected is None else min(cutoff, protected)

    def _delete_before(self, profile: Profile, tier: str, cutoff: int) -> int:
        table = self.q(self.stored_table(profile, tier))
        return max(self._execute(f"DELETE FROM {table} WHERE time < {self.ts(cutoff)}"), 0)

    def retention_of(self, profile: Profile, tier: str) -> float | None:
        """Days ``tier`` of ``profile`` is kept: the profile's own setting, else the config's."""
        own = profile.extra.get(f"retention_{tier}_days")
        if own is None and tier == "1s":
            own = profile.extra.get("retention_days")
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
        of the measurement's data (picked in numpy: one range scan, no self-join)."""
        last = self.last_time_s(measurement)
        profile = self.profiles[measurement]
        cols = ["time", *profile.tag_column_names, *(c.name for c in profile.stats_columns())]
        table = self.q(profile.table("1s"))
        since = "false" if last is None else f"time >= {self.ts(last - window_s)}"
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

    @abstractmethod
    def sql(self, text: str) -> QueryResult:
        """Run the program's own read-only SQL (user text goes through :meth:`read_sql`)."""

    @abstractmethod
    def read_sql(self, text: str) -> QueryResult:
        """Run one user statement where it cannot write, read files or change settings,
        within the store's ``sql_limits`` (:mod:`sunarchive.storage.user_sql`)."""

    def event_rows(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Newest events first."""
        table = self._read_arrow(f"SELECT * FROM sunarchive_events ORDER BY time DESC "
                                 f"LIMIT {int(limit)}")
        yield from table.to_pylist()


def written_seconds(fresh: StatsRows, merge: StatsRows) -> list[np.ndarray[Any, Any]]:
    """Seconds (UTC epoch s) whose rollup buckets a write touches."""
    return [fresh.time_s, merge.time_s, replaced_seconds(merge)]


def growth_of(profile: Profile) -> dict[str, Any]:
    """How often an inferred profile grew and its latest growths (when, tags, fields)."""
    grew = profile.extra.get("grew")
    growths = profile.extra.get("growths")
    return {"growths": growths if isinstance(growths, int) else 0,
            "grew": list(grew) if isinstance(grew, list) else []}


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


def iso_seconds(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def iso_time(value: datetime | None) -> str | None:
    """ISO 8601 with offset of a stored time (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
