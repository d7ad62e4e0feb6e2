"""Maintenance commands: create-aggregates, chunks, compress, refresh.

Each is idempotent and resumable: running it again after an interruption finishes the job and
changes nothing that is already done.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from sunarchive.cli.common import add_common, settings_of
from sunarchive.model import ConfigError, SunarchiveError
from sunarchive.query import parse_time
from sunarchive.settings import Settings
from sunarchive.storage.capabilities import (
    compressing,
    continuous_aggregates,
    dropped_ranges,
    partitioned,
)
from sunarchive.storage.open import SqlStore
from sunarchive.storage.postgres import drops

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration_s(text: str, flag: str) -> int:
    """Seconds of ``7d``, ``12h``, ``30m``, ``90s`` or ``2w``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise SunarchiveError(f"{flag} {text!r}: write a number and a unit, e.g. 7d, 12h, 30m")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def add_parsers(sub: Any) -> None:
    """Register the maintenance subcommands on the CLI's subparsers."""
    agg = sub.add_parser("create-aggregates", help="create or repair rollups and policies",
                         description="TimescaleDB: create or repair the continuous aggregates, "
                         "their refresh policies, compression and retention jobs. Other "
                         "engines: create the rollup tables and materialize what is due.")
    add_common(agg)
    agg.set_defaults(handler=cmd_create_aggregates)

    chunks = sub.add_parser("chunks", help="chunks (or partitions) of a table",
                            description="Time ranges, sizes and compression of the chunks of a "
                            "TimescaleDB hypertable or aggregate, or the partitions of a plain "
                            "PostgreSQL 1 s table.")
    add_common(chunks)
    chunks.add_argument("table", help="e.g. ps100_readings_1s")
    chunks.add_argument("--json", action="store_true", help="machine-readable JSON")
    chunks.set_defaults(handler=cmd_chunks)

    compress = sub.add_parser("compress", help="compress old 1 s chunks now (TimescaleDB)",
                              description="Compress every 1 s chunk entirely older than "
                              "--older-than (the policy does this in the background).")
    add_common(compress)
    compress.add_argument("--older-than", default="7d", help="age, e.g. 7d, 36h (default 7d)")
    compress.set_defaults(handler=cmd_compress)

    refresh = sub.add_parser("refresh", help="recompute rollups over a time range",
                             description="Recompute the 5-minute, hourly and daily rollups "
                             "over [--start, --end) (default: all stored data).")
    add_common(refresh)
    refresh.add_argument("--start", help="ISO 8601 with offset, or -7d (default: first data)")
    refresh.add_argument("--end", help="ISO 8601 with offset or now (default: now)")
    refresh.add_argument("--measurement", help="only this measurement (default: all with data)")
    refresh.set_defaults(handler=cmd_refresh)


def _writer(args: argparse.Namespace) -> Any:
    from sunarchive.stores import open_writer

    settings: Settings = settings_of(args)
    return open_writer(settings)


def cmd_create_aggregates(args: argparse.Namespace) -> int:
    with _writer(args) as (store, changes):
        aggregates = continuous_aggregates(store)
        if aggregates is not None:
            changes = changes + aggregates.create_aggregates()
            what = "continuous aggregates and policies"
        else:
            written = sum(store.rollup(m, int(time.time())) for m in store.profiles
                          if store.data_range(m) is not None)
            what = f"rollup tables (sunarchive maintains them; {written} rows materialized)"
        for change in dict.fromkeys(changes):
            print(change)
        print(f"{what} up to date in {store.location}")
    return 0


def cmd_chunks(args: argparse.Namespace) -> int:
    from sunarchive.stores import open_reader

    with open_reader(settings_of(args)) as store:
        chunked = partitioned(store)
        if chunked is None:
            raise ConfigError("chunks are a PostgreSQL notion; DuckDB keeps each table in "
                              "row groups of one file (see `sunarchive status`)")
        rows = chunked.chunks(args.table)
    if args.json:
        print(json.dumps(rows, default=_json_default))
        return 0
    table = Table(title=f"chunks of {args.table}")
    for column in ("chunk", "from", "to", "size", "compressed"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["chunk"]), _iso(row["range_start"]), _iso(row["range_end"]),
                      f"{int(row['bytes']) / 1e6:.2f} MB", "yes" if row["compressed"] else "no")
    Console().print(table)
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    older = parse_duration_s(args.older_than, "--older-than")
    with _writer(args) as (store, _):
        compressor = compressing(store)
        if compressor is None:
            raise ConfigError("compression needs TimescaleDB (this store uses "
                              f"{_engine(store)}); DuckDB compresses every table already")
        done = compressor.compress(older)
    for name in done:
        print(f"compressed {name}")
    print(f"{len(done)} chunks older than {args.older_than} compressed (already compressed "
          "ones are left as they are)")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    with _writer(args) as (store, _):
        names = [args.measurement] if args.measurement else list(store.profiles)
        for name in names:
            if name not in store.profiles:
                raise ConfigError(f"unknown measurement {name!r}; known: "
                                  f"{', '.join(sorted(store.profiles))}")
            stored = store.data_range(name)
            if stored is None:
                continue
            start = int(parse_time(args.start, "--start").timestamp()) if args.start \
                else stored[0]
            end = int(parse_time(args.end, "--end").timestamp()) if args.end \
                else int(time.time())
            if end <= start:
                raise ConfigError("--end must be after --start")
            _keep_dropped_ranges(store, name, start, end)
            rows = store.refresh(name, start, end)
            print(f"{name}: rollups refreshed from {_iso_s(start)} to {_iso_s(end)}"
                  + (f" ({rows} rows written)" if rows else ""))
    return 0


def _keep_dropped_ranges(store: SqlStore, name: str, start: int, end: int) -> None:
    """TimescaleDB: the refresh leaves out ranges whose raw chunks were dropped (retention or
    ``drop_chunks`` by hand): their rollups are kept as they are and cannot be recomputed.
    Say so; a window without any raw data but with such a range is refused."""
    dropping = dropped_ranges(store)
    if dropping is None:
        return
    dropped = dropping.raw_dropped(name, start, end)
    if not dropped:
        return
    what = drops.describe(dropped)
    if not dropping.has_raw_chunks(name, start, end):
        raise ConfigError(f"{name}: no raw data from {_iso_s(start)} to {_iso_s(end)}: its "
                          f"chunks were dropped ({what}); the rollups of that range are kept "
                          "as they are and cannot be recomputed")
    print(f"{name}: raw data {what} was dropped; the rollups there are kept as they are, "
          "the rest is refreshed")


def _engine(store: SqlStore) -> str:
    return "DuckDB" if store.engine == "duckdb" else "plain PostgreSQL"


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _iso_s(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
