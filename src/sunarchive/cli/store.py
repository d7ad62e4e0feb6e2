"""The store's own commands: ``status`` (engine, size, tables) and ``setup`` (the schema).
The maintenance of rollups and chunks is in ``maintenance.py``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sunarchive import output
from sunarchive.cli.common import add_common, running_instance, settings_of


def add_status(sub: Any) -> None:
    """Register ``status``."""
    status = sub.add_parser("status", help="engine, file size, per-table rows and ranges")
    add_common(status)
    status.add_argument("--json", action="store_true", help="machine-readable JSON")
    status.set_defaults(handler=cmd_status)


def add_setup(sub: Any) -> None:
    """Register ``setup``."""
    setup = sub.add_parser("setup", help="create or upgrade the schema (idempotent)")
    add_common(setup)
    setup.set_defaults(handler=cmd_setup)


def cmd_status(args: argparse.Namespace) -> int:
    from sunarchive.storage.duckdb.store import StoreLockedError
    from sunarchive.stores import open_reader

    settings = settings_of(args)
    try:
        with open_reader(settings) as store:
            info = store.status()
        info["mirror"] = _live_mirror(settings)
    except StoreLockedError as exc:
        instance = running_instance(settings, exc)
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
    from sunarchive.pipeline.live import read_live_file
    from sunarchive.stores import live_file

    mirror = (read_live_file(live_file(settings)) or {}).get("mirror")
    return mirror if isinstance(mirror, dict) else None


def cmd_setup(args: argparse.Namespace) -> int:
    from sunarchive.stores import open_writer

    with open_writer(settings_of(args)) as (store, changes):
        location = store.location
        notes = list(getattr(store, "notes", []))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for change in changes:
        print(change)
    print(f"schema up to date ({len(changes)} changes) in {location}")
    return 0
