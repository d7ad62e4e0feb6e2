"""A SQL engine under the tiered store: the primitives each engine implements and what every
layer above shares (profiles, zone, lock, numbered migrations).

Layers, each a module about one concern, stacked in this order (each uses those below):
:mod:`.engine` → :mod:`.catalog` (profiles, meta, state labels, series, events) →
:mod:`.rollups` (program-maintained rollups, horizons, tier views) → :mod:`.writes` (the 1 s
tier: append, merge, replace) → :mod:`.retention` → :mod:`.reads` (tier reads), assembled as
:class:`sunarchive.storage.tiered.TieredStore`. Engines (DuckDB, PostgreSQL) subclass that.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from sunarchive.profiles.spec import Profile
from sunarchive.resolution import ValueGrid
from sunarchive.rollup import (
    Dialect,
)
from sunarchive.storage import migrations
from sunarchive.storage.base import QueryResult

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

class Engine(ABC):
    """The primitives an engine provides (a transaction on the writer connection, statements,
    Arrow reads, loading Arrow rows) and what the layers above share: the profiles, the site
    time zone, retention settings, the store lock and the numbered migrations.

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
        """Whether a relation of that name is in the store's schema, asked on the writer
        connection: for the opening and writing paths. Threads beside a running writer use
        :meth:`has_relation`."""
        return self._schema().has_table(name)

    def has_relation(self, name: str) -> bool:
        """:meth:`has_table` on the read path: safe from any thread while the writer works
        (DuckDB's writer connection refuses a second caller)."""
        return self._read_arrow("SELECT 1 FROM information_schema.tables WHERE table_name = "
                                f"{self._p} AND table_schema = current_schema()",
                                [name]).num_rows > 0

    @abstractmethod
    def sql(self, text: str) -> QueryResult:
        """Run the program's own read-only SQL (user text goes through :meth:`read_sql`)."""

    @abstractmethod
    def read_sql(self, text: str) -> QueryResult:
        """Run one user statement where it cannot write, read files or change settings,
        within the store's ``sql_limits`` (:mod:`sunarchive.storage.user_sql`)."""


def iso_seconds(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def iso_time(value: datetime | None) -> str | None:
    """ISO 8601 with offset of a stored time (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
