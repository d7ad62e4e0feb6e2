"""The PostgreSQL engine: TimescaleDB when the server has it, plain PostgreSQL otherwise.

One writer connection (autocommit, explicit transactions) and one reader connection. Rows go
in with binary COPY. A lost connection raises :class:`TransientStoreError`; the next call
reconnects, so the writer can spool and replay. Times are ``TIMESTAMPTZ``; sessions run in UTC.

Layouts, chosen once (at setup, or read from the store by ``load_state``) as an object every
layout-dependent step is handed to (:mod:`.layouts`):

* ``timescaledb`` — ``<m>_1s`` is a hypertable; the rollup tiers are hierarchical continuous
  aggregates maintained by TimescaleDB's policies (:mod:`.timescale`).
* ``plain`` — ``<m>_1s`` is range-partitioned; the rollup tiers are tables maintained by the
  same program logic as the DuckDB engine (:mod:`sunarchive.storage.tiered`), read through
  views that add the open buckets (:mod:`sunarchive.storage.tier_views`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa

from sunarchive.model import ConfigError, StatsRows, TransientStoreError
from sunarchive.profiles.spec import Profile
from sunarchive.resolution import ValueGrid
from sunarchive.rollup import ALL_TIERS, POSTGRES
from sunarchive.storage import plain_views, upstream_schema
from sunarchive.storage.base import QueryResult, rows_to_arrow
from sunarchive.storage.postgres import layouts, parallel, timescale, user_sql, view_tables
from sunarchive.storage.postgres.arrow_reader import ArrowReader
from sunarchive.storage.postgres.copy import copy_chunks
from sunarchive.storage.postgres.layouts import Layout
from sunarchive.storage.postgres.partitions import Partitions
from sunarchive.storage.postgres.refusals import refused_for_good
from sunarchive.storage.postgres.rows import rows_table
from sunarchive.storage.tiered import (
    INCOMING,
    TieredStore,
    iso_seconds,
    iso_time,
    written_seconds,
)
from sunarchive.storage.user_sql import SqlLimits
from sunarchive.upstream.homepot import schema as homepot_schema

log = logging.getLogger(__name__)
ROLLBACK_ATTEMPTS = 3
"""Tries of a write the server rolls back (a deadlock, a serialization failure): a
TimescaleDB job compressing or dropping the chunk a late merge touches is the usual cause.
A write is idempotent (batch ids, parts recorded), so it is simply tried again."""
ROLLBACK_CLASS = "40"
"""SQLSTATE class *transaction rollback* (40P01 deadlock, 40001 serialization failure)."""
ROLLBACK_PAUSE_S = 0.05
"""Pause before the next try, times the attempt number (the other session finishes)."""


class RolledBack(TransientStoreError):
    """The server rolled the write's transaction back; the connection is fine."""


Q = POSTGRES.quote
Con = psycopg.Connection[tuple[Any, ...]]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


class PostgresStore(TieredStore):
    """Store on a PostgreSQL server, with or without TimescaleDB."""

    engine = "postgres"
    layout: str
    """The name of :attr:`layout_impl` (``plain`` or ``timescaledb``), for status and
    callers."""
    layout_impl: Layout
    """Every layout-dependent step (:mod:`.layouts`); chosen by ``setup`` or ``load_state``."""
    dialect = POSTGRES

    def __init__(self, url: str, profiles: dict[str, Profile], timezone: str = "UTC",
                 retention_days: dict[str, float | None] | None = None,
                 password: str | None = None, read_only: bool = False,
                 connect_timeout_s: int = 5, timescale_policies: bool = True,
                 copy_streams: int = 2, timescale_grid: ValueGrid = "binary",
                 reader: user_sql.ReaderRole | None = None,
                 sql_limits: SqlLimits | None = None) -> None:
        """``copy_streams``: parallel COPY connections for large batches
        (:mod:`.parallel`); 1 keeps every batch on the writer connection.
        ``timescale_grid``: the grid of the stored statistics with the TimescaleDB layout
        (:mod:`sunarchive.resolution`; the plain layout keeps decimal values).
        ``reader``, ``sql_limits``: who user SQL runs as, and its limits (:mod:`.user_sql`)."""
        super().__init__(profiles, timezone, retention_days)
        self.reader_role = reader or user_sql.ReaderRole()
        self.sql_limits = sql_limits or SqlLimits()
        self._timescale_grid: ValueGrid = timescale_grid
        self.copy_streams = max(1, copy_streams)
        self.url = url
        self.location = redact(url)
        self.read_only = read_only
        self._password = password
        self._connect_timeout_s = connect_timeout_s
        self._timescale_policies = timescale_policies
        self._writer_con: Con | None = None
        self._reader_con: Con | None = None
        self._read_lock = threading.Lock()
        self._use(layouts.PlainLayout())
        self.timescale_version: str | None = None
        self.notes: list[str] = []
        self.partitions = Partitions()
        self._has_newest_table = False
        self._upstream: str | None = None
        self._arrow = ArrowReader(url, password, connect_timeout_s, self.location)
        self._helpers = parallel.HelperConnections(self._connect)
        self._writer_con = self._connect()  # a wrong URL fails here, clearly

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> Con:
        try:
            con: Con = psycopg.connect(self.url, password=self._password, autocommit=True,
                                       connect_timeout=self._connect_timeout_s)
        except psycopg.OperationalError as exc:
            message = f"cannot connect to {redact(self.url)}: {str(exc).strip()}"
            if refused_for_good(str(exc)):
                raise ConfigError(message) from None
            raise TransientStoreError(message) from None
        con.execute("SET TIME ZONE 'UTC'")
        return con

    @property
    def _con(self) -> Con:
        if self._writer_con is None or self._writer_con.closed:
            self._writer_con = self._connect()
        return self._writer_con

    def _lost(self, exc: Exception) -> TransientStoreError:
        """Forget a broken writer connection; the next call reconnects. A transaction the
        server rolled back leaves the connection usable: that is a :class:`RolledBack`.
        Either way the partitions the transaction made may be gone: they are read again."""
        self.partitions.forget()
        if str(getattr(exc, "sqlstate", "") or "").startswith(ROLLBACK_CLASS):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return RolledBack(f"PostgreSQL rolled back the write ({redact(self.url)}): "
                              f"{first}")
        if self._writer_con is not None:
            with suppress(psycopg.Error):
                self._writer_con.close()
        self._writer_con = None
        return TransientStoreError(f"PostgreSQL connection lost ({redact(self.url)}): "
                                   f"{str(exc).strip()}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        con = self._con
        try:
            with con.transaction():
                yield
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        try:
            cur = self._con.execute(sql.encode(), params)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None
        return int(cur.rowcount)

    def _fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql.encode(), params).fetchall()
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _reader(self) -> Con:
        if self._reader_con is None or self._reader_con.closed:
            self._reader_con = self._connect()
        return self._reader_con

    def _read_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._read_lock:
            return self._arrow.read(sql, params)

    def _read(self, fetch: Callable[[Con], pa.Table]) -> pa.Table:
        """Run a read on the reader connection; a connection lost since is renewed once."""
        with self._read_lock:
            try:
                return fetch(self._reader())
            except psycopg.OperationalError:
                self._reader_con = None
            try:
                return fetch(self._reader())
            except psycopg.OperationalError as exc:
                self._reader_con = None
                raise TransientStoreError(f"PostgreSQL unreachable ({redact(self.url)}): "
                                          f"{str(exc).strip()}") from None

    def _append(self, profile: Profile, table_name: str, rows: pa.Table) -> None:
        self.layout_impl.before_append(self, profile, table_name, rows)
        self._copy(table_name, rows)

    def _copy(self, table_name: str, rows: pa.Table) -> None:
        try:
            self._copy_raw(self._con, table_name, rows)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _load_incoming(self, profile: Profile, rows: pa.Table) -> None:
        self._execute(f"CREATE TEMP TABLE {INCOMING} (LIKE {Q(profile.table('1s'))})")
        self._copy(INCOMING, rows)

    # -- schema ------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        """Create or upgrade everything (idempotent); decides the layout on first use."""
        with self._lock:
            changes = self.migrate()
            why = self._choose_layout()
            changes.extend(self.layout_impl.set_up(self, why))
            with self._transaction():
                upstream_schema.ensure(self._schema())   # before the reader role's grants
                changes.extend(self.layout_impl.tier_views(self))
                changes.extend(plain_views.ensure(self._schema(), self.layout))
                changes.extend(self.ensure_named_rollups())
                changes.extend(homepot_schema.ensure(self._schema(), self._homepot_layout()))
            changes.extend(self._ensure_reader_role())
            self._load_horizons()
            self._has_newest_table = True
            return changes

    def _ensure_reader_role(self) -> list[str]:
        """The role user SQL runs as; a server that does not let this role create it gets
        a note, and user SQL is refused until it exists (docs/postgresql.md)."""
        if self.reader_role.as_owner:
            return []
        try:
            with self._transaction():
                return user_sql.ensure_reader_role(self._con, self.reader_role)
        except psycopg.errors.InsufficientPrivilege as exc:
            note = (f"cannot create or grant the SQL reader role "
                    f"{self.reader_role.name!r} ({str(exc).strip().splitlines()[0]}); "
                    "`sunarchive sql` and /api/v1/sql are refused until an administrator "
                    "creates it (docs/postgresql.md)")
            log.warning(note)
            self.notes.append(note)
            return []

    def load_state(self) -> None:
        """For readers: learn the layout and rollup horizons without changing anything."""
        with self._lock:
            rows = self._fetch("SELECT value FROM sunarchive_meta WHERE key = 'layout'")
            if not rows:
                raise ConfigError(f"{redact(self.url)}: no sunarchive store here yet; run "
                                  "`sunarchive setup` first")
            self._use(layouts.adopt(self.layout_impl, str(rows[0][0])))
            self.timescale_version = timescale.installed_version(self._con)
            for profile in self.profiles.values():
                self.partitions.load(self._con, profile)
            self._load_horizons()
            self._has_newest_table = self.schema_version() >= 1

    def _use(self, layout: Layout) -> None:
        """Hand the layout-dependent steps to ``layout`` from now on. Writers round to its
        grid: binary on TimescaleDB (its Gorilla float compression needs ~4× fewer bytes for
        such values, unless configured otherwise), decimal on plain PostgreSQL."""
        self.layout_impl = layout
        self.layout = layout.name
        self.value_grid = layout.value_grid(self._timescale_grid)

    def _choose_layout(self) -> str:
        """Choose the layout (:func:`.layouts.choose`), remember it in sunarchive_meta and use
        it; returns why not TimescaleDB ('' if it is available)."""
        rows = self._fetch("SELECT value FROM sunarchive_meta WHERE key = 'layout'")
        stored = str(rows[0][0]) if rows else None
        version, why = timescale.ensure_extension(self._con)
        self.timescale_version = version
        name, why, notes = layouts.choose(stored, version, why, redact(self.url))
        self.notes.extend(notes)
        self._execute("INSERT INTO sunarchive_meta VALUES ('layout', %s) ON CONFLICT (key) "
                      "DO UPDATE SET value = EXCLUDED.value", [name])
        self._use(layouts.adopt(self.layout_impl, name))
        return why

    def abilities(self) -> frozenset[str]:
        return self.layout_impl.abilities()

    def create_aggregates(self) -> list[str]:
        """TimescaleDB: create or repair hypertables, aggregates and policies."""
        return self.layout_impl.create_aggregates(self)

    engine_errors = (psycopg.Error,)

    def _create_tables(self, profile: Profile) -> list[str]:
        return self.layout_impl.create_tables(self, profile)

    def _grow_tables(self, old: Profile, new: Profile) -> list[str]:
        return self.layout_impl.grow_tables(self, old, new)

    def _homepot_layout(self) -> homepot_schema.Layout:
        return homepot_schema.Layout(self.layout, self.tz.key, self._timescale_policies)

    def _guarded(self, change: Callable[[], list[str]]) -> list[str]:
        """Run ``change`` on the writer connection; a lost connection is transient."""
        try:
            return change()
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _retention_for(self, profile: Profile) -> dict[str, float | None]:
        return {tier: self.retention_of(profile, tier) for tier in ALL_TIERS}

    # -- rollups: the layout's (program-maintained or continuous aggregates) -----------------
    def _after_write(self, profile: Profile, times: list[np.ndarray[Any, Any]],
                     merged: bool) -> None:
        self._record_newest(profile, times)
        self.layout_impl.after_write(self, profile, times, merged)

    def _record_newest(self, profile: Profile, times: list[np.ndarray[Any, Any]]) -> None:
        """Keep the newest stored second in ``sunarchive_newest``, in the write's transaction.

        ``MAX(time)`` over a partitioned 1 s table without a b-tree index reads every
        partition (2.4 s for 30 days × 8 panels); this row answers in well under 1 ms and is
        right for readers in other processes too."""
        newest = max((int(t.max()) for t in times if len(t)), default=None)
        if newest is not None:
            self._execute("INSERT INTO sunarchive_newest VALUES (%s, %s) ON CONFLICT "
                          "(measurement) DO UPDATE SET time_s = GREATEST("
                          "sunarchive_newest.time_s, EXCLUDED.time_s)", [profile.name, newest])

    def last_time_s(self, measurement: str) -> int | None:
        if not self._has_newest_table:  # a store not yet migrated to version 1
            return super().last_time_s(measurement)
        rows = self._read_rows("SELECT time_s FROM sunarchive_newest WHERE measurement = %s",
                               [measurement])
        if rows:
            return int(rows[0][0])
        return super().last_time_s(measurement)

    def _read_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A small read on the psycopg reader (one round trip; ADBC's COPY path takes three)."""
        found: list[list[tuple[Any, ...]]] = []

        def fetch(con: Con) -> pa.Table:
            found[:] = [con.execute(sql.encode(), params).fetchall()]
            return pa.table({})

        self._read(fetch)
        return found[0]

    def _read_sorted(self, sql: str, keys: list[str],
                     params: Sequence[Any] | None) -> pa.Table:
        """Sorted by pyarrow: the few thousand rows of a dashboard read sort in ~0.2 ms here
        against ~1.4 ms on the server, and text sorts by code point as on DuckDB."""
        table = self._read_arrow(sql, params)
        return table.sort_by([(k, "ascending") for k in keys]) if table.num_rows else table

    def latest_rows(self, measurement: str, window_s: int = 600) -> pa.Table:
        """The newest row of each series in the last ``window_s`` seconds of data, picked by
        the server, so only those rows travel (one per series).

        TimescaleDB: one probe of the ``(series_id, time DESC)`` index per series. Plain
        layout (BRIN on time, no series index): as every engine (the probe of the last
        seconds first), the newest row of each series picked by the server."""
        return self.layout_impl.latest_rows(self, measurement, window_s)

    def _latest_columns(self, profile: Profile) -> str:
        cols = ["time", *profile.tag_column_names, *(c.name for c in profile.stats_columns())]
        return ", ".join(f"t.{Q(c)}" for c in cols)

    def _newest_by_series(self, measurement: str, since_s: int) -> pa.Table:
        profile = self.profiles[measurement]
        return self._read_arrow(
            f"SELECT {self._latest_columns(profile)} FROM sunarchive_series s CROSS JOIN "
            f"LATERAL (SELECT * FROM {Q(profile.table('1s'))} t WHERE t.series_id = "
            f"s.series_id AND t.time >= {self.ts(since_s)} ORDER BY t.time DESC LIMIT 1) t "
            "WHERE s.measurement = %s ORDER BY s.series_id", [measurement])

    def _newest_since(self, measurement: str, since_s: int | None) -> pa.Table:
        if since_s is None:
            return super()._newest_since(measurement, None)
        profile = self.profiles[measurement]
        table, since = Q(profile.table("1s")), f"t.time >= {self.ts(since_s)}"
        return self._read_arrow(
            f"SELECT {self._latest_columns(profile)} FROM {table} t JOIN (SELECT t.series_id, "
            f"MAX(t.time) AS time FROM {table} t WHERE {since} GROUP BY t.series_id) newest "
            f"USING (series_id, time) WHERE {since} ORDER BY t.series_id")

    def rollup(self, measurement: str, complete_until_s: int | None) -> int:
        return self.layout_impl.rollup(self, measurement, complete_until_s)

    def refresh(self, measurement: str, start_s: int, end_s: int) -> int:
        return self.layout_impl.refresh(self, measurement, start_s, end_s)

    def _materialized(self, profile: Profile, tier: str) -> tuple[str, int | None]:
        """The relation holding a tier's complete buckets and its horizon or watermark (s):
        the rollup table (plain), the aggregate's materialized hypertable (TimescaleDB)."""
        return self.layout_impl.materialized(self, profile, tier)

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, now: datetime) -> dict[str, int]:
        """Plain layout: drop old partitions and rollup rows. TimescaleDB: run the retention
        procedure its background job runs (chunk drops; no row counts)."""
        return self.layout_impl.apply_retention(self, now)

    def _delete_before(self, profile: Profile, tier: str, cutoff: int) -> int:
        if tier == "1s":
            return self.partitions.drop_before(self._con, profile, cutoff)
        return super()._delete_before(profile, tier, cutoff)

    def write(self, fresh: StatsRows, merge: StatsRows, tags: dict[int, tuple[str, ...]],
              batch_id: int | None = None) -> bool:
        if self.read_only:
            raise ConfigError("this store was opened read-only")
        fresh, merge = self.layout_impl.admit(self, fresh, merge)
        parts = parallel.parts_for(len(fresh), self.copy_streams)
        for attempt in range(1, ROLLBACK_ATTEMPTS + 1):
            try:
                if batch_id is None or parts < 2:
                    return super().write(fresh, merge, tags, batch_id)
                return self._write_in_parts(fresh, merge, tags, batch_id, parts)
            except RolledBack as exc:
                if attempt == ROLLBACK_ATTEMPTS:
                    raise
                log.info("%s; trying again (%d of %d)", exc, attempt + 1, ROLLBACK_ATTEMPTS)
                time.sleep(ROLLBACK_PAUSE_S * attempt)
        raise AssertionError("unreachable")

    def raw_dropped(self, measurement: str, start_s: int, end_s: int,
                    look: bool = True) -> list[tuple[int, int]]:
        """TimescaleDB: the ranges (UTC epoch s, whole) overlapping [start_s, end_s) whose 1 s
        chunks were dropped, by retention or by hand, while the rollups keep what was computed
        from them (:mod:`.drops`); ``look``: search the catalog for drops made by hand first.
        [] on the plain layout."""
        return self.layout_impl.raw_dropped(self, measurement, start_s, end_s, look)

    def has_raw_chunks(self, measurement: str, start_s: int, end_s: int) -> bool:
        """TimescaleDB: does a chunk of the 1 s hypertable overlap [start_s, end_s)? (True on
        the plain layout, which drops nothing it has not rolled up.)"""
        return self.layout_impl.has_raw_chunks(self, measurement, start_s, end_s)

    def _write_in_parts(self, fresh: StatsRows, merge: StatsRows,
                        tags: dict[int, tuple[str, ...]], batch_id: int, parts: int) -> bool:
        """A large batch: its fresh rows in ``parts`` parallel COPY streams, each part
        committed and recorded on its own, then the batch on the writer connection."""
        measurement = fresh.measurement
        profile = self.profiles[measurement]
        with self._lock:
            if self.last_batch(measurement) >= batch_id:
                return False
            self.layout_impl.before_parts(self, profile, fresh)
            try:
                done = parallel.committed_parts(self._con, measurement, batch_id)
                todo = [(index, piece) for index, piece in
                        enumerate(parallel.split(fresh, parts)) if index not in done]
                # connections are opened here, on the writer thread: one per part, none shared
                cons = [self._con] + [self._helpers.get(i) for i in range(len(todo) - 1)]
                cons = cons[:len(todo)]
                parallel.run_parallel([
                    self._part_job(con, profile, piece, tags, batch_id, index)
                    for con, (index, piece) in zip(cons, todo, strict=True)])
            except psycopg.OperationalError as exc:
                self._helpers.close()
                raise self._lost(exc) from None
            with self._transaction():
                if not self._claim_batch(measurement, batch_id):
                    return False
                self._merge_all(profile, merge, tags)
                self._after_write(profile, written_seconds(fresh, merge), len(merge) > 0)
                parallel.forget_parts(self._con, measurement, batch_id)
        return True

    def _part_job(self, con: Con, profile: Profile, piece: StatsRows,
                  tags: dict[int, tuple[str, ...]], batch_id: int,
                  index: int) -> Callable[[], None]:
        """Copy part ``index`` of a batch on ``con``, which no other part uses."""
        def job() -> None:
            parallel.copy_part(con, profile.name, batch_id, index, lambda c: self._copy_raw(
                c, profile.table("1s"), rows_to_arrow(profile, piece, tags)))
        return job

    def _copy_raw(self, con: Con, table_name: str, rows: pa.Table) -> None:
        """Binary COPY without the writer connection's error handling (for part jobs)."""
        cols = ", ".join(Q(c) for c in rows.column_names)
        with con.cursor() as cur, cur.copy(
                f"COPY {Q(table_name)} ({cols}) FROM STDIN (FORMAT BINARY)".encode()) as copy:
            for chunk in copy_chunks(rows):
                copy.write(chunk)

    # -- reading -----------------------------------------------------------------------------
    def read_sql(self, text: str) -> QueryResult:
        return QueryResult(user_sql.run(self.url, self._password, self.reader_role,
                                        self.sql_limits, self._connect_timeout_s, text,
                                        self._upstream_schema()))

    def _upstream_schema(self) -> str:
        """The store's upstream schema (:mod:`sunarchive.storage.upstream_schema`)."""
        if self._upstream is None:
            with self._lock:
                schema = self._fetch("SELECT current_schema()")[0][0]
            self._upstream = upstream_schema.name_for(str(schema))
        return self._upstream

    def sql(self, text: str) -> QueryResult:
        def read_only(con: Con) -> pa.Table:
            con.execute("BEGIN TRANSACTION READ ONLY")
            try:
                return rows_table(con.execute(text.encode()))
            finally:
                if not con.closed:
                    con.execute("ROLLBACK")

        return QueryResult(self._read(read_only))

    def status(self) -> dict[str, Any]:
        tables = []
        present = {str(r[0]) for r in self._fetch(   # a profile newer than the store: none
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()")}
        for profile in self.profiles.values():
            for tier in ALL_TIERS:
                name, stored = profile.table(tier), self.layout_impl.stored_table(
                    self, profile, tier)
                if stored not in present:
                    continue
                row = self._read_arrow(f"SELECT COUNT(*) AS n, MIN(time) AS first, "
                                       f"MAX(time) AS last FROM {Q(stored)}").to_pylist()[0]
                if not row["n"]:
                    continue
                nbytes = self.layout_impl.relation_bytes(self._con, stored)
                tables.append({
                    "table": name, "measurement": profile.name, "tier": tier,
                    "rows": int(row["n"]), "first": iso_time(row["first"]),
                    "last": iso_time(row["last"]), "bytes": nbytes,
                    "bytes_per_row": round(nbytes / row["n"], 1),
                    "rollup_horizon": iso_seconds(self._horizons.get((profile.name, tier))),
                })
        events = self._fetch("SELECT COUNT(*) FROM sunarchive_events")
        version = self._fetch("SHOW server_version")[0][0]
        info: dict[str, Any] = {
            "engine": "postgres", "server_version": str(version), "url": redact(self.url),
            "layout": self.layout, "timezone": str(self.tz), "tables": tables,
            "events": int(events[0][0]) if events else 0,
            "inferred": self.inferred_profiles()}
        info.update(self.layout_impl.status(self))
        return info

    def chunks(self, table: str) -> list[dict[str, Any]]:
        """Chunks (TimescaleDB) or partitions (plain) of a table, oldest first."""
        profile = next((p for p in self.profiles.values() if table in
                        (p.table(t) for t in ALL_TIERS)), None)
        if profile is None:   # a profile's plain view (dtu): its 1 s table
            profile = next((p for p in self.profiles.values() if p.view == table), None)
            if profile is None:
                raise ConfigError(f"unknown table {table!r}")
            if not view_tables.kept(profile, self.layout):   # else a hypertable of its own
                table = profile.table("1s")
        return self.layout_impl.chunks(self, profile, table)

    def compress(self, older_than_s: int) -> list[str]:
        """TimescaleDB: compress 1 s chunks older than this (idempotent)."""
        return self.layout_impl.compress(self, older_than_s)

    def close(self) -> None:
        self._arrow.close()
        self._helpers.close()
        for con in (self._writer_con, self._reader_con):
            if con is not None and not con.closed:
                con.close()
        self._writer_con = self._reader_con = None


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
