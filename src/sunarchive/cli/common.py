"""What every command shares: the common flags, settings from flags, signals, and the running
instance that answers while a collector holds the store."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from sunarchive.query import parse_time
from sunarchive.settings import load_settings

EPILOG = """Settings come from defaults < --config YAML < .env < SUNARCHIVE_* environment
variables < command-line flags. See docs/settings.md for every setting."""


def add_common(parser: argparse.ArgumentParser) -> None:
    """The flags that say where the settings and the store are."""
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


def add_collector(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that collect (``demo``, ``run``)."""
    parser.add_argument("--duration", type=float, metavar="S",
                        help="stop after S seconds of (simulated) time; default: until Ctrl-C")
    parser.add_argument("--no-console", action="store_true",
                        help="do not draw the live console (log lines only)")
    add_http(parser)


def add_http(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that serve the HTTP API."""
    parser.add_argument("--http-host", help="API bind address (default 127.0.0.1; another "
                        "address needs tokens or --insecure)")
    parser.add_argument("--http-port", type=int, help="API port (default 8080)")
    parser.add_argument("--no-http", action="store_true", help="do not serve the HTTP API")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind without tokens")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line gives (the top layer of ``load_settings``)."""
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


def settings_of(args: argparse.Namespace) -> Any:
    """The settings of a command: its ``--config`` file and flags over the other layers."""
    return load_settings(config_file=args.config, overrides=overrides(args))


def install_signal_handlers() -> list[bool]:
    """SIGINT and SIGTERM set ``[0]`` of the list returned instead of stopping the process."""
    stop = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        stop[0] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def running_instance(settings: Any, exc: Exception) -> Any:
    """The API of the collector holding the store, or re-raise ``exc`` when there is none."""
    from sunarchive.api.client import RunningInstance
    from sunarchive.pipeline.live import read_live_file
    from sunarchive.stores import live_file

    snapshot = read_live_file(live_file(settings))
    url = (snapshot or {}).get("http_url")
    if not url:
        raise exc
    tokens = settings.http_read_tokens or settings.http_write_tokens
    return RunningInstance(url, tokens[0].get_secret_value() if tokens else None)
