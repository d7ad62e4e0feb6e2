"""The embedded DuckDB engine: one file, one writer connection, readers on cursors.

Instants are stored as UTC ``TIMESTAMP`` (bucketing a ``TIMESTAMPTZ`` is many times slower);
the time zone of every connection and cursor is UTC so ``NOW()`` comparisons in user SQL
behave. The rollup logic is shared with the PostgreSQL engine
(:mod:`sunarchive.storage.tiered`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sunarchive.errors import StoreLockedError as StoreLockedError  # older import place
from sunarchive.model import ConfigError, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ALL_TIERS, DUCKDB
from sunarchive.storage import plain_views
from sunarchive.storage.base import QueryResult
from sunarchive.storage.duckdb import user_sql
from sunarchive.storage.duckdb.cut_short import missing_blocks
from sunarchive.storage.duckdb.schema import create_schema, table_columns, table_names
from sunarchive.storage.duckdb.sizes import table_bytes
from sunarchive.storage.migrations import rename_rollup_tables
from sunarchive.storage.tiered import INCOMING, TieredStore, iso_seconds, iso_time
from sunarchive.storage.user_sql import SqlLimits
from sunarchive.upstream.homepot import schema as homepot_schema

Q = DUCKDB.quote


def not_a_duckdb_file(path: Path, exc: duckdb.Error) -> ConfigError:
    """One line for a file DuckDB cannot open (empty, damaged, not a database)."""
    text = str(exc).strip()
    if "not a valid DuckDB database file" in text:
        return ConfigError(f"{path}: not a DuckDB database file (empty or damaged); point "
                           "--db at a sunarchive store, or move the file away and run "
                           "`sunarchive setup`")
    first = text.splitlines()[0] if text else type(exc).__name__
    return ConfigError(f"{path}: cannot open the DuckDB file: {first}")


def refuse_cut_short(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A file too short for the blocks it uses is damaged: refuse it rather than answer
    from the blocks that are left (:mod:`sunarchive.storage.duckdb.cut_short`)."""
    if missing := missing_blocks(con, path):
        con.close()
        raise ConfigError(f"{path}: the DuckDB file is cut short ({missing} blocks in use "
                          "lie past its end; a full disk or an interrupted copy); restore "
                          "it from a backup, or move it away and run `sunarchive setup`")


class DuckDBStore(TieredStore):
    """Store on one DuckDB file. Methods other than readers run on the writer thread."""

    engine = "duckdb"
    dialect = DUCKDB

    def __init__(self, path: Path, profiles: dict[str, Profile], timezone: str = "UTC",
                 memory_limit_mb: int = 256, threads: int = 2, read_only: bool = False,
                 retention_days: dict[str, float | None] | None = None,
                 sql_limits: SqlLimits | None = None) -> None:
        super().__init__(profiles, timezone, retention_days)
        self.sql_limits = sql_limits or SqlLimits()
        self.path = path
        self.location = str(path)
        self.read_only = read_only
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise ConfigError(f"{path}: no store here yet; run `sunarchive demo` or "
                              "`sunarchive setup` first")
        try:
            self._con = duckdb.connect(str(path), read_only=read_only,
                                       config={"memory_limit": f"{memory_limit_mb}MB",
                                               "threads": threads, **user_sql.CLOSED_CONFIG})
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"{path} is in use by another sunarchive process (DuckDB allows one "
                    "writer per file). Stop it, or read through its API.") from None
            raise not_a_duckdb_file(path, exc) from None
        except duckdb.Error as exc:
            raise not_a_duckdb_file(path, exc) from None
        refuse_cut_short(self._con, path)
        self._set_utc()
        user_sql.lock_down(self._con)
        self._tables: set[str] | None = None
        """The store's tables, case-folded, once read (this process is the file's one
        writer, and every table it makes is added)."""
        self._newest: dict[str, int | None] = {}
        """Newest 1 s row per measurement. The DuckDB file has one writing process — this
        one — so the value stays right as long as :meth:`write` keeps it current."""

    def last_time_s(self, measurement: str) -> int | None:
        if measurement not in self._newest:
            self._newest[measurement] = super().last_time_s(measurement)
        return self._newest[measurement]

    def write(self, fresh: StatsRows, merge: StatsRows, tags: dict[int, tuple[str, ...]],
              batch_id: int | None = None) -> bool:
        written = super().write(fresh, merge, tags, batch_id)
        measurement = fresh.measurement or merge.measurement
        if written and measurement in self._newest:
            times = [int(t.max()) for t in (fresh.time_s, merge.time_s) if len(t)]
            known = self._newest[measurement]
            self._newest[measurement] = max([*times, *([] if known is None else [known])],
                                            default=None)
        return written

    def apply_retention(self, now: datetime) -> dict[str, int]:
        self._newest.clear()   # deleted rows: read the newest again when asked
        return super().apply_retention(now)

    def _set_utc(self) -> None:
        """Time zone UTC for this connection and every cursor of it (readers, user SQL), so
        stored UTC TIMESTAMPs compare right with NOW() whatever the machine's zone (a cursor
        starts from the global setting, which DuckDB takes from the machine)."""
        with contextlib.suppress(duckdb.Error):  # without ICU, DuckDB is always UTC
            self._con.execute("SET GLOBAL TimeZone = 'UTC'")
            self._con.execute("SET TimeZone = 'UTC'")

    def time_param(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)  # UTC TIMESTAMP

    # -- engine primitives -------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        cur = self._con.execute(sql, params) if params is not None else self._con.execute(sql)
        head = sql.lstrip()[:6].upper()
        if head in ("INSERT", "DELETE", "UPDATE"):
            row = cur.fetchone()
            return int(row[0]) if row else 0
        return -1

    def _fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._con.execute(sql, params) if params is not None else self._con.execute(sql)
        return cur.fetchall()

    def _read_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        table = fetch_arrow(self._con.cursor(), sql, list(params) if params else None)
        return table if table is not None else pa.table({})

    def _append(self, profile: Profile, table_name: str, rows: pa.Table) -> None:
        self._con.register("_sunarchive_rows", rows)
        self._con.execute(f"INSERT INTO {Q(table_name)} BY NAME SELECT * FROM _sunarchive_rows")
        self._con.unregister("_sunarchive_rows")

    def _load_incoming(self, profile: Profile, rows: pa.Table) -> None:
        self._con.register("_sunarchive_rows", rows)
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE {INCOMING} AS "
                          "SELECT * FROM _sunarchive_rows")
        self._con.unregister("_sunarchive_rows")

    # -- schema ------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        with self._lock:
            changes = self.migrate()
            changes.extend(rename_rollup_tables(self._schema()))   # profiles added since
            self._tables = table_names(self._con)
            changes.extend(create_schema(self._con, self.profiles.values(), self._tables))
            with self._transaction():
                changes.extend(self.ensure_tier_views())
                changes.extend(plain_views.ensure(self._schema(), None))
            changes.extend(self.ensure_named_rollups())
            with self._transaction():
                changes.extend(homepot_schema.ensure(self._schema(), homepot_schema.Layout(None)))
            self._load_horizons()
            return changes

    engine_errors = (duckdb.Error,)

    def _create_tables(self, profile: Profile) -> list[str]:
        if self._tables is None:
            self._tables = table_names(self._con)
        return create_schema(self._con, [profile], self._tables)   # one transaction

    def _grow_tables(self, old: Profile, new: Profile) -> list[str]:
        return self._create_tables(new)   # adds the columns a profile gained

    def read_sql(self, text: str) -> QueryResult:
        return QueryResult(user_sql.run(self._con, text, self.sql_limits))

    def sql(self, text: str) -> QueryResult:
        con = self._con.cursor()
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
        con = self._con.cursor()
        size = os.path.getsize(self.path) if self.path.exists() else 0
        sizes = table_bytes(con)
        present = table_names(con)   # a profile newer than the store has no tables yet
        tables = []
        for profile in self.profiles.values():
            for tier in ALL_TIERS:
                name, stored = profile.table(tier), self.stored_table(profile, tier)
                if stored.casefold() not in present:
                    continue
                row = con.execute(f"SELECT COUNT(*), MIN(time), MAX(time) FROM {Q(stored)}"
                                  ).fetchone()
                assert row is not None
                count, first, last = int(row[0]), row[1], row[2]
                if not count:
                    continue
                nbytes = sizes.get(stored, 0)
                tables.append({
                    "table": name, "measurement": profile.name, "tier": tier, "rows": count,
                    "first": iso_time(first), "last": iso_time(last), "bytes": nbytes,
                    "bytes_per_row": round(nbytes / count, 1) if count else None,
                    "rollup_horizon": iso_seconds(self._horizons.get((profile.name, tier))),
                })
        events = con.execute("SELECT COUNT(*) FROM sunarchive_events").fetchone()
        return {"engine": "duckdb", "duckdb_version": duckdb.__version__,
                "path": str(self.path), "file_bytes": size, "timezone": str(self.tz),
                "tables": tables, "events": int(events[0]) if events else 0,
                "inferred": self.inferred_profiles()}

    def columns_of(self, table: str) -> list[str]:
        return table_columns(self._con.cursor(), table)

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
