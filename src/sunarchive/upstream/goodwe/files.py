"""The older GoodWe optimiser's JSON files (its ``out/`` directory): energy snapshots and
charging sessions, read record by record with every bad one named.

A file holds one JSON document, shaped as the general JSON import reads it
(:mod:`sunarchive.importing.jsondoc`): an array of records, an object with one list of records
(``{"sessions": [...]}``, ``{"data": [...]}``), or a single snapshot object. A record is

* a **charging session** when it has ``session_id``: the plan's columns (``start_time``,
  ``end_time``, ``battery_soc_start``, ``battery_soc_end``, ``energy_charged_kwh``,
  ``average_price_pln``, ``total_cost_pln``, ``status``, ``created_at``);
* else an **energy snapshot** when it has a time (``timestamp``, ``time``, ``ts``,
  ``datetime``, ``date_time``, ``_time``): the plan's ``energy_data`` fields
  (``battery_soc``, ``battery_temp``, ``pv_power``, ``grid_power``, ``consumption``,
  ``price``, and ``battery_power``) and tags (``device_id``, ``data_source``, ``location``),
  at the top level or in nested sections matched by their last name (``battery.battery_soc``);
* else a bad record.

Times are ISO 8601 with an offset, epoch numbers (the unit by magnitude) or naive text in the
given time zone. A value that is not a number, a time that cannot be read, a text longer than
its column and a number that does not fit its ``DECIMAL`` reject their record with a
:class:`Problem` naming file, record and field; the records around it are kept.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sunarchive.importing import times
from sunarchive.importing.jsondoc import flatten, parse_document, records_of
from sunarchive.importing.mapping import TIME_COLUMNS, names
from sunarchive.model import InputError
from sunarchive.upstream.goodwe.tables import DECIMALS, TEXT_LENGTHS, Session

MEASUREMENT = "energy_data"
TAGS = ("device_id", "data_source", "location")
DEFAULT_TAGS = {"device_id": "goodwe", "data_source": "goodwe-json", "location": "home"}
"""Tags of a snapshot that names none (the older system ran one inverter); ``--tag`` sets
others for every snapshot."""
MAX_VALUE = 1e100
SESSION_TIMES = ("start_time", "end_time", "created_at")
SESSION_INTEGERS = ("battery_soc_start", "battery_soc_end")


@dataclass(frozen=True)
class Problem:
    """A record (or a whole file, ``record`` None) that was not taken, and why."""

    path: str
    record: int | None
    field: str | None
    message: str

    def line(self) -> str:
        where = [self.path]
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return ": ".join([*where, self.message])


@dataclass(frozen=True)
class Snapshot:
    """One energy reading: UTC epoch ns, tags in the profile's order, field values."""

    time_ns: int
    tags: tuple[str, ...]
    fields: dict[str, float]
    record: int


@dataclass
class SourceFile:
    """What one file holds."""

    path: Path
    sha256: str = ""
    records: int = 0
    snapshots: list[Snapshot] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    session_records: list[int] = field(default_factory=list)
    """The record number of each session."""
    problems: list[Problem] = field(default_factory=list)
    unknown_keys: set[str] = field(default_factory=set)


class _Bad(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def read_file(path: Path, field_names: list[str], timezone: str | None,
              tags: dict[str, str]) -> SourceFile:
    """Read one file; ``field_names`` are the energy profile's fields, ``tags`` the tag
    values that override the records' own (``--tag``)."""
    out = SourceFile(path)
    try:
        data = path.read_bytes()
        out.sha256 = hashlib.sha256(data).hexdigest()
        records = records_of(parse_document(path, data), set(TIME_COLUMNS))
    except (OSError, InputError) as exc:
        message = str(exc)
        prefix = f"{path}: "
        out.problems.append(Problem(str(path), None, None, message.removeprefix(prefix)))
        return out
    out.records = len(records)
    zone = ZoneInfo(timezone) if timezone else None
    for number, record in enumerate(records, start=1):
        try:
            if not isinstance(record, dict):
                raise _Bad(None, f"a JSON {type(record).__name__}, not an object")
            flat = dict(flatten(record))
            if "session_id" in flat:
                out.sessions.append(_session(flat, zone, out.unknown_keys))
                out.session_records.append(number)
            else:
                out.snapshots.append(_snapshot(flat, number, field_names, zone, tags,
                                               out.unknown_keys))
        except _Bad as bad:
            out.problems.append(Problem(str(path), number, bad.column, bad.message))
    return out


# -- snapshots --------------------------------------------------------------------------------
def _snapshot(flat: dict[str, Any], number: int, field_names: list[str], zone: ZoneInfo | None,
              tags: dict[str, str], unknown: set[str]) -> Snapshot:
    wanted = {*field_names, *TAGS, *TIME_COLUMNS}
    named, ambiguous = names(list(flat), {}, wanted)
    time_key = next((named[t] for t in TIME_COLUMNS if t in named), None)
    if time_key is None:
        raise _Bad(None, "neither a charging session (no session_id) nor an energy "
                         f"snapshot (no time: one of {', '.join(TIME_COLUMNS)})")
    for name, columns in ambiguous.items():
        raise _Bad(name, f"several keys end in it ({', '.join(columns)}); give one")
    used = {named[n] for n in wanted if n in named}
    unknown.update(k for k in flat if k not in used)
    time_ns = _time_ns(flat[time_key], time_key, zone)
    values = {}
    for name in field_names:
        if name in named:
            number_ = _number(flat[named[name]], named[name])
            if number_ is not None:
                values[name] = number_
    tag_values = []
    for tag in TAGS:
        value = tags.get(tag)
        if value is None and tag in named and flat[named[tag]] not in (None, ""):
            value = str(flat[named[tag]])
        tag_values.append(DEFAULT_TAGS[tag] if value is None else value)
    return Snapshot(time_ns, tuple(tag_values), values, number)


def _number(value: Any, column: str) -> float | None:
    if value is None or value == "":
        return None      # missing, not zero
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(column, f"{_shown(value)} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise _Bad(column, f"{_shown(value)} is not a number") from None
    if not math.isfinite(number) or abs(number) > MAX_VALUE:
        raise _Bad(column, f"{_shown(value)} is not a storable number (finite, at most "
                           "±1e100)")
    return number


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _time_ns(value: Any, column: str, zone: ZoneInfo | None) -> int:
    if value is None or value == "" or isinstance(value, bool):
        raise _Bad(column, "empty time" if value in (None, "") else "not a time")
    try:
        ns, naive = times._one_time(str(value))
    except (ValueError, InputError) as exc:
        raise _Bad(column, str(exc)) from None
    if ns < 0:
        raise _Bad(column, f"time {value!r} is outside 1970 … 2200")
    if naive:
        if zone is None:
            raise _Bad(column, f"time {value!r} has no offset; give --timezone or an offset")
        wall = datetime.fromtimestamp(ns // 10**9, UTC).replace(tzinfo=zone)
        ns = int(wall.timestamp()) * 10**9 + ns % 10**9
    return ns


# -- sessions ---------------------------------------------------------------------------------
def _session(flat: dict[str, Any], zone: ZoneInfo | None, unknown: set[str]) -> Session:
    known = {"session_id", *SESSION_TIMES, *SESSION_INTEGERS, *DECIMALS, "status", "id"}
    unknown.update(k for k in flat if k not in known)
    raw = flat["session_id"]
    if raw is None or raw == "" or isinstance(raw, bool | dict | list):
        raise _Bad("session_id", "empty" if raw in (None, "") else f"{_shown(raw)} is not an id")
    session_id = str(raw)
    _text("session_id", session_id)
    stamps: dict[str, datetime | None] = {}
    for name in SESSION_TIMES:
        value = flat.get(name)
        stamps[name] = None if value in (None, "") else \
            datetime.fromtimestamp(0, UTC) + timedelta(microseconds=_time_ns(value, name,
                                                                             zone) // 1000)
    if stamps["start_time"] is None:
        raise _Bad("start_time", "missing: a session needs its start time")
    end = stamps["end_time"]
    if end is not None and end < stamps["start_time"]:
        raise _Bad("end_time", f"{end.isoformat()} is before start_time "
                               f"{stamps['start_time'].isoformat()}")
    integers = {name: _integer(flat.get(name), name) for name in SESSION_INTEGERS}
    decimals = {name: _decimal(flat.get(name), name) for name in DECIMALS}
    status = flat.get("status")
    if status is not None and not isinstance(status, str):
        raise _Bad("status", f"{_shown(status)} is not text")
    _text("status", status)
    return Session(session_id, stamps["start_time"], end, integers["battery_soc_start"],
                   integers["battery_soc_end"], decimals["energy_charged_kwh"],
                   decimals["average_price_pln"], decimals["total_cost_pln"], status,
                   stamps["created_at"])


def _text(column: str, value: str | None) -> None:
    limit = TEXT_LENGTHS[column]
    if value is not None and len(value) > limit:
        raise _Bad(column, f"{len(value)} characters; the column holds {limit}")


def _integer(value: Any, column: str) -> int | None:
    number = _number(value, column)
    if number is None:
        return None
    if number != int(number):
        raise _Bad(column, f"{_shown(value)} is not a whole number")
    if not 0 <= number <= 100:
        raise _Bad(column, f"{_shown(value)} is not a state of charge (0 … 100 %)")
    return int(number)


def _decimal(value: Any, column: str) -> Decimal | None:
    """The value rounded half away from zero to its column's scale, as the database does."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(column, f"{_shown(value)} is not a number")
    precision, scale = DECIMALS[column]
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Bad(column, f"{_shown(value)} is not a number") from None
    if not number.is_finite():
        raise _Bad(column, f"{_shown(value)} is not a finite number")
    limit = Decimal(10) ** (precision - scale)
    rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP) \
        if abs(number) < limit else limit
    if abs(rounded) >= limit:
        raise _Bad(column, f"{_shown(value)} does not fit DECIMAL({precision},{scale})")
    return rounded
