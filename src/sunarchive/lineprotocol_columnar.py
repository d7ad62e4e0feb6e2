"""The columnar fast path of the line protocol parser.

Machine-written bodies are thousands of lines without escapes or quoted strings. Those lines
are split and converted all at once with Arrow compute kernels (C++, no Python per value):
lines → ``head fields [timestamp]`` → ``key=value`` pairs → typed values. The few distinct
heads (measurement plus tags) are parsed once each in Python. Any line this path cannot take
whole — wrong number of parts, a bad value, a duplicate field, a kind that differs from the
field's first kind, a number Arrow would overflow — is handed back, and the exact per-line
parser in :mod:`sunarchive.lineprotocol` parses it and words its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as arrow_compute

pc: Any = arrow_compute   # the stubs type kernels too narrowly for these chains

INT64 = np.int64
LIMIT_NS = 2**63 - 1
# Arrow's int64 cast refuses a leading "+": such stamps and integers go to the per-line parser.
STAMP = r"^-?(\d{1,18}|[1-8]\d{18})$"   # fits int64 (19 digits up to 8.99e18)
FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$"
INT = r"^-?\d{1,18}i$"
UINT = r"^\d{1,18}u$"
TRUE = ("t", "T", "true", "True", "TRUE")
FALSE = ("f", "F", "false", "False", "FALSE")
"""Line protocol's words of a boolean field (arrays made where they are used: ``pa.array``
of a list imports pandas, which a module import should not)."""
KINDS = ("float", "int", "uint", "bool")


@dataclass
class FastLines:
    """What the fast path made of its lines: values by measurement, and the lines it leaves
    to the per-line parser (indices into the lines it was given)."""

    measurements: dict[str, FastMeasurement]
    leftover: np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class FastMeasurement:
    """Points of one measurement, columnar, in line order."""

    tags: list[dict[str, str]]
    """Distinct tag sets; ``tag_index[i]`` is the set of point ``i``."""
    line_index: np.ndarray[Any, np.dtype[np.int64]]
    """Each point's line, as an index into the lines given to :func:`parse_fast`."""
    tag_index: np.ndarray[Any, np.dtype[np.int32]]
    time_ns: np.ndarray[Any, np.dtype[np.int64]]
    fields: dict[str, tuple[str, np.ndarray[Any, np.dtype[np.float64]]]]
    """Field name → (kind, values with NaN where a point lacks the field)."""


HeadParser = Any
"""``(head text) -> (measurement, tags)``; raises for a malformed head."""


def parse_fast(lines: pa.StringArray, units_ns: int | None, now_ns: int,
               parse_head: HeadParser) -> FastLines:
    """Parse simple lines (no ``\\`` or ``"``). ``units_ns`` None means precision ``auto``."""
    n = len(lines)
    ok = np.ones(n, bool)
    parts = pc.split_pattern(lines, " ")
    count = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    ok &= (count == 2) | (count == 3)
    heads = pc.list_element(parts, 0)              # a split gives at least one part
    stamps = _stamps(parts, count, ok, units_ns, now_ns)
    head_of_line, head_info = _heads(heads, ok, parse_head)
    values = _values(_part(parts, count >= 2, 1), ok)
    meas_code = _codes([info[0] for info in head_info])
    line_meas = np.where(head_of_line >= 0, meas_code[np.maximum(head_of_line, 0)], -1) \
        if len(head_info) else np.full(n, -1)
    _reject_kind_conflicts(values, line_meas, ok)
    _reject_duplicates(values, ok)
    measurements = _assemble(values, ok, stamps, head_of_line, head_info, line_meas)
    return FastLines(measurements, np.flatnonzero(~ok).astype(INT64))


# -- parts --------------------------------------------------------------------------------------
def _part(lists: Any, present: np.ndarray[Any, Any], index: int) -> Any:
    """Element ``index`` of every list; lists not ``present`` (too short, or not wanted) give
    a filler instead (no filler pass when every list has it: the common body)."""
    if not present.all():
        filler = pa.scalar(["x", "y", "0"][:index + 1], pa.list_(pa.string()))
        lists = pc.if_else(pa.array(present), lists, filler)
    return pc.list_element(lists, index)


def _stamps(parts: Any, count: np.ndarray[Any, Any], ok: np.ndarray[Any, Any],
            units_ns: int | None, now_ns: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Timestamps in ns (``now`` for lines without one); marks bad ones not ok."""
    has = count == 3
    text = _part(parts, has & ok, 2)
    valid = _stamp_syntax(text)
    ok &= valid | ~has
    raw = pc.cast(pc.if_else(pa.array(valid & has & ok), text, "0"), pa.int64()).to_numpy()
    if units_ns is None:
        size = np.abs(raw.astype(np.float64))
        unit = np.select([size < 1e11, size < 1e14, size < 1e17], [10**9, 10**6, 10**3], 1)
    else:
        unit = np.full(len(raw), units_ns, INT64)
    ok &= np.abs(raw) <= LIMIT_NS // unit            # beyond int64 ns: the slow path says so
    return np.where(has, raw * unit, now_ns).astype(INT64)


def _stamp_syntax(text: pa.StringArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which texts are integers that fit int64 (:data:`STAMP`). Arrow's strict int64 cast
    accepts exactly those (a sign, digits, no overflow); when it refuses one, the regular
    expression says which."""
    try:
        pc.cast(text, pa.int64())
        return np.ones(len(text), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.asarray(pc.match_substring_regex(text, STAMP).to_numpy(
            zero_copy_only=False), bool)


def _heads(heads: pa.StringArray, ok: np.ndarray[Any, Any], parse_head: HeadParser
           ) -> tuple[np.ndarray[Any, np.dtype[np.int64]], list[tuple[str, dict[str, str]]]]:
    """Index of each line's distinct head and (measurement, tags) per head; -1 if bad."""
    encoded = pc.dictionary_encode(heads)
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(INT64)
    info: list[tuple[str, dict[str, str]]] = []
    bad: list[int] = []
    for i, text in enumerate(encoded.dictionary.to_pylist()):
        try:
            info.append(parse_head(text))
        except Exception:
            info.append(("", {}))
            bad.append(i)
    if bad:
        ok &= ~np.isin(index, bad)
    return np.where(ok, index, -1), info


@dataclass
class _Values:
    line: np.ndarray[Any, np.dtype[np.int64]]
    key: np.ndarray[Any, np.dtype[np.int64]]
    keys: list[str]
    kind: np.ndarray[Any, np.dtype[np.int8]]
    value: np.ndarray[Any, np.dtype[np.float64]]


def _values(field_text: pa.StringArray, ok: np.ndarray[Any, Any]) -> _Values:
    """Every ``key=value`` of every line, typed; lines with a bad pair are marked not ok."""
    pairs = pc.split_pattern(field_text, ",")
    per_line = pc.list_value_length(pairs).to_numpy(zero_copy_only=False)
    line = np.repeat(np.arange(len(per_line), dtype=INT64), per_line)
    flat = pc.list_flatten(pairs)
    kv = pc.split_pattern(flat, "=", max_splits=1)
    good = (pc.list_value_length(kv).to_numpy(zero_copy_only=False) == 2)
    keys_text, text = pc.list_element(kv, 0), _part(kv, good, 1)
    good &= pc.binary_length(keys_text).to_numpy(zero_copy_only=False) > 0
    kind, value = _typed(text)
    good &= kind >= 0
    ok[line[~good]] = False
    encoded = pc.dictionary_encode(keys_text)
    return _Values(line, encoded.indices.to_numpy(zero_copy_only=False).astype(INT64),
                   encoded.dictionary.to_pylist(), kind, value)


def _typed(text: pa.StringArray) -> tuple[np.ndarray[Any, np.dtype[np.int8]],
                                          np.ndarray[Any, np.dtype[np.float64]]]:
    """Kind code (index into KINDS, -1 = invalid) and value of each value text."""
    def match(pattern: str) -> np.ndarray[Any, Any]:
        return np.asarray(pc.match_substring_regex(text, pattern).to_numpy(
            zero_copy_only=False), bool)

    floats = _all_finite_floats(text)
    if floats is not None:   # the common body: only floats, no other pass needed
        return np.zeros(len(text), np.int8), floats
    is_float = match(FLOAT)
    if is_float.all():
        is_int = is_uint = is_true = is_false = np.zeros(len(text), bool)
    else:
        is_int, is_uint = match(INT), match(UINT)
        is_true = pc.is_in(text, pa.array(TRUE)).to_numpy(zero_copy_only=False)
        is_false = pc.is_in(text, pa.array(FALSE)).to_numpy(zero_copy_only=False)
    kind = np.select([is_float, is_int, is_uint, is_true | is_false], [0, 1, 2, 3], -1)
    value = np.full(len(text), np.nan)
    if is_float.any():
        value[is_float] = pc.cast(text.filter(pa.array(is_float)), pa.float64()).to_numpy()
    number = is_int | is_uint
    if number.any():
        digits = pc.utf8_slice_codeunits(text.filter(pa.array(number)), 0, -1)
        value[number] = pc.cast(digits, pa.int64()).to_numpy().astype(np.float64)
    value[is_true] = 1.0
    value[is_false] = 0.0
    kind[np.isinf(value)] = -1                          # 1e999: out of range, said by the slow path
    return kind.astype(np.int8), value


def _all_finite_floats(text: pa.StringArray) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """The values when every text is a finite float, else None. Arrow's strict cast accepts
    exactly the float syntax of :data:`FLOAT` (any number of exponent digits, as the per-line
    parser) plus ``nan``/``inf``/``infinity`` — which give non-finite values and so None; it
    costs a sixth of the regular expression."""
    try:
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return values if np.isfinite(values).all() else None


def _codes(names: list[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """A small integer per distinct name (same name, same code)."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(name, len(seen)) for name in names], INT64)


# -- checks across lines ------------------------------------------------------------------------
def _reject_kind_conflicts(values: _Values, line_meas: np.ndarray[Any, Any],
                           ok: np.ndarray[Any, Any]) -> None:
    """A field keeps the kind of its first value; later lines with another kind are left to
    the per-line parser (which reports them)."""
    live = ok[values.line]
    if not live.any() or values.kind.min() == values.kind.max():   # one kind: no conflict
        return
    width = len(values.keys) + 1
    slot = line_meas[values.line] * width + values.key
    order = np.flatnonzero(live)
    distinct, first = np.unique(slot[order], return_index=True)
    first_kind = np.full(int(distinct[-1]) + 1, -2, np.int8)   # slots are small: dense table
    first_kind[distinct] = values.kind[order][first]
    expected = np.where(live, first_kind[np.where(live, slot, 0)], -2)
    conflict = live & (values.kind != expected)
    ok[values.line[conflict]] = False


def _reject_duplicates(values: _Values, ok: np.ndarray[Any, Any]) -> None:
    """Lines that name a field twice go to the per-line parser (which reports them)."""
    width = len(values.keys) + 1
    counts = np.bincount(values.line * width + values.key)   # dense: lines × keys is small
    twice = np.flatnonzero(counts > 1)
    if len(twice):
        ok[twice // width] = False


# -- columns per measurement --------------------------------------------------------------------
def _assemble(values: _Values, ok: np.ndarray[Any, Any], stamps: np.ndarray[Any, Any],
              head_of_line: np.ndarray[Any, Any], head_info: list[tuple[str, dict[str, str]]],
              line_meas: np.ndarray[Any, Any]) -> dict[str, FastMeasurement]:
    out: dict[str, FastMeasurement] = {}
    keep_value = ok[values.line]
    for code in _distinct(line_meas[ok])[0]:
        lines = np.flatnonzero(ok & (line_meas == code))
        distinct, tag_index = _distinct(head_of_line[lines])
        name = head_info[int(distinct[0])][0]
        position = np.full(len(ok), -1, INT64)
        position[lines] = np.arange(len(lines))
        mine = keep_value & (line_meas[values.line] == code)
        fields: dict[str, tuple[str, np.ndarray[Any, np.dtype[np.float64]]]] = {}
        for key in _distinct(values.key[mine])[0]:
            sel = mine & (values.key == key)
            column = np.full(len(lines), np.nan)
            column[position[values.line[sel]]] = values.value[sel]
            fields[values.keys[int(key)]] = (KINDS[int(values.kind[sel][0])], column)
        out[name] = FastMeasurement([head_info[int(h)][1] for h in distinct], lines,
                                    tag_index.astype(np.int32), stamps[lines], fields)
    return out


def _distinct(codes: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, np.dtype[np.int64]],
                                                     np.ndarray[Any, np.dtype[np.int64]]]:
    """``np.unique(codes, return_inverse=True)`` for small non-negative codes, in linear
    time (a count per code instead of a sort)."""
    if not len(codes):
        return np.empty(0, INT64), np.empty(0, INT64)
    present = np.bincount(codes) > 0
    return np.flatnonzero(present).astype(INT64), (np.cumsum(present) - 1)[codes].astype(INT64)
