"""The ``sunarchive`` command. Commands are thin: they parse, call the library, print."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sunarchive import maintenance, output
from sunarchive.app import App, build_app
from sunarchive.model import SunarchiveError
from sunarchive.query import parse_time, run_query
from sunarchive.rollup import ALL_TIERS
from sunarchive.settings import load_settings

log = logging.getLogger("sunarchive")

EPILOG = """Settings come from defaults < --config YAML < .env < SUNARCHIVE_* environment
variables < command-line flags. See docs/settings.md for every setting."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file (${ENV} substitution)")
    parser.add_argument("--db", type=Path, help="DuckDB file (shorthand for "
                        "--database-url duckdb:///PATH)")
    parser.add_argument("--database-url", help="duckdb:///path (default "
                        "duckdb:///./sunarchive-data/sunarchive.duckdb) or "
                        "postgresql://user@host:port/dbname (TimescaleDB when the server "
                        "has it, plain PostgreSQL otherwise); the password may come from "
                        "SUNARCHIVE_DATABASE_PASSWORD(_FILE)")
    parser.add_argument("--timezone", help="IANA zone of the site for daily buckets "
                        "(default UTC)")


def _collector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, metavar="S",
                        help="stop after S seconds of (simulated) time; default: until Ctrl-C")
    parser.add_argument("--no-console", action="store_true",
                        help="do not draw the live console (log lines only)")
    _http(parser)


def _http(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-host", help="API bind address (default 127.0.0.1; another "
                        "address needs tokens or --insecure)")
    parser.add_argument("--http-port", type=int, help="API port (default 8080)")
    parser.add_argument("--no-http", action="store_true", help="do not serve the HTTP API")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind without tokens")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunarchive", epilog=EPILOG,
        description="Solar and home-energy telemetry historian: collects readings, keeps "
                    "exact 1-second statistics and 5-minute, hourly and daily rollups.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulated PS100 panels into the store, live console",
                          description="Simulate PS100-class panels at 10 Hz (pvlib clear sky, "
                          "seeded clouds, INA226 noise) and store them like real devices.",
                          epilog=EPILOG)
    _common(demo)
    _collector(demo)
    demo.add_argument("--panels", type=int, help="number of panels (default 4)")
    demo.add_argument("--speed", type=float, help="simulated seconds per wall second "
                      "(default 1; 0 = as fast as possible)")
    demo.add_argument("--start", help="simulated start, ISO 8601 with offset (default: now, "
                      "or while the sun is down at the simulated site the last 10:00 solar "
                      "time; a start inside stored data resumes after it and finishes the "
                      "span of --duration)")
    demo.add_argument("--seed", type=int, help="random seed of clouds and noise (default 42)")
    demo.set_defaults(handler=cmd_demo)

    run = sub.add_parser("run", help="collect from the configured sources",
                         description="Run the collector for the sources in the config "
                         "(without a sources list: the simulator).", epilog=EPILOG)
    _common(run)
    _collector(run)
    run.set_defaults(handler=cmd_run)

    serve = sub.add_parser("serve", help="serve the API for a store without collecting",
                           description="Serve the REST API, live feed, dashboard and the "
                           "InfluxDB-compatible write endpoints for the store, with the writer "
                           "running but no sources.", epilog=EPILOG)
    _common(serve)
    _http(serve)
    serve.set_defaults(handler=cmd_serve, no_console=True)

    monitor = sub.add_parser("monitor", help="live console of a running collector",
                             description="Show the live console of a `run` or `demo` "
                             "working on the same store.")
    _common(monitor)
    monitor.add_argument("--once", action="store_true", help="print one frame and exit")
    monitor.add_argument("--json", action="store_true", help="print the raw snapshot as JSON")
    monitor.set_defaults(handler=cmd_monitor)

    sources = sub.add_parser(
        "sources", help="the configured sources and their state",
        description="List the configured sources. While `run` or `demo` works on the same "
        "store, each shows its live state (connected, offline, failed), last sample, "
        "samples/s and errors; otherwise the state is `not running`.", epilog=EPILOG)
    _common(sources)
    sources.add_argument("--json", action="store_true", help="machine-readable JSON")
    sources.set_defaults(handler=cmd_sources)

    status = sub.add_parser("status", help="engine, file size, per-table rows and ranges")
    _common(status)
    status.add_argument("--json", action="store_true", help="machine-readable JSON")
    status.set_defaults(handler=cmd_status)

    query = sub.add_parser("query", help="rows of a measurement from a tier",
                           description="Read a measurement. --tier auto picks the coarsest "
                           "tier that still gives at least --max-points rows.")
    _common(query)
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
    _common(sql)
    sql.add_argument("statement")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.set_defaults(handler=cmd_sql)

    setup = sub.add_parser("setup", help="create or upgrade the schema (idempotent)")
    _common(setup)
    setup.set_defaults(handler=cmd_setup)

    from sunarchive.importing.command import add_arguments as import_arguments
    imp = sub.add_parser("import", help="historical files (CSV, JSON, JSON lines, line "
                         "protocol, Parquet, the lab rig's layout) into every tier",
                         description="Import historical data through the same reducer as "
                         "live data into every tier. Re-importing a file adds nothing; "
                         "--timezone also says the zone of times without an offset. See "
                         "docs/import.md.", epilog=EPILOG)
    _common(imp)
    import_arguments(imp)
    imp.set_defaults(handler=cmd_import)
    maintenance.add_parsers(sub, _common)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "db", None):
        out["database_url"] = f"duckdb:///{args.db}"
    if getattr(args, "database_url", None):
        out["database_url"] = args.database_url
    if getattr(args, "timezone", None):
        out["timezone"] = args.timezone
    for flag, key in (("http_host", "http_host"), ("http_port", "http_port")):
        if getattr(args, flag, None) is not None:
            out[key] = getattr(args, flag)
    if getattr(args, "no_http", False):
        out["http_enabled"] = False
    if getattr(args, "insecure", False):
        out["http_insecure"] = True
    sim = {k: getattr(args, k, None) for k in ("panels", "speed", "seed")}
    if getattr(args, "start", None) and args.command == "demo":
        sim["start"] = parse_time(args.start, "--start")
    sim = {k: v for k, v in sim.items() if v is not None}
    if sim:
        out["simulator"] = sim
    return out


def _settings(args: argparse.Namespace) -> Any:
    return load_settings(config_file=args.config, overrides=_overrides(args))


settings_of = _settings


# -- collector commands -------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return _collect(build_app(settings, demo=True), args, settings)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return _collect(build_app(settings, demo=False), args, settings)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.http_enabled:
        raise SunarchiveError("serve without HTTP has nothing to do (drop --no-http)")
    return _collect(build_app(settings, demo=False, collect=False), args, settings)


def _collect(app: App, args: argparse.Namespace, settings: Any) -> int:
    from sunarchive.app import http_server

    stop = _install_signal_handlers()
    if app.resumed_from is not None:
        print(f"store already holds simulated data up to {app.resumed_from.isoformat()}; "
              "resuming after it", file=sys.stderr)
    server = http_server(settings, app) if settings.http_enabled else None
    app.start(duration_s=getattr(args, "duration", None))
    if server is not None:
        try:
            server.start()
        except SunarchiveError:
            app.stop()
            raise
        app.live.http_url = server.url
        print(f"API and dashboard on {server.url} (OpenAPI at {server.url}/docs)",
              file=sys.stderr)
    for note in app.notes():
        print(note, file=sys.stderr)
    print(f"collecting into {app.location} (Ctrl-C to stop)", file=sys.stderr)
    try:
        if args.no_console or not sys.stdout.isatty():
            _wait(app, stop, lambda: None)
        else:
            from rich.live import Live

            from sunarchive.console import render
            with Live(render(app.live.snapshot()), refresh_per_second=2) as live:
                _wait(app, stop, lambda: live.update(render(app.live.snapshot())))
    finally:
        print("stopping: flushing everything to the store …", file=sys.stderr)
        if server is not None:
            server.stop()
        summary = app.stop()
    print(json.dumps(summary) if not sys.stdout.isatty() else _summary_text(summary))
    return _exit_code(summary)


EXIT_FAILED = 1
"""The writer or a source died: not everything offered was stored."""
EXIT_SPOOLED = 3
"""The store was unreachable at stop: batches wait in the disk spool for the next start."""


def _exit_code(summary: dict[str, Any]) -> int:
    """0 when everything is stored; else say why in one line per cause on stderr."""
    code = 0
    if summary.get("writer_error"):
        print(f"sunarchive: error: the writer stopped: {summary['writer_error']}",
              file=sys.stderr)
        code = EXIT_FAILED
    for name, error in sorted(summary.get("source_errors", {}).items()):
        print(f"sunarchive: error: source {name} stopped: {error}", file=sys.stderr)
        code = EXIT_FAILED
    if summary.get("spooled_batches") and code == 0:
        print(f"sunarchive: {summary['spooled_batches']} batches wait in the spool at "
              f"{summary.get('spool')} (the store was unreachable); the next start writes "
              "them first", file=sys.stderr)
        code = EXIT_SPOOLED
    return code


def _wait(app: App, stop: list[bool], tick: Callable[[], None]) -> None:
    while not stop[0] and not app.finished():
        time.sleep(0.5)
        tick()


def _summary_text(summary: dict[str, Any]) -> str:
    return (f"done: {summary['samples_in']:,} samples → {summary['rows_written']:,} "
            f"1 s rows, {summary['rollup_rows']:,} rollup rows, "
            f"{summary['too_late_samples']} too-late samples, {summary['gaps']} gaps, "
            f"{summary['write_errors']} write errors")


def _install_signal_handlers() -> list[bool]:
    stop = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        stop[0] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_monitor(args: argparse.Namespace) -> int:
    from sunarchive.app import live_file
    from sunarchive.console import render
    from sunarchive.pipeline.live import read_live_file

    path = live_file(_settings(args))
    snapshot = read_live_file(path)
    if snapshot is None:
        print(f"no running collector publishes to {path}; start `sunarchive run` or "
              "`sunarchive demo` on this store", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(snapshot))
        return 0
    from rich.console import Console
    console = Console() if sys.stdout.isatty() else Console(width=120)
    if args.once:
        console.print(render(snapshot))
        return 0
    from rich.live import Live
    stop = _install_signal_handlers()
    with Live(render(snapshot), console=console, refresh_per_second=2) as live:
        while not stop[0]:
            time.sleep(1.0)
            live.update(render(read_live_file(path) or snapshot))
    return 0


# -- reading commands ---------------------------------------------------------------------
def _running_instance(settings: Any, exc: Exception) -> Any:
    """The API of the collector holding the store, or re-raise ``exc`` when there is none."""
    from sunarchive.api.client import RunningInstance
    from sunarchive.app import live_file
    from sunarchive.pipeline.live import read_live_file

    snapshot = read_live_file(live_file(settings))
    url = (snapshot or {}).get("http_url")
    if not url:
        raise exc
    tokens = settings.http_read_tokens or settings.http_write_tokens
    return RunningInstance(url, tokens[0].get_secret_value() if tokens else None)


def cmd_sources(args: argparse.Namespace) -> int:
    from sunarchive.app import live_file
    from sunarchive.pipeline.live import read_live_file

    settings = _settings(args)
    snapshot = read_live_file(live_file(settings)) or {}
    running = {s["name"]: s for s in snapshot.get("sources", [])}
    rows = [{"name": c.name, "state": "not running",
             **running.pop(c.name, {}), "type": c.type}
            for c in settings.effective_sources()]
    rows.extend(running.values())   # started from a config this command did not read
    if args.json:
        print(json.dumps(rows))
    else:
        output.print_sources(rows)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sunarchive.app import open_reader
    from sunarchive.storage.duckdb.store import StoreLockedError

    settings = _settings(args)
    try:
        with open_reader(settings) as store:
            info = store.status()
        info["mirror"] = _live_mirror(settings)
    except StoreLockedError as exc:
        instance = _running_instance(settings, exc)
        remote = instance.status()
        info = dict(remote["store"], live=remote, mirror=remote.get("mirror"),
                    note=f"{exc} — answered by the running instance at {instance.url}")
    if args.json:
        print(json.dumps(info))
    else:
        output.print_status(info)
    return 0


def _live_mirror(settings: Any) -> dict[str, Any] | None:
    """The InfluxDB mirror's state as a collector on this store last published it."""
    from sunarchive.app import live_file
    from sunarchive.pipeline.live import read_live_file

    mirror = (read_live_file(live_file(settings)) or {}).get("mirror")
    return mirror if isinstance(mirror, dict) else None


def cmd_query(args: argparse.Namespace) -> int:
    from sunarchive.app import open_reader
    from sunarchive.storage.duckdb.store import StoreLockedError

    tags = dict(_tag(t) for t in args.tag)
    fields = [f.strip() for f in args.fields.split(",")] if args.fields else None
    start = parse_time(args.start, "--start") if args.start else None
    end = parse_time(args.end, "--end") if args.end else None
    settings = _settings(args)
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
        result = _running_instance(settings, exc).query(args.measurement, params)
    output.print_result(result, args.format, title=f"{args.measurement} ({result.tier})")
    return 0


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SunarchiveError(f"--tag {text!r}: write KEY=VALUE")
    return key, value


def cmd_sql(args: argparse.Namespace) -> int:
    from sunarchive.app import open_reader
    from sunarchive.storage.duckdb.store import StoreLockedError

    settings = _settings(args)
    try:
        with open_reader(settings) as store:
            result = store.read_sql(args.statement)
    except StoreLockedError as exc:
        result = _running_instance(settings, exc).sql(args.statement)
    output.print_result(result, args.format)
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from sunarchive.app import open_writer

    with open_writer(_settings(args)) as (store, changes):
        location = store.location
        notes = list(getattr(store, "notes", []))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for change in changes:
        print(change)
    print(f"schema up to date ({len(changes)} changes) in {location}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from sunarchive.importing.command import run as run_import

    return run_import(args, _settings(args))


TIME_FLAGS = ("--start", "--end", "--older-than")
"""Flags whose value may start with a dash (``-24h``, ``-7d``)."""
RELATIVE_VALUE = re.compile(r"^-\d+[smhd]$")


def glue_relative_times(argv: Sequence[str]) -> list[str]:
    """``--start -24h`` → ``--start=-24h``: argparse would take ``-24h`` for a flag."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in TIME_FLAGS and RELATIVE_VALUE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def one_line(message: str) -> str:
    """A message as one line (a driver's error may add a hint line, e.g. PostgreSQL's "Is
    the server running on that host …?")."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(glue_relative_times(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except SunarchiveError as exc:
        print(f"sunarchive: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("sunarchive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
