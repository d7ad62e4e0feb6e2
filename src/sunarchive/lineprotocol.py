"""InfluxDB line protocol: a parser into columns per measurement, and a formatter.

``measurement[,tag=v...] field=v[,field=v...] [timestamp]``. Lines without backslashes or
double quotes (nearly all machine-written ones) take a fast path of plain splits; the others
are scanned character by character. A malformed line becomes a :class:`LineError` naming its
1-based line number and what is wrong; the good lines around it are kept (partial writes).

Values: floats ``1``, ``-1.5E-2``; integers ``12i``; unsigned ``12u``; booleans
``t T true True TRUE`` / ``f F false False FALSE``; strings in double quotes. NaN and Inf are
rejected, and so are floats beyond float64 (``1e999``), integers beyond int64 and unsigned
integers beyond uint64, each naming its line and field. Integers and booleans are carried as
float64 (exact up to 2**53). Timestamps must fit int64 nanoseconds after scaling.

Precisions: ``ns`` (``n``), ``us`` (``u``), ``ms``, ``s``, ``m`` (minutes), ``h`` (hours), as
InfluxDB 1.x takes them. Lines may be up to ``MAX_LINE_BYTES`` (1 MiB) long. A field key named
twice in one line keeps its last value, as ``influxd`` does (both values must have one type).
The first line of a body that gives a measurement's field a type fixes it: a later line with
another type is refused, named by its number, whichever parser path either line took. A
type the store already holds for the field (``stored_kinds``) comes first: then every line
giving the field another type is refused, as ``influxd`` refuses a field type conflict.

Precision ``auto`` (InfluxDB 3) guesses the unit from the magnitude of the timestamp:
|t| < 1e11 → seconds, < 1e14 → milliseconds, < 1e17 → microseconds, else nanoseconds.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as arrow_compute

from sunarchive.bounds import TIME_RANGE_TEXT, times_ok, value_problem, values_bad
from sunarchive.lineprotocol_columnar import FastMeasurement, parse_fast

pc: Any = arrow_compute   # the stubs type kernels too narrowly for these chains

Kind = Literal["float", "int", "uint", "bool", "string"]
UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
PRECISION_NAMES = {"ns": "ns", "nanosecond": "ns", "n": "ns", "us": "us", "microsecond": "us",
                   "u": "us", "ms": "ms", "millisecond": "ms", "s": "s", "second": "s",
                   "m": "m", "minute": "m", "h": "h", "hour": "h", "auto": "auto"}
TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")
UNSIGNED = re.compile(r"\d+")
MAX_SHOWN = 200
MAX_LINE_BYTES = 2**20
"""The longest line taken (bytes of UTF-8), 1 MiB; InfluxDB takes long lines too."""


class PrecisionError(ValueError):
    """An unknown precision parameter."""


@dataclass
class LineError:
    """A line that was not written: where, what it said, and why."""

    line_number: int
    line: str
    message: str

    @property
    def reason(self) -> str:
        """The message without its ``line N: `` prefix."""
        prefix = f"line {self.line_number}: "
        return self.message[len(prefix):] if self.message.startswith(prefix) else self.message


@dataclass
class ParsedField:
    """One field key's values over the measurement's points (NaN/None where absent)."""

    kind: Kind
    values: np.ndarray[Any, Any]


@dataclass
class ParsedMeasurement:
    """All good points of one measurement, columnar."""

    measurement: str
    tag_keys: tuple[str, ...]
    tag_sets: list[tuple[str, ...]]
    tag_index: np.ndarray[Any, np.dtype[np.int32]]
    time_ns: np.ndarray[Any, np.dtype[np.int64]]
    fields: dict[str, ParsedField]
    line_numbers: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.empty(0, np.int64))
    """The 1-based line of each point (to name it in a file import's report)."""

    def take(self, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> ParsedMeasurement:
        """The points where ``keep`` is true (tag sets and field kinds unchanged)."""
        fields = {k: ParsedField(f.kind, f.values[keep]) for k, f in self.fields.items()}
        return ParsedMeasurement(self.measurement, self.tag_keys, self.tag_sets,
                                 self.tag_index[keep], self.time_ns[keep], fields,
                                 self.line_numbers[keep])


@dataclass
class ParseResult:
    measurements: dict[str, ParsedMeasurement]
    errors: list[LineError]
    lines: int = 0
    points: int = 0


class _BadLine(Exception):
    pass


class _KindConflict(_BadLine):
    """A line gives a field another type than an earlier line or the store."""


StoredKinds = Callable[[str], Mapping[str, str]]
"""Measurement → the line-protocol type of each field as the store holds it (fields the
store has no fixed type for are left out)."""


def stored_conflict(name: str, kind: str, stored: str) -> str:
    """The reason given for a point whose field ``name`` has another type than the store's."""
    return (f"field type conflict: field {name!r} is {kind} here but {stored} in the store "
            "(a field's type is fixed by its first write)")


class _FirstLater(Exception):
    """A line's field kind conflicts with a kind first given by a *later* line (of the fast
    path): the measurement must be parsed again in line order."""


@dataclass
class _Builder:
    """Points of one measurement: the fast path's columns, then lines parsed one by one."""

    fast: FastMeasurement | None = None
    fast_lines: np.ndarray[Any, np.dtype[np.int64]] | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    values: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)
    """Field → the 0-based line that first gave it (its kind); ``STORED`` for a kind the
    store holds."""

    def check_kinds(self, fields: dict[str, tuple[Kind, Any]], index: int) -> None:
        for name, (kind, _) in fields.items():
            known = self.kinds.get(name)
            if known is not None and known != kind:
                first = self.first_line.get(name, -1)
                if first == STORED:
                    raise _KindConflict(stored_conflict(name, kind, known))
                if first > index:
                    raise _FirstLater(name)
                raise _KindConflict(f"field {name!r} is {kind} here but {known} earlier")

    def add(self, tags: dict[str, str], time_ns: int, fields: dict[str, tuple[Kind, Any]],
            line: int) -> None:
        index = len(self.times)
        self.tags.append(tags)
        self.times.append(time_ns)
        self.lines.append(line)
        for name, (kind, value) in fields.items():
            self.kinds.setdefault(name, kind)
            self.first_line.setdefault(name, line)
            self.values.setdefault(name, []).append((index, value))

    def build(self, name: str) -> ParsedMeasurement:
        """Fast and slow points together, in line order."""
        fast = self.fast
        fast_sets = fast.tags if fast is not None else []
        keys = tuple(sorted({k for t in [*fast_sets, *self.tags] for k in t}))
        sets: dict[tuple[str, ...], int] = {}
        fast_index = np.array([sets.setdefault(tuple(t.get(k, "") for k in keys), len(sets))
                               for t in fast_sets], np.int32)
        slow_index = np.array([sets.setdefault(tuple(t.get(k, "") for k in keys), len(sets))
                               for t in self.tags], np.int32)
        n_fast = 0 if fast is None else len(fast.time_ns)
        index = np.concatenate([fast_index[fast.tag_index] if fast is not None
                                else np.empty(0, np.int32), slow_index]).astype(np.int32)
        times = np.concatenate([fast.time_ns if fast is not None else np.empty(0, np.int64),
                                np.array(self.times, np.int64)])
        lines = np.concatenate([
            self.fast_lines if self.fast_lines is not None else np.empty(0, np.int64),
            np.array(self.lines, np.int64)])
        order = np.argsort(lines, kind="stable")
        fields = {fname: ParsedField(kind, self._column(fname, kind, n_fast)[order])
                  for fname, kind in self._all_kinds().items()
                  if self.first_line.get(fname) != STORED or fname in self.values}
        return ParsedMeasurement(name, keys, list(sets), index[order], times[order], fields,
                                 lines[order] + 1)

    def kinds_taken(self) -> dict[str, Kind]:
        """The kind each field was taken with (the fast path's and the lines')."""
        return self._all_kinds()

    def _all_kinds(self) -> dict[str, Kind]:
        kinds: dict[str, Kind] = {}
        if self.fast is not None:
            kinds.update({k: cast(Kind, kind) for k, (kind, _) in self.fast.fields.items()})
        for k, kind in self.kinds.items():
            kinds.setdefault(k, kind)
        return kinds

    def _column(self, fname: str, kind: Kind, n_fast: int) -> np.ndarray[Any, Any]:
        total = n_fast + len(self.times)
        column: np.ndarray[Any, Any] = (np.full(total, None, dtype=object) if kind == "string"
                                        else np.full(total, np.nan))
        if self.fast is not None and fname in self.fast.fields:
            column[:n_fast] = self.fast.fields[fname][1]
        for i, value in self.values.get(fname, []):
            column[n_fast + i] = value
        return column


STORED = -2
"""``_Builder.first_line`` of a field whose kind comes from the store."""


def _seeded(kinds: Mapping[str, str]) -> _Builder:
    """A builder that knows the kinds the store holds (every line is checked against them)."""
    return _Builder(kinds={k: cast(Kind, v) for k, v in kinds.items()},
                    first_line=dict.fromkeys(kinds, STORED))


def normalize_precision(text: str) -> str:
    """``ns``/``us``/``ms``/``s``/``auto`` for any accepted spelling; PrecisionError else."""
    found = PRECISION_NAMES.get(text.strip().lower()) if text else "ns"
    if found is None:
        raise PrecisionError(f"precision {text!r} is not one of n, ns, u, us, ms, s, m, h "
                             "(or nanosecond, microsecond, millisecond, second, minute, "
                             "hour, auto)")
    return found


def parse_lines(body: bytes | str, precision: str = "ns", now_ns: int | None = None,
                max_line_bytes: int = MAX_LINE_BYTES, columnar: bool = True,
                stored_kinds: StoredKinds | None = None) -> ParseResult:
    """Parse a write body. Bad lines are reported; good ones are kept.

    Simple lines (no ``\\`` or ``"``) go through the columnar fast path
    (:mod:`sunarchive.lineprotocol_columnar`); the rest, and every line it hands back, are
    parsed one by one here, which also words each error. ``columnar=False`` parses every
    line one by one (the reference the fast path is tested against). A measurement whose
    slow line conflicts in kind with a later fast line is parsed again line by line, so the
    later line is the one refused. A measurement whose lines give a field another type than
    ``stored_kinds`` says the store holds is parsed again line by line against those types."""
    unit = normalize_precision(precision)
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    raw = text.split("\n")
    lines = pc.utf8_ltrim(pc.utf8_rtrim(pa.array(raw, pa.string()), "\r"), " \t")
    length = pc.binary_length(lines).to_numpy(zero_copy_only=False)
    content = (length > 0) & ~_found(text, lines, "#", pc.starts_with)
    simple = content & (length <= max_line_bytes) & ~_found(text, lines, "\\") \
        & ~_found(text, lines, '"') & columnar
    stored = stored_kinds or (lambda name: {})
    one = _Pass(raw, unit, time.time_ns() if now_ns is None else now_ns, max_line_bytes)
    one.run(lines, content, simple)
    seeds = {name: kinds for name in one.against_store(stored) if (kinds := stored(name))}
    one.redo |= set(seeds)
    while one.redo:   # once: the measurements redone are parsed wholly line by line
        simple &= ~one.lines_of(one.redo, len(raw))
        one = _Pass(raw, unit, one.now, max_line_bytes, seeds=seeds)
        one.run(lines, content, simple)
    measurements = {name: b.build(name) for name, b in one.builders.items()}
    return ParseResult(measurements, one.errors, int(content.sum()), one.points)


@dataclass
class _Pass:
    """One pass over a body: the fast path, then the other lines one by one, in order."""

    raw: list[str]
    unit: str
    now: int
    max_line_bytes: int
    builders: dict[str, _Builder] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    points: int = 0
    redo: set[str] = field(default_factory=set)
    """Measurements to parse wholly line by line (a line found a later line's kind first)."""
    slow_lines: dict[str, list[int]] = field(default_factory=dict)
    """Measurement → the lines parsed one by one that named it."""
    seeds: dict[str, Mapping[str, str]] = field(default_factory=dict)
    """Measurement → field kinds the store holds (its lines are all parsed one by one)."""
    kind_refused: set[str] = field(default_factory=set)
    """Measurements with a line refused for a field kind conflict inside the body."""

    def against_store(self, stored: StoredKinds) -> set[str]:
        """Measurements whose lines may disagree with the kinds the store holds: a field
        taken with another kind, or a line refused for a kind (which may be the store's)."""
        out = set()
        for name, builder in self.builders.items():
            kinds = stored(name)
            if not kinds:
                continue
            taken = builder.kinds_taken()
            if name in self.kind_refused or any(kinds.get(k, kind) != kind
                                                for k, kind in taken.items()):
                out.add(name)
        return out

    def run(self, lines: pa.StringArray, content: np.ndarray[Any, np.dtype[np.bool_]],
            simple: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        simple_at = np.flatnonzero(simple)
        units = None if self.unit == "auto" else UNITS_NS[self.unit]
        fast = parse_fast(lines.filter(pa.array(simple)), units, self.now, _head)
        for name, found in fast.measurements.items():
            self.builders[name] = _fast_builder(found, simple_at[found.line_index])
            self.points += len(found.time_ns)
        rest = np.union1d(np.flatnonzero(content & ~simple), simple_at[fast.leftover])
        for i in rest.tolist():
            self.points += self.one(self.raw[i].rstrip("\r").lstrip(" \t"), i)

    def one(self, line: str, index: int) -> int:
        """Parse line ``index`` (0-based) into its builder; 1 if it was kept, else 0."""
        number = index + 1
        if len(line) > self.max_line_bytes // 4 and \
                len(line.encode("utf-8", "surrogatepass")) > self.max_line_bytes:
            self.errors.append(LineError(number, line[:MAX_SHOWN] + "…", f"line {number}: "
                                         f"longer than {self.max_line_bytes} bytes"))
            return 0
        try:
            measurement, tags, fields, stamp = _parse(line)
            self.slow_lines.setdefault(measurement, []).append(index)
            time_ns = _time_ns(stamp, self.unit, self.now)
            known = self.builders.get(measurement)
            if known is None and measurement in self.seeds:
                known = self.builders[measurement] = _seeded(self.seeds[measurement])
            if known is not None:
                known.check_kinds(fields, index)
            self.builders.setdefault(measurement, _Builder()).add(tags, time_ns, fields, index)
            return 1
        except _FirstLater:
            self.redo.add(measurement)
            return 0
        except _BadLine as exc:
            if isinstance(exc, _KindConflict):
                self.kind_refused.add(measurement)
            shown = line if len(line) <= MAX_SHOWN else line[:MAX_SHOWN] + "…"
            self.errors.append(LineError(number, shown, f"line {number}: {exc}"))
            return 0

    def lines_of(self, names: set[str], size: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """True at every line of the measurements ``names`` (the fast path's and the others,
        which the fast path may take in another pass)."""
        mask = np.zeros(size, bool)
        for name in names:
            fast_lines = self.builders[name].fast_lines
            if fast_lines is not None:
                mask[fast_lines] = True
            mask[self.slow_lines.get(name, [])] = True
        return mask


def _fast_builder(found: FastMeasurement, line_numbers: np.ndarray[Any, np.dtype[np.int64]]
                  ) -> _Builder:
    """A builder holding the fast path's points of one measurement, with each field's kind
    and first line."""
    first = {k: int(line_numbers[int(np.argmax(~np.isnan(values)))])
             for k, (_, values) in found.fields.items()}
    return _Builder(fast=found, fast_lines=line_numbers, first_line=first,
                    kinds={k: cast(Kind, kind) for k, (kind, _) in found.fields.items()})


def _flag(array: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
    return np.asarray(array.to_numpy(zero_copy_only=False), bool)


def _found(text: str, lines: pa.StringArray, needle: str, kernel: Any = pc.match_substring
           ) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Lines where ``kernel`` finds ``needle``; no kernel run when the body has none (the
    body-wide search is a memchr, the per-line kernel costs milliseconds per 5000 lines)."""
    if needle not in text:
        return np.zeros(len(lines), bool)
    return _flag(kernel(lines, needle))


def _head(text: str) -> tuple[str, dict[str, str]]:
    """Measurement and tags of a simple line's first part."""
    head = text.split(",")
    return _measurement(head[0]), _pairs(head[1:], "tag")


def _time_ns(stamp: str | None, unit: str, now_ns: int) -> int:
    if stamp is None:
        return now_ns
    if not INTEGER.fullmatch(stamp):
        raise _BadLine(f"timestamp {stamp!r} is not an integer")
    value = int(stamp)
    if unit == "auto":
        size = abs(value)
        unit = "s" if size < 1e11 else "ms" if size < 1e14 else "us" if size < 1e17 else "ns"
    ns = value * UNITS_NS[unit]
    if not -(2**63) < ns < 2**63:
        raise _BadLine(f"timestamp {stamp} is out of range for precision {unit}")
    return ns


def _parse(line: str) -> tuple[str, dict[str, str], dict[str, tuple[Kind, Any]], str | None]:
    if "\\" in line or '"' in line:
        return _parse_slow(line)
    parts = line.split(" ")
    parts = [p for p in parts if p]
    if len(parts) < 2:
        raise _BadLine("no fields")
    if len(parts) > 3:
        raise _BadLine(f"unexpected {parts[3]!r} after the timestamp")
    head = parts[0].split(",")
    tags = _pairs(head[1:], "tag")
    fields: dict[str, tuple[Kind, Any]] = {}
    for item in parts[1].split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _BadLine(f"field {item!r} is not key=value")
        _put_field(fields, key, _value(key, value))
    return _measurement(head[0]), tags, fields, parts[2] if len(parts) == 3 else None


def _measurement(name: str) -> str:
    if not name:
        raise _BadLine("no measurement name")
    return name


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _BadLine(f"{what} {item!r} is not key=value")
        if what == "tag" and not value:
            raise _BadLine(f"tag {key!r} has no value")
        if key in out:
            raise _BadLine(f"duplicate {what} {key!r}")
        out[key] = value
    return out


def _put_field(fields: dict[str, tuple[Kind, Any]], key: str, value: tuple[Kind, Any]) -> None:
    """Add a field to a line's fields; a key named again keeps its last value (as
    ``influxd``), if that value has the same kind."""
    known = fields.get(key)
    if known is not None and known[0] != value[0]:
        raise _BadLine(f"field {key!r} is {value[0]} here but {known[0]} earlier in the line")
    fields[key] = value


def _value(name: str, text: str) -> tuple[Kind, Any]:
    if not text:
        raise _BadLine(f"field {name!r} has no value")
    last = text[-1]
    if last == "i" and INTEGER.fullmatch(text[:-1]):
        return "int", _in_range(name, text, -(2**63), 2**63 - 1)
    if last == "u" and UNSIGNED.fullmatch(text[:-1]):
        return "uint", _in_range(name, text, 0, 2**64 - 1)
    if text in TRUE:
        return "bool", 1.0
    if text in FALSE:
        return "bool", 0.0
    if FLOAT.fullmatch(text):
        number = float(text)
        if math.isinf(number):
            raise _BadLine(f"field {name!r}: {text!r} is out of range")
        return "float", number
    raise _BadLine(f"field {name!r}: invalid value {text!r}")


def _in_range(name: str, text: str, low: int, high: int) -> float:
    """The integer ``text`` (with its ``i``/``u`` suffix) as float64, if within
    ``[low, high]`` (int64 or uint64, as InfluxDB stores them)."""
    if len(text) > 22 or not low <= int(text[:-1]) <= high:
        kind = "int64" if text[-1] == "i" else "uint64"
        raise _BadLine(f"field {name!r}: {text[:40]!r} is out of range for {kind}")
    return float(int(text[:-1]))


# -- lines with escapes or quoted strings ------------------------------------------------------
def _parse_slow(line: str) -> tuple[str, dict[str, str], dict[str, tuple[Kind, Any]],
                                   str | None]:
    pos, n = 0, len(line)
    name, pos = _token(line, pos, stops=", ")
    tags: dict[str, str] = {}
    while pos < n and line[pos] == ",":
        key, pos = _token(line, pos + 1, stops="=")
        if pos >= n or not key:
            raise _BadLine(f"tag {key!r} is not key=value")
        value, pos = _token(line, pos + 1, stops=", ")
        if not value:
            raise _BadLine(f"tag {key!r} has no value")
        if key in tags:
            raise _BadLine(f"duplicate tag {key!r}")
        tags[key] = value
    if pos >= n or line[pos] != " ":
        raise _BadLine("no fields")
    fields: dict[str, tuple[Kind, Any]] = {}
    pos += 1
    while True:
        key, pos = _token(line, pos, stops="=")
        if pos >= n or not key:
            raise _BadLine(f"field {key!r} is not key=value" if key else "no fields")
        if pos + 1 < n and line[pos + 1] == '"':
            text, pos = _quoted(line, pos + 2, key)
            _put_field(fields, key, ("string", text))
        else:
            raw, pos = _token(line, pos + 1, stops=", ", escapes=False)
            _put_field(fields, key, _value(key, raw))
        if pos >= n or line[pos] == " ":
            break
        pos += 1  # the comma
    stamp = line[pos:].strip() or None
    if stamp is not None and " " in stamp:
        raise _BadLine(f"unexpected {stamp.split()[1]!r} after the timestamp")
    return _measurement(name), tags, fields, stamp


def _token(line: str, pos: int, stops: str, escapes: bool = True) -> tuple[str, int]:
    """Characters up to an unescaped stop character; backslash escapes are resolved."""
    out = []
    n = len(line)
    while pos < n:
        char = line[pos]
        if escapes and char == "\\" and pos + 1 < n:
            out.append(line[pos + 1])
            pos += 2
            continue
        if char in stops:
            break
        out.append(char)
        pos += 1
    return "".join(out), pos


def _quoted(line: str, pos: int, key: str) -> tuple[str, int]:
    out = []
    n = len(line)
    while pos < n:
        char = line[pos]
        if char == "\\" and pos + 1 < n and line[pos + 1] in '"\\':
            out.append(line[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise _BadLine(f"field {key!r}: unterminated string")


# -- formatting ------------------------------------------------------------------------------
def _escape(text: str, chars: str) -> str:
    """Backslash-escape ``chars`` and the backslash itself (the parser reads ``\\x`` as x)."""
    text = text.replace("\\", "\\\\")
    for char in chars:
        text = text.replace(char, "\\" + char)
    return text


def format_value(value: bool | int | float | str) -> str:
    """A field value in line protocol (integers get ``i``; strings are quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol cannot carry {value!r}")
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_line(measurement: str, tags: dict[str, str],
            fields: dict[str, bool | int | float | str], time_ns: int | None = None) -> str:
    """One line of line protocol, escaped; tags sorted by key as InfluxDB recommends."""
    if not fields:
        raise ValueError("a point needs at least one field")
    head = _escape(measurement, ", ")
    for key in sorted(tags):
        if tags[key] != "":
            head += f",{_escape(key, ',= ')}={_escape(tags[key], ',= ')}"
    body = ",".join(f"{_escape(k, ',= ')}={format_value(v)}" for k, v in fields.items())
    return f"{head} {body}" + ("" if time_ns is None else f" {time_ns}")


def unstorable_points(m: ParsedMeasurement) -> dict[int, str]:
    """Why each point of ``m`` the store cannot hold is refused, by index: a time outside
    the storable range or a numeric field value that is not finite or too large
    (:mod:`sunarchive.bounds`, the field named). Empty when every point is storable."""
    why: dict[int, str] = {}
    for i in np.flatnonzero(~times_ok(m.time_ns)).tolist():
        why[i] = f"timestamp {int(m.time_ns[i])} ns is outside the storable range " \
                 f"{TIME_RANGE_TEXT}"
    for key, f in m.fields.items():
        if f.kind == "string":
            continue
        values = f.values.astype(np.float64)
        for i in np.flatnonzero(values_bad(values)).tolist():
            why.setdefault(i, f"field {key!r} value {values[i]:g} is "
                              f"{value_problem(float(values[i]))}")
    return why
