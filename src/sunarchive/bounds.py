"""What the store can hold: the instants and values every edge (import, TCP, line protocol)
checks before a row goes further, so that one absurd number is rejected with its line and
field instead of overflowing int64 nanoseconds, the reducer or a day's energy.

* Times: UTC epoch nanoseconds in ``[MIN_TIME_NS, MAX_TIME_NS)``, that is
  1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z. int64 ns reach from
  1677 to 2262; the margin keeps bucket ends, lateness windows and local-day boundaries in
  range, and DuckDB ``TIMESTAMP`` and PostgreSQL ``timestamp`` hold all of it.
* Values: finite, with a magnitude of at most ``MAX_ABS_VALUE`` (1e100: sums of squares of
  a day of 10 Hz samples, ≈ 1e200 × 864 000, and power × seconds stay far below float64's
  1.8e308). Real writers send large values: Home Assistant turns a ``last_reset`` timestamp
  attribute into ≈ 2e16, Telegraf's docker plugin sends nanosecond counters near 1e18; they
  are stored as float64, exact to 2**53 ≈ 9e15 and to 16 significant digits beyond, as
  InfluxDB stores floats. NaN is *missing*, not bad: the array check leaves it alone, the
  scalar check is only for present values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.model import NS_PER_S, InputError

MIN_TIME_S = 0
"""1970-01-01T00:00:00Z, the earliest storable instant (epoch seconds, inclusive)."""
MAX_TIME_S = 7_258_118_400
"""2200-01-01T00:00:00Z, the first instant that is no longer storable (epoch seconds)."""
MIN_TIME_NS = MIN_TIME_S * NS_PER_S
MAX_TIME_NS = MAX_TIME_S * NS_PER_S
TIME_RANGE_TEXT = "1970-01-01T00:00:00Z … 2200-01-01T00:00:00Z"
MAX_ABS_VALUE = 1e100
"""Largest storable magnitude of a field value (units of the field)."""

BoolArray = npt.NDArray[np.bool_]


def check_time_ns(ns: int, what: str = "time") -> int:
    """``ns`` (UTC epoch ns, any Python int) if storable, else InputError naming ``what``."""
    if not MIN_TIME_NS <= ns < MAX_TIME_NS:
        raise InputError(f"{what} is outside the storable range {TIME_RANGE_TEXT}")
    return ns


def check_value(value: float, what: str = "value") -> float:
    """A present field value if storable (finite, ``|value| <= MAX_ABS_VALUE``), else
    InputError naming ``what``."""
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise InputError(f"{what} is {value_problem(value)}")
    return value


def times_ok(ns: npt.NDArray[Any]) -> BoolArray:
    """Which UTC epoch ns (int64, or float64 before a conversion that could overflow) are
    storable."""
    return np.asarray((ns >= MIN_TIME_NS) & (ns < MAX_TIME_NS), bool)


def values_bad(values: npt.NDArray[Any]) -> BoolArray:
    """Which present values are not storable: ±inf or beyond ``MAX_ABS_VALUE`` (NaN is
    missing, not bad)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(values) > MAX_ABS_VALUE, bool)


def value_problem(value: float) -> str:
    """Why a present value is not storable (for a message)."""
    return "not a finite number" if not math.isfinite(value) else \
        f"beyond ±{MAX_ABS_VALUE:g}"
