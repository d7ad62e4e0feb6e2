"""Columns of a read file → the tags, fields and UTC times of a profile.

* ``--map col=name`` renames a column before matching; ``--tag k=v`` gives a constant tag.
* The time column holds ISO 8601 times with an offset (``Z``, ``+02:00``), or epoch numbers
  whose magnitude says the unit (seconds < 1e11 ≤ milliseconds < 1e14 ≤ microseconds < 1e17 ≤
  nanoseconds). Times without an offset are read in ``--timezone``; without it each such row
  is rejected with its line number.
* A field value that is not a number rejects its row (line number and column); an empty value
  is a missing value (NaN). Columns that are neither time, tag nor field are reported once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _pc

from sunarchive.model import NS_PER_S, FloatArray, InputError, IntArray
from sunarchive.profiles import Profile

pc: Any = _pc   # the pyarrow.compute stubs do not follow chunked arrays through casts

TIME_COLUMNS = ("time", "timestamp", "ts", "datetime", "date_time", "_time")
NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
OFFSET_RE = re.compile(r"(Z|z|[+-]\d\d(:?\d\d)?)$")
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


@dataclass
class Mapped:
    """Accepted rows (file order) and the rows rejected, with line numbers and reasons."""

    time_ns: IntArray
    tag_sets: list[tuple[str, ...]]
    tag_index: npt.NDArray[np.int32]
    fields: dict[str, FloatArray]
    rejected: list[tuple[int, str]] = field(default_factory=list)


def plan(columns: list[str], profile: Profile, time_column: str | None,
         renames: dict[str, str], constant_tags: dict[str, str]) -> Mapping:
    """Match ``columns`` to ``profile``; raise :class:`InputError` when that is impossible."""
    for key in constant_tags:
        if key not in profile.tags:
            raise InputError(f"--tag {key}: {profile.name} has tags "
                             f"{', '.join(profile.tags) or '(none)'}")
    for col in renames:
        if col not in columns:
            raise InputError(f"--map {col}=...: no column {col!r} (columns: "
                             f"{', '.join(columns)})")
    named = {renames.get(c, c): c for c in columns}
    if time_column is not None:
        if time_column not in columns and time_column not in named:
            raise InputError(f"--time-column {time_column!r}: no such column (columns: "
                             f"{', '.join(columns)})")
        time_col = named.get(time_column, time_column)
    else:
        found = [named[n] for n in TIME_COLUMNS if n in named]
        if not found:
            raise InputError(f"no time column among {', '.join(columns)}; give --time-column")
        time_col = found[0]
    tag_columns = {t: named[t] for t in profile.tags if t in named and named[t] != time_col}
    missing = [t for t in profile.tags if t not in tag_columns and t not in constant_tags]
    if missing:
        raise InputError(f"tag {missing[0]!r} of {profile.name} is neither a column nor given "
                         f"as --tag {missing[0]}=VALUE")
    names = {f.name for f in profile.fields}
    field_columns = {n: named[n] for n in sorted(names) if n in named and named[n] != time_col}
    if not field_columns:
        raise InputError(f"no column matches a field of {profile.name} "
                         f"({', '.join(sorted(names))}); rename with --map COLUMN=FIELD")
    used = {time_col, *tag_columns.values(), *field_columns.values()}
    unknown = [c for c in columns if c not in used]
    return Mapping(profile, time_col, tag_columns, field_columns, dict(constant_tags), unknown)


def score(columns: list[str], profile: Profile, renames: dict[str, str]) -> int:
    """How many columns name a field or tag of ``profile`` (to guess the measurement)."""
    names = {renames.get(c, c) for c in columns}
    return len(names & {f.name for f in profile.fields}) * 2 + len(names & set(profile.tags))


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

    time_ns, bad_time, why = _times(table.column(mapping.time_column), timezone)
    reject(bad_time, lambda i: f"column {mapping.time_column!r}: {why[i]}")
    fields: dict[str, FloatArray] = {}
    for name, col in mapping.field_columns.items():
        values, bad, raw = _numbers(table.column(col))
        reject(bad, lambda i, c=col, r=raw: f"column {c!r}: {r[i]!r} is not a number")
        fields[name] = values
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
    if codes:
        stacked = np.stack([c[keep] for c in codes], axis=1)
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        tag_sets = [tuple(dictionaries[j][int(u[j])] for j in range(len(codes))) for u in uniq]
        tag_index = inverse.reshape(-1).astype(np.int32)
    else:
        tag_sets, tag_index = [()], np.zeros(len(keep), np.int32)
    rejected.sort()
    return Mapped(time_ns[keep], tag_sets, tag_index,
                  {k: v[keep] for k, v in fields.items()}, rejected)


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
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
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


# -- times ------------------------------------------------------------------------------------
def epoch_to_ns(values: npt.NDArray[Any]) -> IntArray:
    """Epoch numbers → ns by magnitude (s < 1e11 ≤ ms < 1e14 ≤ µs < 1e17 ≤ ns)."""
    if np.issubdtype(values.dtype, np.integer):
        v = values.astype(np.int64)
        a = np.abs(v)
        scale = np.select([a < 10**11, a < 10**14, a < 10**17], [NS_PER_S, 10**6, 10**3], 1)
        return np.asarray(v * scale.astype(np.int64), np.int64)
    f = values.astype(np.float64)
    a = np.abs(f)
    whole = np.floor(f)
    scale = np.select([a < 1e11, a < 1e14, a < 1e17], [NS_PER_S, 10**6, 10**3], 1)
    frac = np.rint((f - whole) * scale).astype(np.int64)
    return np.asarray(whole.astype(np.int64) * scale.astype(np.int64) + frac, np.int64)


def _times(column: Column, timezone: str | None
           ) -> tuple[IntArray, BoolArray, dict[int, str]]:
    """UTC epoch ns, the rows whose time is bad, and why (by row)."""
    n = len(column)
    kind = column.type
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
    why: dict[int, str] = {int(i): "empty time" for i in np.flatnonzero(null)}
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            if timezone is None:
                return (np.zeros(n, np.int64), np.ones(n, bool),
                        _DefaultWhy("time has no offset; give --timezone or an offset"))
            column = _assume(column, timezone)
        ns = pc.cast(column, pa.timestamp("ns", "UTC")).cast(pa.int64())
        return np.asarray(pc.fill_null(ns, 0).to_numpy(), np.int64), null, why
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raw = np.asarray(pc.fill_null(pc.cast(column, pa.float64()
                                               if pa.types.is_floating(kind) else pa.int64()),
                                      0).to_numpy())
        bad = null | (~np.isfinite(raw) if raw.dtype.kind == "f" else np.zeros(n, bool))
        why.update({int(i): "time is not finite" for i in np.flatnonzero(bad & ~null)})
        return epoch_to_ns(np.where(bad, 0, raw)), bad, why
    text = pc.cast(column, pa.string())
    try:  # all ISO 8601 with an offset: vectorized
        ns = pc.cast(pc.cast(text, pa.timestamp("ns", "UTC")), pa.int64())
        if not null.any():
            return np.asarray(ns.to_numpy(), np.int64), null, why
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return _text_times(text.to_pylist(), timezone)


class _DefaultWhy(dict[int, str]):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __missing__(self, key: int) -> str:
        return self.reason


def _assume(column: Column, timezone: str) -> Column:
    """Naive local times in ``timezone`` → UTC (ambiguous/non-existent: the earlier)."""
    return pc.assume_timezone(column, timezone, ambiguous="earliest", nonexistent="earliest")


def _text_times(values: list[Any], timezone: str | None
                ) -> tuple[IntArray, BoolArray, dict[int, str]]:
    """Row by row (mixed or unusual text): ISO 8601 or epoch numbers."""
    n = len(values)
    out = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    why: dict[int, str] = {}
    zone = ZoneInfo(timezone) if timezone else None
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        try:
            out[i] = _one_time(text, zone)
        except ValueError as exc:
            bad[i] = True
            why[i] = str(exc)
    return out, bad, why


def _one_time(text: str, zone: ZoneInfo | None) -> int:
    if not text:
        raise ValueError("empty time")
    if re.fullmatch(NUMBER_RE, text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"time {text!r} is not finite")
        if re.fullmatch(r"[-+]?\d+", text):
            return int(epoch_to_ns(np.array([int(text)], np.int64))[0])
        return int(epoch_to_ns(np.array([number]))[0])
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time or epoch number") from None
    if parsed.tzinfo is None:
        if zone is None:
            raise ValueError(f"time {text!r} has no offset; give --timezone or an offset")
        parsed = parsed.replace(tzinfo=zone)
    delta = parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    sub_ns = 0
    frac = re.search(r"[.,](\d+)", text)
    if frac and len(frac.group(1)) > 6:
        sub_ns = int(frac.group(1)[:9].ljust(9, "0")[6:])
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000 + sub_ns
