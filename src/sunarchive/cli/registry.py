"""``sunarchive registry``: the registries — the Perocube lab's (projects, scientists, solar
cell devices, experiments) and HOMEPOT's (sites, devices) — list, show, add, set, retire;
nothing is deleted.

The command opens the store for writing (``list`` for reading) and writes on it directly, as
``import`` does. While a collector holds a DuckDB file, its API answers instead (the write then
runs on its writer thread); a write needs ``http_write_tokens`` when tokens are set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from sunarchive.cli.common import add_common, running_instance, settings_of
from sunarchive.model import InputError
from sunarchive.upstream.kinds import INT_MAX, Column
from sunarchive.upstream.registry import DEVICES, KINDS, kind_of

DESCRIPTION = """The registries of two upstream systems; every KIND has the same actions.

Perocube lab rig — project, scientist, device (table solar_cell_device), experiment: a device
belongs to a project; an experiment is run by a scientist on devices. Ids are drawn when a row
is added, and a row needs a name. Measurements link to a device by their device_id tag (the
device's id); the API's /measurements/{kind} and /statistics/{kind} filter by device_id,
experiment_id, project_id and scientist_id. See docs/upstream/perocube.md.

HOMEPOT — site (table sites), homepot-device (table devices): the health checks add the rows
they name (ids are HOMEPOT's integers, names empty); set their names, locations, device types
and descriptions here, or add one by hand with `add KIND --id ID`. See
docs/upstream/homepot.md.

Rows are never deleted: `retire` sets retired_at (refused while active rows refer to the row),
and retired rows stay readable (`list --all`, `show`) with their measurements."""
FLAGS: dict[str, str] = {"project_id": "--project", "scientist_id": "--scientist",
                         "site_id": "--site", "area_cm2": "--area-cm2"}
"""Column → flag where the flag is not ``--<column>``."""
LIST_COLUMNS = ("name", "email", "project_id", "scientist_id", "site_id", "device_type",
                "location", DEVICES, "board", "channel", "retired_at")


def flag_of(column: str) -> str:
    return FLAGS.get(column, "--" + column.replace("_", "-"))


def add_parser(sub: Any) -> None:
    """Register ``registry`` and its commands."""
    registry = sub.add_parser("registry", help="registries: Perocube's projects, "
                              "scientists, devices, experiments and HOMEPOT's sites and "
                              "devices (list, show, add, set, retire)",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = registry.add_subparsers(dest="registry_command", required=True,
                                       metavar="ACTION")
    kinds = list(KINDS)
    kind_help = ("Perocube: project, scientist, device (table solar_cell_device), experiment; "
                 "HOMEPOT: site (table sites), homepot-device (table devices)")
    listing = commands.add_parser("list", help="the active rows of a kind (--all: retired "
                                  "ones too)")
    listing.add_argument("kind", choices=kinds, metavar="KIND", help=kind_help)
    listing.add_argument("--all", action="store_true", help="retired rows too")
    show = commands.add_parser("show", help="one row, retired or not (every field)")
    add = commands.add_parser("add", help="a new row; prints it with its id",
                              epilog=_fields_help())
    add.add_argument("kind", choices=kinds, metavar="KIND", help=kind_help)
    add.add_argument("--id", dest="row_id", type=_id, metavar="ID",
                     help="site, homepot-device: the row's HOMEPOT id (required; Perocube "
                     "kinds draw their ids)")
    change = commands.add_parser("set", help="change fields of a row (an empty value "
                                 "clears an optional field)", epilog=_fields_help())
    retire = commands.add_parser("retire", help="retire a row (refused while active rows "
                                 "refer to it: a project's devices, a scientist's or "
                                 "device's experiments, a site's devices)")
    for parser in (show, change, retire):
        parser.add_argument("kind", choices=kinds, metavar="KIND", help=kind_help)
        parser.add_argument("id", type=_id, metavar="ID", help="the row's id")
    for parser in (add, change):
        _field_flags(parser)
    for parser, handler in ((listing, cmd_list), (show, cmd_show), (add, cmd_add),
                            (change, cmd_set), (retire, cmd_retire)):
        add_common(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable JSON")
        parser.set_defaults(handler=handler)


def _id(text: str) -> int:
    """An id argument: an integer an ``INTEGER`` column holds."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer id, got {text!r}") from None
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise argparse.ArgumentTypeError(f"{value} is beyond the ids an INTEGER holds")
    return value


def _columns() -> dict[str, Column]:
    """Every kind's columns by name (a name means the same in every kind)."""
    return {c.name: c for kind in KINDS.values() for c in kind.columns}


def _field_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fields (each kind has some; see below)")
    for name, column in _columns().items():
        metavar = "ID" if column.type == "reference" else column.type.upper()
        owners = [k.name for k in KINDS.values() if k.column(name)]
        where = "" if len(owners) == len(KINDS) else f"{', '.join(owners)}: "
        text = "what people call it (the Perocube kinds require one)" \
            if name == "name" else column.help
        group.add_argument(flag_of(name), dest=f"field_{name}", metavar=metavar,
                           help=where + text)
    group.add_argument("--device", dest="devices", action="extend", nargs="*", type=int,
                       metavar="ID", help="experiment: the devices it runs on (repeatable; "
                       "with set they replace the experiment's devices, `--device` alone "
                       "clears them)")


def _fields_help() -> str:
    lines = [f"{kind.name}: " + ", ".join([*(flag_of(c.name) for c in kind.columns),
                                            *(["--device"] if kind.name == "experiment"
                                              else [])]) for kind in KINDS.values()]
    return "fields of each kind — " + "; ".join(lines)


def field_values(args: argparse.Namespace) -> dict[str, Any]:
    """The fields the flags give, typed; InputError for a flag the kind lacks."""
    kind = kind_of(args.kind)
    out: dict[str, Any] = {}
    for name, column in _columns().items():
        text = getattr(args, f"field_{name}", None)
        if text is None:
            continue
        if kind.column(name) is None:
            raise InputError(f"{flag_of(name)}: a {kind.name} has no {name}; its fields: "
                             f"{', '.join(flag_of(c) for c in kind.column_names)}")
        out[name] = _parse(column, text, kind.name_required)
    if args.devices is not None:
        if kind.name != "experiment":
            raise InputError(f"--device: only an experiment has devices, not a {kind.name}")
        out[DEVICES] = list(args.devices)
    if getattr(args, "row_id", None) is not None:
        if not kind.ids_given:
            raise InputError(f"--id: a {kind.name}'s id is drawn when it is added; leave "
                             "--id out")
        out = {"id": args.row_id, **out}
    return out


def _parse(column: Column, text: str, name_required: bool) -> Any:
    """A flag's text as the column's type ("" is null: the field cleared, but for a name
    the kind requires)."""
    if text == "" and (column.name != "name" or not name_required):
        return None
    if column.type == "text":
        return text
    try:
        return float(text) if column.type == "number" else int(text)
    except ValueError:
        wanted = {"number": "a number", "integer": "an integer"}.get(column.type, "an id")
        raise InputError(f"{flag_of(column.name)} {text!r}: expected {wanted}") from None


# -- the commands -----------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from sunarchive.upstream.registry import list_rows

    rows = _on_store(args, False, lambda store: list_rows(store, args.kind, args.all),
                     "GET", f"/api/v1/registry/{args.kind}",
                     {"params": {"include_retired": str(args.all).lower()}})
    _print(args, rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from sunarchive.upstream.registry import get_row

    kind_of(args.kind)
    row = _on_store(args, False, lambda store: get_row(store, args.kind, args.id),
                    "GET", f"/api/v1/registry/{args.kind}/{args.id}", {})
    _print(args, [row])
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from sunarchive.upstream.registry import add

    values = field_values(args)
    row = _on_store(args, True, lambda store: add(store, args.kind, values),
                    "POST", f"/api/v1/registry/{args.kind}", {"json": values})
    _print(args, [row])
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from sunarchive.upstream.registry import update

    values = field_values(args)
    if not values:
        raise InputError(f"give at least one field to set; {_fields_help()}")
    row = _on_store(args, True, lambda store: update(store, args.kind, args.id, values),
                    "PATCH", f"/api/v1/registry/{args.kind}/{args.id}", {"json": values})
    _print(args, [row])
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    from sunarchive.upstream.registry import retire

    row = _on_store(args, True, lambda store: retire(store, args.kind, args.id),
                    "POST", f"/api/v1/registry/{args.kind}/{args.id}/retire", {})
    _print(args, [row])
    return 0


def _on_store(args: argparse.Namespace, write: bool, local: Callable[[Any], Any],
              method: str, path: str, request: dict[str, Any]) -> Any:
    """``local(store)`` on the store the flags name, or the same request to the running
    instance holding that DuckDB file."""
    from sunarchive.api.client import RunningInstance
    from sunarchive.storage.duckdb.store import StoreLockedError
    from sunarchive.stores import open_reader, open_writer

    settings = settings_of(args)
    try:
        if write:
            with open_writer(settings) as (store, _):
                return local(store)
        with open_reader(settings) as reader:
            return local(reader)
    except StoreLockedError as exc:
        instance: RunningInstance = running_instance(settings, exc)
        if write and settings.http_write_tokens:
            instance = RunningInstance(instance.url,
                                       settings.http_write_tokens[0].get_secret_value())
        return instance.call(method, path, **request)


def _print(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Rows as JSON (``--json``: a list for ``list``, else the one row) or as a table."""
    plain = [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
             for row in rows]
    if args.json:
        json.dump(plain if args.registry_command == "list" else plain[0], sys.stdout)
        sys.stdout.write("\n")
        return
    kind = kind_of(args.kind)
    shown = _list_columns(kind.name) if args.registry_command == "list" else list(plain[0])
    table = Table(title=f"{kind.name} ({kind.table})")
    for column in shown:
        table.add_column(column)
    for row in plain:
        table.add_row(*[_cell(row.get(c)) for c in shown])
    Console().print(table)
    if not rows:
        print("(no rows)")


def _list_columns(kind_name: str) -> list[str]:
    """The columns ``list`` shows of a kind (``--json`` gives every column)."""
    kind = kind_of(kind_name)
    has = {*kind.column_names, "retired_at", *([DEVICES] if kind.name == "experiment" else [])}
    return ["id", *(c for c in LIST_COLUMNS if c in has)]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return str(value)

