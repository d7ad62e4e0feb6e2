"""Create, list, show, update and retire rows of the registries — the Perocube lab's
(:mod:`.perocube.tables`) and HOMEPOT's ``sites`` and ``devices`` (:mod:`.homepot.registry`);
nothing is deleted.

Every write runs in one transaction on the store's writer connection under its lock: in a
running server on the writer thread (the REST handlers submit it to the writer's queue), from
the CLI on the store it opened for writing. Reads use the store's read path.

Rules (``docs/upstream/perocube.md``, ``docs/upstream/homepot.md``):

* A column takes a value of its type or null. A Perocube row needs a non-empty ``name``; a
  HOMEPOT row may have none (the data adds rows without), but a name given is not empty.
* Perocube ids are drawn from a sequence; HOMEPOT's are the integers its checks name: adding
  a ``site`` or ``homepot-device`` by hand gives ``id`` (one no row has yet).
* A reference (``project_id``, ``scientist_id``, an experiment's ``device_ids``, a HOMEPOT
  device's ``site_id``) names an active row: an unknown or retired one is refused, naming the
  field.
* A row is retired (``retired_at`` set to now), never deleted; its measurements stay
  readable and filterable. It is refused while active rows refer to it: a project's active
  devices, a scientist's active experiments, the active experiments that use a device, a
  site's active HOMEPOT devices — retire those first (or move them). Retired rows can still
  be edited (a correction), but cannot be retired twice.
* An experiment's ``device_ids`` given on an update replace its set of devices (the link
  rows of devices no longer in it are removed; the devices themselves stay).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sunarchive.model import InputError
from sunarchive.storage.migrations import Schema
from sunarchive.storage.open import SqlStore
from sunarchive.upstream.homepot import registry as homepot
from sunarchive.upstream.kinds import INT_MAX, Column, Kind
from sunarchive.upstream.perocube.tables import KINDS as PEROCUBE_KINDS
from sunarchive.upstream.perocube.tables import LINK_TABLE

Row = dict[str, Any]
DEVICES = "device_ids"
"""An experiment's devices: a list of device ids (the link table ``experiment_device``)."""
KINDS: dict[str, Kind] = {**PEROCUBE_KINDS, **homepot.KINDS}
"""Every registry kind by the name the CLI and REST use."""
TEXT_MAX = 10_000
"""Characters a text column takes."""


def kind_of(name: str) -> Kind:
    """The kind named ``name``; InputError naming the known ones."""
    found = KINDS.get(name)
    if found is None:
        raise InputError(f"unknown registry kind {name!r}; one of {', '.join(KINDS)}")
    return found


class UnknownRowError(InputError):
    """No row of that kind has that id (the REST API answers 404)."""


def _not_found(kind: Kind, row_id: int) -> UnknownRowError:
    return UnknownRowError(f"no {kind.name} with id {row_id}")


# -- reads ------------------------------------------------------------------------------------
def require_tables(store: SqlStore, kind: Kind | None = None) -> None:
    """InputError when the store lacks the kind's registries: it predates them (schema step
    6 for Perocube's, 7 for HOMEPOT's), or — HOMEPOT — its ``sites`` / ``devices`` are tables
    sunarchive did not make (those are left alone)."""
    if kind is None or kind.system != "HOMEPOT":
        if not store.has_relation(LINK_TABLE):
            raise InputError(f"{store.location} has no registry tables yet: `sunarchive "
                             "setup` (or any writer's start) adds them (schema step 6)")
        return
    made = store._read_arrow(f"SELECT 1 FROM sunarchive_meta WHERE key = {_p(store)}",
                             [homepot.META_KEY]).num_rows
    if made:
        return
    if any(store.has_relation(t) for t in homepot.TABLES):
        raise InputError(f"{store.location}'s tables sites and devices were not made by "
                         "sunarchive: it leaves them alone (edit them with your own SQL)")
    raise InputError(f"{store.location} has no HOMEPOT registries yet: `sunarchive setup` "
                     "(or any writer's start) adds them (schema step 7)")


def list_rows(store: SqlStore, kind_name: str, include_retired: bool = False) -> list[Row]:
    """The rows of a kind by id; retired ones only with ``include_retired``."""
    kind = kind_of(kind_name)
    require_tables(store, kind)
    where = "" if include_retired else " WHERE retired_at IS NULL"
    return _select(store, kind, where, [])


def get_row(store: SqlStore, kind_name: str, row_id: int) -> Row:
    """One row, retired or not; :class:`UnknownRowError` when there is none."""
    kind = kind_of(kind_name)
    require_tables(store, kind)
    rows = _select(store, kind, f" WHERE id = {_p(store)}", [row_id]) \
        if _in_range(kind, row_id) else []
    if not rows:
        raise _not_found(kind, row_id)
    return rows[0]


def _select(store: SqlStore, kind: Kind, where: str, params: list[Any]) -> list[Row]:
    columns = ["id", *kind.column_names, "created_at", "retired_at"]
    table = store._read_arrow(f"SELECT {', '.join(columns)} FROM {kind.table}{where} "
                              "ORDER BY id", params or None)
    rows = [{k: _aware(v) for k, v in row.items()} for row in table.to_pylist()] \
        if table.num_rows else []
    if kind.name == "experiment" and rows:
        links = _links(store, [int(r["id"]) for r in rows])
        for row in rows:
            row[DEVICES] = links.get(int(row["id"]), [])
    return rows


def _links(store: SqlStore, experiments: list[int]) -> dict[int, list[int]]:
    marks = ", ".join([_p(store)] * len(experiments))
    table = store._read_arrow(f"SELECT experiment_id, device_id FROM {LINK_TABLE} WHERE "
                              f"experiment_id IN ({marks}) ORDER BY device_id", experiments)
    out: dict[int, list[int]] = {}
    for row in table.to_pylist() if table.num_rows else []:
        out.setdefault(int(row["experiment_id"]), []).append(int(row["device_id"]))
    return out


def _in_range(kind: Kind, row_id: int) -> bool:
    return kind.id_low <= row_id <= INT_MAX


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _p(store: SqlStore) -> str:
    return "?" if store.engine == "duckdb" else "%s"


# -- checks -----------------------------------------------------------------------------------
def checked_values(kind: Kind, values: dict[str, Any], adding: bool) -> dict[str, Any]:
    """``values`` for the kind's columns, each of its type (``device_ids`` left out; ``id``
    only when adding a kind whose ids are given); InputError naming the first bad field."""
    known = [*(["id"] if adding and kind.ids_given else []), *kind.column_names,
             *([DEVICES] if kind.name == "experiment" else [])]
    for key in values:
        if key not in known:
            raise InputError(f"{kind.name} has no field {key!r}; fields: {', '.join(known)}")
    out = {k: checked_id("id", v, kind.id_low) if k == "id" else _typed(kind.column(k), v)
           for k, v in values.items() if k != DEVICES}
    if adding and kind.ids_given and "id" not in out:
        raise InputError(f"id: a {kind.name} is added with its {kind.system} id")
    if adding and kind.name_required and "name" not in out:
        raise InputError(f"name: a {kind.name} needs a name")
    if "name" in out and ((out["name"] is None and kind.name_required)
                          or (out["name"] is not None and not str(out["name"]).strip())):
        raise InputError("name: must not be empty")
    return out


def _typed(column: Column | None, value: Any) -> Any:
    assert column is not None
    if value is None:
        return None
    if column.type == "text":
        if not isinstance(value, str) or "\x00" in value or len(value) > TEXT_MAX or \
                not _utf8(value):
            raise InputError(f"{column.name}: expected text (at most {TEXT_MAX:,} "
                             "characters of UTF-8, no NUL)")
        return value
    if column.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise InputError(f"{column.name}: expected a finite number")
        return float(value)
    if column.type == "integer":
        return checked_id(column.name, value, low=0)
    assert column.references is not None
    return checked_id(column.name, value, low=KINDS[column.references].id_low)


def _utf8(text: str) -> bool:
    """Whether ``text`` can be stored (a lone surrogate from JSON's ``\\ud800`` cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked_id(name: str, value: Any, low: int = 1) -> int:
    """An id (``low`` 1, HOMEPOT's −2³¹) or a board or channel number (``low`` 0) up to
    2³¹−1 (the column is INTEGER)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= INT_MAX:
        raise InputError(f"{name}: expected an integer from {low} to {INT_MAX}, "
                         f"got {value!r}")
    return value


def checked_devices(values: dict[str, Any]) -> list[int] | None:
    """An experiment's ``device_ids`` (deduplicated, in order), or None when not given."""
    if DEVICES not in values:
        return None
    given = values[DEVICES]
    if not isinstance(given, list):
        raise InputError(f"{DEVICES}: expected a list of device ids")
    return list(dict.fromkeys(checked_id(DEVICES, d) for d in given))


def _require_active(s: Schema, field: str, kind_name: str, row_id: int) -> None:
    """InputError naming ``field`` when ``row_id`` is no active row of ``kind_name``."""
    kind = KINDS[kind_name]
    rows = s.fetch(f"SELECT retired_at FROM {kind.table} WHERE id = {s.p}", [row_id])
    if not rows:
        raise InputError(f"{field}: no {kind.name} with id {row_id}")
    if rows[0][0] is not None:
        raise InputError(f"{field}: {kind.name} {row_id} is retired (since "
                         f"{_aware(rows[0][0]).isoformat(timespec='seconds')}); refer to "
                         "an active one")


def _check_references(s: Schema, kind: Kind, values: dict[str, Any],
                      devices: list[int] | None) -> None:
    for column in kind.columns:
        if column.references and values.get(column.name) is not None:
            _require_active(s, column.name, column.references, values[column.name])
    for device in devices or []:
        _require_active(s, DEVICES, "device", device)


# -- writes -----------------------------------------------------------------------------------
def add(store: SqlStore, kind_name: str, values: dict[str, Any]) -> Row:
    """Insert a row (and, for an experiment, its links to ``device_ids``); the row stored."""
    kind = kind_of(kind_name)
    require_tables(store, kind)
    columns = checked_values(kind, values, adding=True)
    devices = checked_devices(values) if kind.name == "experiment" else None
    s = store._schema()
    with store._lock, s.transaction():
        _check_references(s, kind, columns, devices)
        if kind.ids_given and s.fetch(f"SELECT 1 FROM {kind.table} WHERE id = {s.p}",
                                      [columns["id"]]):
            raise InputError(f"id: {kind.name} {columns['id']} already exists (change it "
                             "with set)")
        names = list(columns)
        marks = ", ".join([s.p] * len(names))
        row_id = int(s.fetch(f"INSERT INTO {kind.table} ({', '.join(names)}) VALUES "
                             f"({marks}) RETURNING id", [columns[n] for n in names])[0][0])
        _link(s, row_id, devices or [])
    return get_row(store, kind.name, row_id)


def update(store: SqlStore, kind_name: str, row_id: int, values: dict[str, Any]) -> Row:
    """Set the given columns of a row (an experiment's ``device_ids`` replace its devices);
    the row as stored. :class:`UnknownRowError` when there is no such row."""
    kind = kind_of(kind_name)
    require_tables(store, kind)
    columns = checked_values(kind, values, adding=False)
    devices = checked_devices(values) if kind.name == "experiment" else None
    s = store._schema()
    with store._lock, s.transaction():
        _current(s, kind, row_id)
        _check_references(s, kind, columns, devices)
        if columns:
            sets = ", ".join(f"{n} = {s.p}" for n in columns)
            s.execute(f"UPDATE {kind.table} SET {sets} WHERE id = {s.p}",
                      [*columns.values(), row_id])
        if devices is not None:
            s.execute(f"DELETE FROM {LINK_TABLE} WHERE experiment_id = {s.p}", [row_id])
            _link(s, row_id, devices)
    return get_row(store, kind.name, row_id)


REFERRERS: dict[str, tuple[str, str]] = {
    "project": ("devices", "SELECT id FROM solar_cell_device WHERE project_id = {p} "
                           "AND retired_at IS NULL"),
    "scientist": ("experiments", "SELECT id FROM experiment WHERE scientist_id = {p} "
                                 "AND retired_at IS NULL"),
    "device": ("experiments", f"SELECT e.id FROM experiment e JOIN {LINK_TABLE} l ON "
                              "l.experiment_id = e.id WHERE l.device_id = {p} AND "
                              "e.retired_at IS NULL"),
    "site": ("devices", "SELECT id FROM devices WHERE site_id = {p} AND retired_at IS NULL"),
}
"""The active rows that keep a row of a kind from being retired (what they are, their SQL)."""


def retire(store: SqlStore, kind_name: str, row_id: int) -> Row:
    """Set ``retired_at`` to now; the row as stored. Refused (InputError naming them) while
    active rows refer to it; :class:`UnknownRowError` when there is no such row."""
    kind = kind_of(kind_name)
    require_tables(store, kind)
    s = store._schema()
    now = store.time_param(datetime.now(UTC).timestamp())
    with store._lock, s.transaction():
        retired = _current(s, kind, row_id)
        if retired is not None:
            raise InputError(f"{kind.name} {row_id} is already retired (since "
                             f"{_aware(retired).isoformat(timespec='seconds')})")
        if kind.name in REFERRERS:
            what, sql = REFERRERS[kind.name]
            ids = sorted(int(r[0]) for r in s.fetch(sql.format(p=s.p), [row_id]))
            if ids:
                raise InputError(f"{kind.name} {row_id} has active {what} "
                                 f"{', '.join(map(str, ids))}: retire them (or move them) "
                                 "first")
        s.execute(f"UPDATE {kind.table} SET retired_at = {s.p} WHERE id = {s.p}",
                  [now, row_id])
    return get_row(store, kind.name, row_id)


def _current(s: Schema, kind: Kind, row_id: int) -> Any:
    """The row's ``retired_at`` (None while active); :class:`UnknownRowError` if absent."""
    rows = s.fetch(f"SELECT retired_at FROM {kind.table} WHERE id = {s.p}", [row_id]) \
        if _in_range(kind, row_id) else []
    if not rows:
        raise _not_found(kind, row_id)
    return rows[0][0]


def _link(s: Schema, experiment: int, devices: Sequence[int]) -> None:
    for device in devices:
        s.execute(f"INSERT INTO {LINK_TABLE} (experiment_id, device_id) VALUES ({s.p}, {s.p})",
                  [experiment, device])


# -- measurements of registry rows ------------------------------------------------------------
FILTERS: dict[str, tuple[str, str | None]] = {
    "device_id": ("device", None),
    "experiment_id": ("experiment", f"SELECT device_id FROM {LINK_TABLE} "
                                    "WHERE experiment_id = {p}"),
    "project_id": ("project", "SELECT id FROM solar_cell_device WHERE project_id = {p}"),
    "scientist_id": ("scientist", f"SELECT l.device_id FROM {LINK_TABLE} l JOIN experiment "
                                  "e ON e.id = l.experiment_id WHERE e.scientist_id = {p}"),
}
"""Query parameter → the kind its id names and the SQL of the devices it stands for."""


def devices_of(store: SqlStore, given: dict[str, int | None]) -> set[int] | None:
    """The device ids the given filters (``FILTERS``' names → id or None) all select, retired
    rows included (their measurements stay); None when no filter is given.
    :class:`UnknownRowError` for an id no row has."""
    chosen = {k: v for k, v in given.items() if v is not None}
    if not chosen:
        return None
    found: set[int] | None = None
    for name, row_id in chosen.items():
        kind_name, sql = FILTERS[name]
        get_row(store, kind_name, row_id)
        if sql is None:
            ids = {row_id}
        else:
            table = store._read_arrow(sql.format(p=_p(store)), [row_id])
            ids = {int(v) for v in table.column(0).to_pylist() if v is not None}
        found = ids if found is None else found & ids
    return found
