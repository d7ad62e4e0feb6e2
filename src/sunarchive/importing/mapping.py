"""Columns of a read file → the tags, fields and UTC times of a profile.

* ``--map col=name`` renames a column before matching (a file without that column is told
  in its report, not failed: snapshots may lack a section); ``--tag k=v`` gives a constant
  tag.
* A column matches a profile field or tag (or a time column name) by its name. A column with
  a dotted name (``inverter.battery_soc``, from flattened JSON) also matches by its last
  segment, when exactly one column ends in that segment and no column has the exact name;
  when several do, none matches and the file's report says which to ``--map``.
* Times: see :mod:`sunarchive.importing.times`. A field value that is not a number, or not
  a storable one (±inf, beyond ±1e100: :mod:`sunarchive.bounds`), rejects its row (line
  number and column); an empty value is a missing value (NaN). Columns that are neither
  time, tag nor field are reported once.
* ``products`` derive a field missing from the columns as the product of two others (the
  lab preset's power = current × voltage, W = A × V).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _pc

from sunarchive.bounds import value_problem, values_bad
from sunarchive.importing.times import NUMBER_RE, times
from sunarchive.model import FloatArray, InputError, IntArray
from sunarchive.profiles import Profile

pc: Any = _pc   # the pyarrow.compute stubs do not follow chunked arrays through casts

SMALL_ROWS = 64
TIME_COLUMNS = ("time", "timestamp", "ts", "datetime", "date_time", "_time")
BoolArray = npt.NDArray[np.bool_]
Column = Any
"""A pyarrow (chunked) array."""


@dataclass
class Mapping:
    """How the columns of a file become a profile's tags and fields."""

    profile: Profile
    time_column: str
    tag_columns: dict[str, str]
    """Profile tag → column."""
    field_columns: dict[str, str]
    """Profile field → column."""
    constant_tags: dict[str, str]
    unknown: list[str]
    products: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Field → the two fields whose product it is (only fields no column gives)."""
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Name → the dotted columns that all end in it (none of them matched)."""
    absent: list[str] = field(default_factory=list)
    """``--map`` columns this file lacks (a snapshot without a section: not an error)."""


@dataclass
class Mapped:
    """Accepted rows (file order) and the rows rejected, with line numbers and reasons."""

    time_ns: IntArray
    tag_sets: list[tuple[str, ...]]
    tag_index: npt.NDArray[np.int32]
    fields: dict[str, FloatArray]
    rejected: list[tuple[int, str]] = field(default_factory=list)


def names(columns: list[str], renames: dict[str, str], wanted: set[str]
          ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Name → column: renamed or exact names, then the leaf rule for the ``wanted`` names
    still missing; and the wanted names several dotted columns end in."""
    named = {renames.get(c, c): c for c in columns}
    leaves: dict[str, list[str]] = {}
    for col in columns:
        if "." in col and col not in renames:
            leaves.setdefault(col.rsplit(".", 1)[1], []).append(col)
    ambiguous: dict[str, list[str]] = {}
    for name in sorted(wanted - named.keys()):
        found = leaves.get(name, [])
        if len(found) == 1:
            named[name] = found[0]
        elif found:
            ambiguous[name] = found
    return named, ambiguous


def _wanted(profile: Profile, time_column: str | None) -> set[str]:
    return {*profile.tags, *(f.name for f in profile.fields),
            *([time_column] if time_column else TIME_COLUMNS)}


def plan(columns: list[str], profile: Profile, time_column: str | None,
         renames: dict[str, str], constant_tags: dict[str, str],
         products: dict[str, tuple[str, str]] | None = None) -> Mapping:
    """Match ``columns`` to ``profile``; raise :class:`InputError` when that is impossible."""
    for key in constant_tags:
        if key not in profile.tags:
            raise InputError(f"--tag {key}: {profile.name} has tags "
                             f"{', '.join(profile.tags) or '(none)'}")
    named, ambiguous = names(columns, renames, _wanted(profile, time_column))
    time_col = _time_column(columns, named, time_column)
    tag_columns = {t: named[t] for t in profile.tags if t in named and named[t] != time_col}
    missing = [t for t in profile.tags if t not in tag_columns and t not in constant_tags]
    if missing:
        raise InputError(f"tag {missing[0]!r} of {profile.name} is neither a column nor given "
                         f"as --tag {missing[0]}=VALUE" + _hint(ambiguous, missing[0]))
    field_names = {f.name for f in profile.fields}
    field_columns = {n: named[n] for n in sorted(field_names)
                     if n in named and named[n] != time_col}
    derived = {n: pair for n, pair in (products or {}).items()
               if n in field_names and n not in field_columns
               and all(p in field_columns for p in pair)}
    if not field_columns:
        raise InputError(f"no column matches a field of {profile.name} "
                         f"({', '.join(sorted(field_names))}); rename with --map COLUMN=FIELD"
                         + "".join(_hint(ambiguous, n) for n in sorted(field_names)))
    used = {time_col, *tag_columns.values(), *field_columns.values()}
    unknown = [c for c in columns if c not in used]
    return Mapping(profile, time_col, tag_columns, field_columns, dict(constant_tags), unknown,
                   derived, ambiguous, [c for c in renames if c not in columns])


def _time_column(columns: list[str], named: dict[str, str], time_column: str | None) -> str:
    if time_column is not None:
        if time_column not in columns and time_column not in named:
            raise InputError(f"--time-column {time_column!r}: no such column (columns: "
                             f"{', '.join(columns)})")
        return named.get(time_column, time_column)
    found = [named[n] for n in TIME_COLUMNS if n in named]
    if not found:
        raise InputError(f"no time column among {', '.join(columns)}; give --time-column")
    return found[0]


def _hint(ambiguous: dict[str, list[str]], name: str) -> str:
    cols = ambiguous.get(name)
    return f" ({', '.join(cols)} all end in {name!r}: pick one with --map)" if cols else ""


def score(columns: list[str], profile: Profile, renames: dict[str, str]) -> int:
    """How many columns name a field or tag of ``profile`` (to guess the measurement)."""
    named, _ = names(columns, renames, _wanted(profile, None))
    return len(named.keys() & {f.name for f in profile.fields}) * 2 + \
        len(named.keys() & set(profile.tags))


def apply(table: pa.Table, lines: IntArray, mapping: Mapping,
          timezone: str | None) -> Mapped:
    """Convert the rows; reject each bad row with its line number and the reason."""
    n = table.num_rows
    ok = np.ones(n, dtype=bool)
    rejected: list[tuple[int, str]] = []

    def reject(mask: BoolArray, reason: Any) -> None:
        bad = np.flatnonzero(mask & ok)
        for i in bad.tolist():
            rejected.append((int(lines[i]), reason(i) if callable(reason) else reason))
        ok[bad] = False

    time_ns, bad_time, why = times(table.column(mapping.time_column), timezone)
    reject(bad_time, lambda i: f"column {mapping.time_column!r}: {why[i]}")
    fields: dict[str, FloatArray] = {}
    for name, col in mapping.field_columns.items():
        values, bad, raw = _numbers(table.column(col))
        reject(bad, lambda i, c=col, r=raw: f"column {c!r}: {r[i]!r} is not a number")
        reject(values_bad(values), _unstorable(col, table.column(col), values))
        fields[name] = values
    for name, (a, b) in mapping.products.items():
        with np.errstate(over="ignore", invalid="ignore"):
            fields[name] = fields[a] * fields[b]
        reject(values_bad(fields[name]), lambda i, n=name, a=a, b=b, v=fields[name]:
               f"{n} = {a} × {b} is {value_problem(float(v[i]))}")
    codes: list[npt.NDArray[np.int64]] = []
    dictionaries: list[list[str]] = []
    for tag in mapping.profile.tags:
        if tag in mapping.constant_tags:
            codes.append(np.zeros(n, np.int64))
            dictionaries.append([mapping.constant_tags[tag]])
            continue
        col = mapping.tag_columns[tag]
        values_t, missing = _tag_codes(table.column(col))
        reject(missing, f"column {col!r}: empty tag {tag!r}")
        codes.append(values_t[0])
        dictionaries.append(values_t[1])
    keep = np.flatnonzero(ok)
    tag_sets, tag_index = _tag_sets(codes, dictionaries, keep)
    rejected.sort()
    return Mapped(time_ns[keep], tag_sets, tag_index,
                  {k: v[keep] for k, v in fields.items()}, rejected)


def _tag_sets(codes: list[npt.NDArray[np.int64]], dictionaries: list[list[str]],
              keep: IntArray) -> tuple[list[tuple[str, ...]], npt.NDArray[np.int32]]:
    if not codes:
        return [()], np.zeros(len(keep), np.int32)
    if len(keep) <= SMALL_ROWS:   # a snapshot file: numpy's unique costs more than a dict
        rows = list(zip(*[c[keep].tolist() for c in codes], strict=True))
        first: dict[tuple[int, ...], int] = {}
        index = np.array([first.setdefault(r, len(first)) for r in rows], np.int32)
        return [tuple(dictionaries[j][u[j]] for j in range(len(codes))) for u in first], index
    stacked = np.stack([c[keep] for c in codes], axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    tag_sets = [tuple(dictionaries[j][int(u[j])] for j in range(len(codes))) for u in uniq]
    return tag_sets, inverse.reshape(-1).astype(np.int32)


def _unstorable(name: str, column: Column, values: FloatArray) -> Any:
    """Why row ``i`` of a field column holds a value the store cannot take."""
    return lambda i: (f"column {name!r}: {_shown(column[i].as_py())} is "
                      f"{value_problem(float(values[i]))}")


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


# -- tags -------------------------------------------------------------------------------------
def _tag_codes(column: Column) -> tuple[tuple[npt.NDArray[np.int64], list[str]],
                                                 BoolArray]:
    text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
    encoded = pc.dictionary_encode(text).combine_chunks()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    missing = np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False), bool)
    empty = np.asarray(pc.equal(text, "").to_numpy(zero_copy_only=False), bool)
    missing |= np.where(missing, False, empty)
    idx = np.where(missing, 0, np.nan_to_num(indices.astype(np.float64))).astype(np.int64)
    return (idx, [str(v) for v in encoded.dictionary.to_pylist()]), missing


# -- numbers ----------------------------------------------------------------------------------
def _numbers(column: Column) -> tuple[FloatArray, BoolArray, list[Any]]:
    """float64 values (NaN where empty), rows that are not numbers, and the raw values."""
    n = len(column)
    kind = column.type
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_decimal(kind)):
        values = pc.cast(column, pa.float64()).to_numpy()
        return np.asarray(values, np.float64), np.zeros(n, bool), []
    if pa.types.is_null(kind):
        return np.full(n, np.nan), np.zeros(n, bool), []
    text = pc.cast(column, pa.string())
    text = pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), None, text)
    good = pc.match_substring_regex(text, NUMBER_RE)
    bad = np.asarray(pc.invert(pc.fill_null(good, True)).to_numpy(zero_copy_only=False), bool)
    clean = pc.utf8_trim_whitespace(pc.if_else(pc.fill_null(good, False), text, None))
    values = np.asarray(pc.cast(clean, pa.float64()).to_numpy(), np.float64)
    raw = text.to_pylist() if bad.any() else []
    return values, bad, raw


def pairs(values: list[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments of ``flag`` (``--tag``, ``--map``) as a mapping."""
    out: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} {text!r}: write KEY=VALUE")
        out[key] = value
    return out
