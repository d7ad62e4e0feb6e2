"""The commands of a running collector: ``demo``, ``run``, ``serve``, and ``monitor`` and
``sources``, which show what a running one publishes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sunarchive import output
from sunarchive.cli.common import (
    EPILOG,
    add_collector,
    add_common,
    add_http,
    install_signal_handlers,
    settings_of,
)
from sunarchive.model import SunarchiveError

if TYPE_CHECKING:
    from sunarchive.app import App


def add_parsers(sub: Any) -> None:
    """Register ``demo``, ``run``, ``serve``, ``monitor`` and ``sources``."""
    demo = sub.add_parser("demo", help="simulated PS100 panels into the store, live console",
                          description="Simulate PS100-class panels at 10 Hz (pvlib clear sky, "
                          "seeded clouds, INA226 noise) and store them like real devices.",
                          epilog=EPILOG)
    add_common(demo)
    add_collector(demo)
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
    add_common(run)
    add_collector(run)
    run.set_defaults(handler=cmd_run)

    serve = sub.add_parser("serve", help="serve the API for a store without collecting",
                           description="Serve the REST API, live feed, dashboard and the "
                           "InfluxDB-compatible write endpoints for the store, with the writer "
                           "running but no sources.", epilog=EPILOG)
    add_common(serve)
    add_http(serve)
    serve.set_defaults(handler=cmd_serve, no_console=True)

    monitor = sub.add_parser("monitor", help="live console of a running collector",
                             description="Show the live console of a `run` or `demo` "
                             "working on the same store.")
    add_common(monitor)
    monitor.add_argument("--once", action="store_true", help="print one frame and exit")
    monitor.add_argument("--json", action="store_true", help="print the raw snapshot as JSON")
    monitor.set_defaults(handler=cmd_monitor)

    sources = sub.add_parser(
        "sources", help="the configured sources and their state",
        description="List the configured sources. While `run` or `demo` works on the same "
        "store, each shows its live state (connected, offline, failed), last sample, "
        "samples/s and errors; otherwise the state is `not running`.", epilog=EPILOG)
    add_common(sources)
    sources.add_argument("--json", action="store_true", help="machine-readable JSON")
    sources.set_defaults(handler=cmd_sources)


def build(settings: Any, demo: bool, collect: bool = True) -> App:
    """The running collector's parts. The web app, the sources and their libraries are
    imported here, for the commands that collect or serve only: every other command starts
    without them (seconds less on a small machine)."""
    from sunarchive.app import build_app

    return build_app(settings, demo=demo, collect=collect)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    return _collect(build(settings, demo=True), args, settings)


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    return _collect(build(settings, demo=False), args, settings)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.http_enabled:
        raise SunarchiveError("serve without HTTP has nothing to do (drop --no-http)")
    return _collect(build(settings, demo=False, collect=False), args, settings)


def _collect(app: App, args: argparse.Namespace, settings: Any) -> int:
    from sunarchive.app import http_server

    stop = install_signal_handlers()
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


def cmd_monitor(args: argparse.Namespace) -> int:
    from sunarchive.console import render
    from sunarchive.pipeline.live import read_live_file
    from sunarchive.stores import live_file

    path = live_file(settings_of(args))
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
    stop = install_signal_handlers()
    with Live(render(snapshot), console=console, refresh_per_second=2) as live:
        while not stop[0]:
            time.sleep(1.0)
            live.update(render(read_live_file(path) or snapshot))
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from sunarchive.pipeline.live import read_live_file
    from sunarchive.stores import live_file

    settings = settings_of(args)
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
