"""Open the store a database URL names."""

from __future__ import annotations

from pathlib import Path

from sunarchive.model import ConfigError
from sunarchive.profiles.spec import Profile
from sunarchive.storage.duckdb.store import DuckDBStore

DUCKDB_PREFIX = "duckdb://"


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
        if scheme.startswith("postgres"):
            raise ConfigError(f"database_url {scheme}://…: the PostgreSQL engine is not "
                              "available in this version; use duckdb:///path")
        raise ConfigError(f"database_url: unknown scheme {scheme!r}; use duckdb:///path")
    return Path(url)


def live_file_for(db_path: Path) -> Path:
    """Where a running instance publishes its live snapshot for this store."""
    return db_path.with_name(db_path.name + ".live.json")


def open_duckdb(url: str, profiles: dict[str, Profile], timezone: str,
                memory_limit_mb: int, threads: int, read_only: bool = False,
                retention_days: dict[str, float | None] | None = None) -> DuckDBStore:
    """Open (and for writers, set up) the DuckDB store at ``url``."""
    store = DuckDBStore(duckdb_path(url), profiles, timezone=timezone,
                        memory_limit_mb=memory_limit_mb, threads=threads,
                        read_only=read_only, retention_days=retention_days)
    if read_only:
        store.load_state()
    else:
        store.setup()
    return store
