"""Open the store a database URL names: ``duckdb:///path`` or ``postgresql://...``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import psycopg

from sunarchive.model import ConfigError
from sunarchive.profiles.loader import parse_profile
from sunarchive.profiles.spec import Profile
from sunarchive.resolution import ValueGrid
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.storage.postgres.user_sql import ReaderRole
from sunarchive.storage.user_sql import SqlLimits
from sunarchive.upstream import ps100_clearsky

DUCKDB_PREFIX = "duckdb://"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
SqlStore = DuckDBStore | PostgresStore


@dataclass(frozen=True)
class StoreOptions:
    """Everything needed to open a store besides the URL."""

    profiles: dict[str, Profile]
    timezone: str = "UTC"
    memory_limit_mb: int = 256
    threads: int = 2
    retention_days: dict[str, float | None] | None = None
    password: str | None = None
    copy_streams: int = 2
    timescale_grid: ValueGrid = "binary"
    sql_limits: SqlLimits = field(default_factory=SqlLimits)
    reader_role: ReaderRole = field(default_factory=ReaderRole)
    timezone_explicit: bool = True
    """``timezone`` was asked for (a flag, the config): a store recorded with another site
    zone is refused. False: the store's recorded zone is adopted."""
    ps100: Any = None
    """The ``ps100:`` settings (:class:`sunarchive.upstream.ps100.Ps100Settings`): the
    panels of the ``ps100_panels`` registry (None: defaults)."""


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_PREFIXES)


def duckdb_path(url: str) -> Path:
    """File of a ``duckdb:///relative/path`` or ``duckdb:////absolute/path`` URL or bare path."""
    if url.startswith(DUCKDB_PREFIX):
        rest = url[len(DUCKDB_PREFIX):]
        if not rest.startswith("/"):
            raise ConfigError(f"database_url {url!r}: write duckdb:///relative/path or "
                              "duckdb:////absolute/path")
        return Path(rest[1:])
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"database_url: unknown scheme {scheme!r}; use duckdb:///path or "
                          "postgresql://user@host:port/dbname")
    return Path(url)


def _server_slug(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", url.split("@")[-1].split("?")[0])


def live_file_for_url(url: str) -> Path:
    """Where a running instance publishes its live snapshot for the store at ``url``."""
    if is_postgres(url):
        return Path("sunarchive-data") / f"postgres-{_server_slug(url)}.live.json"
    return live_file_for(duckdb_path(url))


def default_spool_dir(url: str) -> Path:
    """Where batches wait while the store at ``url`` is unreachable."""
    if is_postgres(url):
        return Path("sunarchive-data") / f"postgres-{_server_slug(url)}.spool"
    path = duckdb_path(url)
    return path.with_name(path.name + ".spool")


def live_file_for(db_path: Path) -> Path:
    """Where a running instance publishes its live snapshot for this DuckDB file."""
    return db_path.with_name(db_path.name + ".live.json")


def adopt_stored_profiles(store: SqlStore) -> list[str]:
    """Add the profiles earlier runs created at run time (inferred from line protocol)."""
    if not store.has_table("sunarchive_profiles"):   # a reader of a store not migrated yet
        return []
    documents = store.stored_profiles()
    added = []
    for doc in documents:
        profile = parse_profile(doc, f"<stored profile {doc.get('name')!r}>")
        if profile.name not in store.profiles:
            store.profiles[profile.name] = profile
            added.append(profile.name)
    return added


def open_store(url: str, options: StoreOptions, read_only: bool = False,
               setup: bool = True) -> SqlStore:
    """Open the store at ``url``; readers load its state, writers set it up (unless
    ``setup`` is False: the caller runs ``store.setup()`` itself)."""
    store = _connect(url, options, read_only)
    try:
        with engine_errors_named(store):
            _prepare(store, options, read_only, setup)
    except BaseException:
        store.close()
        raise
    return store


@contextmanager
def engine_errors_named(store: SqlStore) -> Iterator[None]:
    """An engine error while a store is being opened or set up (a damaged file, rights
    missing) becomes a :class:`ConfigError` of one line naming the store."""
    try:
        yield
    except (duckdb.Error, psycopg.Error) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ConfigError(f"{store.location}: cannot read the store: {first}") from None


def _connect(url: str, options: StoreOptions, read_only: bool) -> SqlStore:
    """The engine's store object, connected (a file that is no DuckDB database, a server
    that cannot be reached or refuses: one-line errors naming the file or URL)."""
    if is_postgres(url):
        return PostgresStore(url, options.profiles, timezone=options.timezone,
                              retention_days=options.retention_days, password=options.password,
                              read_only=read_only, copy_streams=options.copy_streams,
                              timescale_grid=options.timescale_grid,
                              reader=options.reader_role, sql_limits=options.sql_limits)
    return DuckDBStore(duckdb_path(url), options.profiles, timezone=options.timezone,
                       memory_limit_mb=options.memory_limit_mb, threads=options.threads,
                       read_only=read_only, retention_days=options.retention_days,
                       sql_limits=options.sql_limits)


def _prepare(store: SqlStore, options: StoreOptions, read_only: bool, setup: bool) -> None:
    """Readers: check that this is a store and load its state; writers: set it up."""
    store.schema_version()   # a store written by a newer sunarchive is refused here
    if read_only:
        require_store(store)
    settle_site_zone(store, options.timezone_explicit)
    if read_only:
        store.load_state()
        adopt_stored_profiles(store)
    elif setup:
        store.setup()
        if adopt_stored_profiles(store):
            store.setup()
        record_site_zone(store)
        ps100_clearsky.prepare(store, options.ps100)


READER_TABLES = ("sunarchive_meta", "sunarchive_rollup_state")
"""Bookkeeping tables every sunarchive store has (readers need them; setup creates them)."""


def require_store(store: SqlStore) -> None:
    """:class:`ConfigError` naming the store if it lacks sunarchive's bookkeeping tables (an
    empty PostgreSQL database, a DuckDB file made by something else or half set up)."""
    for table in READER_TABLES:
        if not store.has_table(table):
            raise ConfigError(
                f"{store.location}: not a sunarchive store (table {table} is missing); create "
                "the schema with `sunarchive setup` (same --db / --database-url), or point "
                "at a store")


SITE_ZONE_KEY = "site_timezone"
"""``sunarchive_meta`` key of the site's IANA zone, recorded by the first setup."""


def stored_site_zone(store: SqlStore) -> str | None:
    """The site zone recorded in the store (None: a new store, or one from before zones were
    recorded)."""
    if not store.has_table("sunarchive_meta"):   # a new store: nothing recorded
        return None
    return store.meta_values(SITE_ZONE_KEY).get(SITE_ZONE_KEY)


def settle_site_zone(store: SqlStore, explicit: bool) -> None:
    """Daily buckets follow one site zone for the life of a store: a zone asked for that
    differs from the recorded one is refused once the store holds data (days would overlap
    or leave holes); without one asked for, the recorded zone is used."""
    stored = stored_site_zone(store)
    if stored is None or stored == store.tz.key:
        return
    if explicit and _holds_no_data(store):
        if not store.read_only:   # nothing bucketed yet: the zone may still change
            store.put_meta({SITE_ZONE_KEY: store.tz.key})
        return
    if explicit:
        raise ConfigError(
            f"this store's site time zone is {stored} (recorded at setup); --timezone / "
            f"timezone {store.tz.key} would mix {stored} days and {store.tz.key} days in the "
            f"daily tier. Give --timezone {stored}, or leave the zone out")
    store.tz = ZoneInfo(stored)


def _holds_no_data(store: SqlStore) -> bool:
    return all(not store.has_table(profile.table("1s")) or store.last_time_s(name) is None
               for name, profile in store.profiles.items())


def record_site_zone(store: SqlStore) -> None:
    """Record the store's site zone once (the first setup, or the first setup of a store made
    before zones were recorded)."""
    if stored_site_zone(store) is None:
        store.put_meta({SITE_ZONE_KEY: store.tz.key})
