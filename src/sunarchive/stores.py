"""The store the settings name: its options, and opening it to read or to set up and write.

Apart from :mod:`sunarchive.app` (which assembles a running collector with its web server
and sources) so the commands that only open the store start without loading those."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sunarchive.profiles import Profile, load_profiles
from sunarchive.settings import Settings
from sunarchive.storage.open import (
    SqlStore,
    StoreOptions,
    adopt_stored_profiles,
    engine_errors_named,
    live_file_for_url,
    record_site_zone,
    settle_site_zone,
    stored_site_zone,
)
from sunarchive.storage.open import open_store as open_url
from sunarchive.storage.postgres.user_sql import ReaderRole
from sunarchive.storage.user_sql import SqlLimits
from sunarchive.upstream import ps100_clearsky


def profiles_for(settings: Settings) -> dict[str, Profile]:
    return load_profiles(settings.profiles_dir)


def retention_of(settings: Settings) -> dict[str, float | None]:
    return {"1s": settings.retention_1s_days, "5min": settings.retention_5min_days,
            "1hour": settings.retention_1hour_days, "daily": settings.retention_daily_days}


def store_options(settings: Settings) -> StoreOptions:
    password = settings.database_password
    return StoreOptions(profiles_for(settings), settings.timezone,
                        settings.duckdb_memory_limit_mb, settings.duckdb_threads,
                        retention_of(settings),
                        None if password is None else password.get_secret_value(),
                        settings.postgres_copy_streams, settings.timescaledb_value_grid,
                        SqlLimits(settings.sql_timeout_s, settings.sql_max_rows),
                        reader_role(settings),
                        timezone_explicit="timezone" in settings.model_fields_set,
                        ps100=settings.ps100)


def reader_role(settings: Settings) -> ReaderRole:
    """Who user SQL runs as on PostgreSQL (settings ``postgres_reader_*``)."""
    password = settings.postgres_reader_password
    return ReaderRole(settings.postgres_reader_role,
                      None if password is None else password.get_secret_value(),
                      settings.postgres_sql_as_owner)


def open_store(settings: Settings, read_only: bool = False) -> SqlStore:
    return open_url(settings.database_url, store_options(settings), read_only=read_only)


def live_file(settings: Settings) -> Path:
    return live_file_for_url(settings.database_url)


@contextmanager
def open_reader(settings: Settings) -> Iterator[SqlStore]:
    store = open_store(settings, read_only=True)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_writer(settings: Settings) -> Iterator[tuple[SqlStore, list[str]]]:
    options = store_options(settings)
    store = open_url(settings.database_url, options, setup=False)
    try:
        with engine_errors_named(store):
            changes = _set_up(store, options.timezone_explicit)
            changes += ps100_clearsky.prepare(store, options.ps100)
        yield store, changes
    finally:
        store.close()


def _set_up(store: SqlStore, timezone_explicit: bool) -> list[str]:
    """Set up (create or migrate) an opened store; what changed."""
    settle_site_zone(store, timezone_explicit)
    changes = store.setup()
    if adopt_stored_profiles(store):
        changes += store.setup()
    if stored_site_zone(store) is None:
        record_site_zone(store)
        changes.append(f"recorded the site time zone {store.tz.key}")
    return changes
