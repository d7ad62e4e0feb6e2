"""A time column of an imported file → UTC epoch nanoseconds, and why a row's time is bad.

Accepted, in this order of trying:

* Arrow timestamps (Parquet, typed CSV): tz-aware as they are, naive ones in ``--timezone``;
* epoch numbers, unit by magnitude: seconds < 1e11 ≤ milliseconds < 1e14 ≤ microseconds
  < 1e17 ≤ nanoseconds;
* ISO 8601 text with an offset (``Z``, ``+02:00``), read to the nanosecond;
* naive text in ``--timezone``: ISO 8601 (``2024-03-01 12:00:00``, ``T`` or space, optional
  fraction), day-first ``01/03/2024 12:00:00`` (1 March) and ``2024/03/01 12:00:00``
  (``DAY_FIRST_FORMATS``; a fraction ``.5`` may follow the seconds).

A naive time is placed in ``--timezone`` (:func:`assume`): an ambiguous local time (autumn)
is the earlier instant; a nonexistent one (spring gap) is read with the offset before the gap.
Without ``--timezone`` a naive time rejects its row. So does a time outside what the store
can hold (:mod:`sunarchive.bounds`, 1970 … 2200): it is checked before any conversion that
could overflow int64 nanoseconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _pc

from sunarchive.bounds import TIME_RANGE_TEXT, check_time_ns, times_ok
from sunarchive.model import NS_PER_S, InputError, IntArray

pc: Any = _pc   # the pyarrow.compute stubs do not follow chunked arrays through casts

NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
DAY_FIRST_FORMATS = ("%d/%m/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S")
"""Naive text forms beyond ISO 8601 (the lab rig's exports); ``dd/mm`` is read day-first."""
NO_OFFSET = "time has no offset; give --timezone or an offset"
BoolArray = npt.NDArray[np.bool_]
Column = Any
"""A pyarrow (chunked) array."""
Times = tuple[IntArray, BoolArray, dict[int, str]]
"""UTC epoch ns per row, the rows whose time is bad, and why (by row)."""
UNIT_NS = {"s": NS_PER_S, "ms": 10**6, "us": 10**3, "ns": 1}


def _magnitude_scale(values: npt.NDArray[Any]) -> IntArray:
    """ns per unit of each epoch number, by magnitude (s < 1e11 ≤ ms < 1e14 ≤ µs < 1e17)."""
    a = np.abs(values)
    return np.asarray(np.select([a < 1e11, a < 1e14, a < 1e17], [NS_PER_S, 10**6, 10**3], 1),
                      np.int64)


def epoch_times(values: npt.NDArray[Any]) -> tuple[IntArray, BoolArray]:
    """Epoch numbers → ns by magnitude, and which are not storable (NaN, ±inf, outside
    1970 … 2200; these are 0). The range is checked in float64 before the exact
    conversion, which would overflow int64."""
    estimate = values.astype(np.float64) * _magnitude_scale(values)
    bad = ~times_ok(estimate)
    return epoch_to_ns(np.where(bad, 0, values)), bad


def epoch_to_ns(values: npt.NDArray[Any]) -> IntArray:
    """Epoch numbers → ns by magnitude (s < 1e11 ≤ ms < 1e14 ≤ µs < 1e17 ≤ ns); exact for
    storable times only (see :func:`epoch_times`)."""
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


def times(column: Column, timezone: str | None) -> Times:
    """UTC epoch ns of a time column, the rows whose time is bad, and why."""
    n = len(column)
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is None and timezone is None:
        return np.zeros(n, np.int64), np.ones(n, bool), _DefaultWhy(NO_OFFSET)
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
    why: dict[int, str] = {int(i): "empty time" for i in np.flatnonzero(null)}
    ns, bad = _parse(column, timezone, null, why)
    bad |= ~times_ok(ns)
    for i in np.flatnonzero(bad).tolist():
        if i not in why:
            why[i] = f"time {_shown(column[i].as_py())} is outside the storable range " \
                     f"{TIME_RANGE_TEXT}"
    return np.where(bad, 0, ns), bad, why


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _parse(column: Column, timezone: str | None, null: BoolArray,
           why: dict[int, str]) -> tuple[IntArray, BoolArray]:
    """UTC epoch ns and bad rows (with their reason in ``why``, except rows whose time is
    outside the storable range: :func:`times` names those)."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None and timezone is not None:
            column = assume(column, timezone)
        raw = np.asarray(pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(), np.int64)
        scale = UNIT_NS[kind.unit]
        bad = null | ~times_ok(raw.astype(np.float64) * scale)   # before int64 could wrap
        return np.where(bad, 0, raw) * scale, bad
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raw = np.asarray(pc.fill_null(pc.cast(column, pa.float64()
                                               if pa.types.is_floating(kind) else pa.int64()),
                                      0).to_numpy())
        infinite = ~np.isfinite(raw) if raw.dtype.kind == "f" else np.zeros(len(raw), bool)
        why.update({int(i): "time is not finite" for i in np.flatnonzero(infinite & ~null)})
        ns, outside = epoch_times(np.where(infinite, 0, raw))
        return ns, null | infinite | outside
    text = pc.cast(column, pa.string())
    if not null.any():
        fast = _vector_text(text, timezone)
        if fast is not None:
            return fast, null
    ns, bad, reasons = _text_times(text.to_pylist(), timezone)
    why.update(reasons)
    return ns, bad


class _DefaultWhy(dict[int, str]):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __missing__(self, key: int) -> str:
        return self.reason


def assume(column: Column, timezone: str) -> Column:
    """Naive local times in ``timezone`` → UTC instants.

    Ambiguous (autumn): the earlier instant. Nonexistent (in the spring gap): read with the
    offset in force before the gap, as a clock not yet set forward would mean it (Berlin
    02:30 → 01:30 UTC, the instant 03:30 CEST names), so distinct times stay distinct
    instead of all collapsing onto the edge of the gap. Outside the gap, ``shift`` is zero.
    """
    earliest = pc.assume_timezone(column, timezone, ambiguous="earliest",
                                  nonexistent="earliest")
    shift = pc.subtract(column, pc.local_timestamp(earliest))
    return pc.add(earliest, shift)


def _vector_text(text: Column, timezone: str | None) -> IntArray | None:
    """All rows in one form (ISO with offset; naive ISO; a day-first form), else None."""
    try:
        return _ns(pc.cast(text, pa.timestamp("ns", "UTC")))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if timezone is None:
        return None   # row by row: every row gets its own reason
    try:
        return _ns(assume(pc.cast(text, pa.timestamp("ns")), timezone))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for fmt in DAY_FIRST_FORMATS:
        parsed = pc.strptime(text, format=fmt, unit="ns", error_is_null=True)
        if parsed.null_count == 0:
            return _ns(assume(parsed, timezone))
    return None


def _ns(stamps: Column) -> IntArray:
    return np.asarray(pc.cast(stamps, pa.int64()).to_numpy(), np.int64)


def _text_times(values: list[Any], timezone: str | None) -> Times:
    """Row by row (mixed or unusual text): ISO 8601, day-first forms or epoch numbers."""
    n = len(values)
    out = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    naive = np.zeros(n, bool)
    why: dict[int, str] = {}
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        try:
            out[i], naive[i] = _one_time(text)
            if naive[i] and timezone is None:
                raise ValueError(f"time {text!r} has no offset; give --timezone or an offset")
        except (ValueError, InputError) as exc:
            bad[i] = True
            why[i] = str(exc)
    local = naive & ~bad
    if local.any() and timezone is not None:
        wall = pa.array(out[local], pa.timestamp("ns"))
        out[local] = _ns(assume(wall, timezone))
    return out, bad, why


def _one_time(text: str) -> tuple[int, bool]:
    """Epoch ns, and whether it is a naive wall-clock time (then in ns of local time);
    InputError for a time outside the storable range (checked on the wall clock for a
    naive one; :func:`times` checks again after the time zone is applied)."""
    ns, naive = _one_time_unchecked(text)
    return check_time_ns(ns, f"time {text!r}"), naive


def _one_time_unchecked(text: str) -> tuple[int, bool]:
    if not text:
        raise ValueError("empty time")
    if re.fullmatch(NUMBER_RE, text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"time {text!r} is not finite")
        if re.fullmatch(r"[-+]?\d+", text):   # exact, in Python ints (no int64 to wrap)
            whole = int(text)
            return whole * int(_magnitude_scale(np.array([float(whole)]))[0]), False
        ns, bad = epoch_times(np.array([number]))
        return (int(ns[0]) if not bad[0] else -1), False
    parsed = _datetime(text)
    naive = parsed.tzinfo is None
    try:
        delta = parsed.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC) if naive else \
            parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    except OverflowError:   # year 1 with a positive offset is before year 1 in UTC
        return -1, naive
    sub_ns = 0
    frac = re.search(r"[.,](\d+)", text)
    if frac and len(frac.group(1)) > 6:
        sub_ns = int(frac.group(1)[:9].ljust(9, "0")[6:])
    seconds = delta.days * 86400 + delta.seconds
    return seconds * NS_PER_S + delta.microseconds * 1000 + sub_ns, naive


def _datetime(text: str) -> datetime:
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        pass
    for fmt in DAY_FIRST_FORMATS:
        for form in (fmt, fmt + ".%f"):
            try:
                return datetime.strptime(text, form)
            except ValueError:
                continue
    raise ValueError(f"{text!r} is not an ISO 8601 time, dd/mm/yyyy hh:mm:ss, "
                     "yyyy/mm/dd hh:mm:ss or epoch number")
