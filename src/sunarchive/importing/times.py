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
Without ``--timezone`` a naive time rejects its row.
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

from sunarchive.model import NS_PER_S, IntArray

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


def times(column: Column, timezone: str | None) -> Times:
    """UTC epoch ns of a time column, the rows whose time is bad, and why."""
    n = len(column)
    kind = column.type
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
    why: dict[int, str] = {int(i): "empty time" for i in np.flatnonzero(null)}
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            if timezone is None:
                return np.zeros(n, np.int64), np.ones(n, bool), _DefaultWhy(NO_OFFSET)
            column = assume(column, timezone)
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
    if not null.any():
        fast = _vector_text(text, timezone)
        if fast is not None:
            return fast, null, why
    return _text_times(text.to_pylist(), timezone)


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
        except ValueError as exc:
            bad[i] = True
            why[i] = str(exc)
    local = naive & ~bad
    if local.any() and timezone is not None:
        wall = pa.array(out[local], pa.timestamp("ns"))
        out[local] = _ns(assume(wall, timezone))
    return out, bad, why


def _one_time(text: str) -> tuple[int, bool]:
    """Epoch ns, and whether it is a naive wall-clock time (then in ns of local time)."""
    if not text:
        raise ValueError("empty time")
    if re.fullmatch(NUMBER_RE, text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"time {text!r} is not finite")
        if re.fullmatch(r"[-+]?\d+", text):
            return int(epoch_to_ns(np.array([int(text)], np.int64))[0]), False
        return int(epoch_to_ns(np.array([number]))[0]), False
    parsed = _datetime(text)
    naive = parsed.tzinfo is None
    delta = parsed.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC) if naive else \
        parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
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
