"""The reading commands: ``query`` (rows of a measurement from a tier) and ``sql`` (one read
statement). While a collector holds a DuckDB file, its API answers instead."""

from __future__ import annotations

import argparse
from typing import Any

from sunarchive import output
from sunarchive.cli.common import add_common, running_instance, settings_of
from sunarchive.model import SunarchiveError
from sunarchive.query import parse_time, run_query
from sunarchive.rollup import ALL_TIERS


def add_parsers(sub: Any) -> None:
    """Register ``query`` and ``sql``."""
    query = sub.add_parser("query", help="rows of a measurement from a tier",
                           description="Read a measurement. --tier auto picks the coarsest "
                           "tier that still gives at least --max-points rows.")
    add_common(query)
    query.add_argument("measurement")
    query.add_argument("--tier", default="auto", choices=["auto", *ALL_TIERS])
    query.add_argument("--start", help="ISO 8601 with offset, or -24h/-7d/now "
                       "(default: 24 h before end)")
    query.add_argument("--end", help="ISO 8601 with offset or now (default: now)")
    query.add_argument("--tag", action="append", default=[], metavar="K=V",
                       help="only series with this tag value (repeatable)")
    query.add_argument("--fields", help="comma-separated fields or columns (default: all)")
    query.add_argument("--max-points", type=int, default=1000,
                       help="for --tier auto (default 1000)")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.set_defaults(handler=cmd_query)

    sql = sub.add_parser("sql", help="one read statement (SELECT, VALUES, TABLE, WITH … "
                         "SELECT) on the store; it cannot write, read files or change "
                         "settings")
    add_common(sql)
    sql.add_argument("statement")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.set_defaults(handler=cmd_sql)


def cmd_query(args: argparse.Namespace) -> int:
    from sunarchive.storage.duckdb.store import StoreLockedError
    from sunarchive.stores import open_reader

    tags = dict(_tag(t) for t in args.tag)
    fields = [f.strip() for f in args.fields.split(",")] if args.fields else None
    start = parse_time(args.start, "--start") if args.start else None
    end = parse_time(args.end, "--end") if args.end else None
    settings = settings_of(args)
    try:
        with open_reader(settings) as store:
            result = run_query(store, args.measurement, args.tier, start, end, tags, fields,
                               args.max_points)
    except StoreLockedError as exc:
        params: dict[str, Any] = {"tier": args.tier, "max_points": args.max_points,
                                  "tag": [f"{k}={v}" for k, v in tags.items()]}
        for key, value in (("start", start), ("end", end)):
            if value is not None:
                params[key] = value.isoformat()
        if fields:
            params["fields"] = ",".join(fields)
        result = running_instance(settings, exc).query(args.measurement, params)
    output.print_result(result, args.format, title=f"{args.measurement} ({result.tier})")
    return 0


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SunarchiveError(f"--tag {text!r}: write KEY=VALUE")
    return key, value


def cmd_sql(args: argparse.Namespace) -> int:
    from sunarchive.storage.duckdb.store import StoreLockedError
    from sunarchive.stores import open_reader

    settings = settings_of(args)
    try:
        with open_reader(settings) as store:
            result = store.read_sql(args.statement)
    except StoreLockedError as exc:
        result = running_instance(settings, exc).sql(args.statement)
    output.print_result(result, args.format)
    return 0
