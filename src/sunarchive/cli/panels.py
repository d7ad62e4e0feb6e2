"""``sunarchive panels``: the PS100 panel registry (``ps100_panels``) — list, set, clearsky.

Errors (an unknown panel, a bad value) are one line and exit code 2, as for every command.
While a collector holds a DuckDB file, ``list`` and ``set`` ask its API instead
(``/api/v1/panels``; ``set`` with the first of ``http_write_tokens`` when tokens are set).
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from sunarchive.cli.common import add_common, running_instance, settings_of
from sunarchive.model import SunarchiveError
from sunarchive.upstream import ps100, ps100_clearsky, ps100_view


def add_parsers(sub: Any) -> None:
    panels = sub.add_parser("panels", help="the PS100 panel registry (ps100_panels)",
                            description="List or edit the registered PS100 panels; fill "
                            "the clear-sky grid the efficiency and conditions of "
                            "ps100_readings_1s are read from (docs/upstream/ps100.md).")
    verbs = panels.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="registered panels")
    add_common(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable JSON")
    listing.set_defaults(handler=cmd_list)
    edit = verbs.add_parser("set", help="change columns of a registered panel",
                            description="e.g. `sunarchive panels set PS100_0X40 "
                            "area_m2=0.771 tilt_deg=30 installed_on=2025-06-10`, or "
                            "`sunarchive panels set panel_1 \"name=Roof east\"` (the name "
                            "the dashboard shows)")
    add_common(edit)
    edit.add_argument("panel_id")
    edit.add_argument("values", nargs="+", metavar="COLUMN=VALUE",
                      help=f"columns: {', '.join(ps100.EDITABLE)} (none = empty)")
    edit.set_defaults(handler=cmd_set)
    fill = verbs.add_parser("clearsky", help="fill the clear-sky grid now",
                            description="Register panels seen in the data and compute the "
                            "clear-sky irradiance (pvlib, a row a minute) of every day with "
                            "readings that lacks it. A running instance does this by itself "
                            "every maintenance interval.")
    add_common(fill)
    fill.set_defaults(handler=cmd_clearsky)


def _store(args: argparse.Namespace) -> Any:
    from sunarchive.stores import open_writer

    return open_writer(settings_of(args))


def _instance(args: argparse.Namespace, exc: Exception, write: bool) -> Any:
    """The running instance holding the store (``exc`` again when there is none)."""
    from sunarchive.api.client import RunningInstance

    settings = settings_of(args)
    instance: RunningInstance = running_instance(settings, exc)
    if write and settings.http_write_tokens:
        instance = RunningInstance(instance.url,
                                   settings.http_write_tokens[0].get_secret_value())
    return instance


def cmd_list(args: argparse.Namespace) -> int:
    from sunarchive.storage.duckdb.store import StoreLockedError

    try:
        with _store(args) as (store, _):
            panels = list(ps100.read_panels(store._schema()).values())
    except StoreLockedError as exc:
        panels = [ps100.Panel(row) for row in
                  _instance(args, exc, False).call("GET", "/api/v1/panels")]
    if args.json:
        print(ps100.panels_json(panels))
        return 0
    for panel in panels:
        v = panel.values
        print(f"{panel.panel_id}\t{v['name']}\t{v['rated_power_w']:g} W\t{v['area_m2']:g} m²"
              f"\ttilt {v['tilt_deg']:g}° az {v['azimuth_deg']:g}°\t{v['origin']}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for item in args.values:
        column, eq, text = item.partition("=")
        if not eq:
            raise SunarchiveError(f"{item!r}: write COLUMN=VALUE")
        try:
            changes[column] = ps100.parse_value(column, text)
        except ValueError as exc:
            raise SunarchiveError(f"{item!r}: {exc}") from None
    from sunarchive.storage.duckdb.store import StoreLockedError

    try:
        return _set_here(args, changes)
    except StoreLockedError as exc:
        body = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in changes.items()}
        _instance(args, exc, True).call("PATCH", f"/api/v1/panels/{args.panel_id}", json=body)
    print(f"{args.panel_id}: updated (by the running instance)")
    return 0


def _set_here(args: argparse.Namespace, changes: dict[str, Any]) -> int:
    with _store(args) as (store, _):
        try:   # checked before a transaction starts: nothing to roll back
            with store._lock:
                row = ps100.edited_row(store._schema(), args.panel_id, changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SunarchiveError(f"{'.'.join(str(p) for p in first['loc'])}: "
                                  f"{first['msg']}") from None
        run = ps100_clearsky.direct(store)
        run(lambda s: ps100.upsert(s, row))
        run(ps100_view.ensure_view)     # a sensor series is part of the view's SQL
        filled = ps100_clearsky.upkeep(run, settings_of(args).ps100)
        panel = ps100.Panel(row)
    print(f"{panel.panel_id}: updated" + "".join(f"\n{line}" for line in filled))
    return 0


def cmd_clearsky(args: argparse.Namespace) -> int:
    with _store(args) as (store, _):
        changes = ps100_clearsky.upkeep(ps100_clearsky.direct(store), settings_of(args).ps100)
    print("\n".join(changes) or "nothing to do: every day with readings has its grid")
    return 0
