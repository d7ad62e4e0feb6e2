"""The storable range of times and values (sunarchive.bounds), shared by every edge."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from sunarchive.bounds import (
    MAX_ABS_VALUE,
    MAX_TIME_NS,
    MAX_TIME_S,
    MIN_TIME_NS,
    check_time_ns,
    check_value,
    times_ok,
    values_bad,
)
from sunarchive.model import InputError

pytestmark = pytest.mark.unit


def test_the_range_is_1970_to_2200_and_inside_int64() -> None:
    assert datetime.fromtimestamp(MAX_TIME_S, UTC) == datetime(2200, 1, 1, tzinfo=UTC)
    assert MIN_TIME_NS == 0
    a_year_ns = 366 * 86_400 * 10**9   # room for bucket ends and local days
    assert np.iinfo(np.int64).max - a_year_ns > MAX_TIME_NS


@pytest.mark.parametrize("ns", [-1, MAX_TIME_NS, 10**30, -(10**30)])
def test_times_outside_are_rejected_naming_what(ns: int) -> None:
    with pytest.raises(InputError, match=r"time '1e30' is outside the storable range 1970"):
        check_time_ns(ns, "time '1e30'")


def test_times_inside_pass_and_the_array_check_agrees() -> None:
    inside = [MIN_TIME_NS, 1_782_036_000 * 10**9, MAX_TIME_NS - 1]
    assert [check_time_ns(ns) for ns in inside] == inside
    values = np.array([-1, *inside, MAX_TIME_NS], np.int64)
    assert times_ok(values).tolist() == [False, True, True, True, False]
    assert times_ok(np.array([1e30, -1e30, 1.7e18])).tolist() == [False, False, True]


@pytest.mark.parametrize("value, why", [(float("inf"), "not a finite number"),
                                        (float("-inf"), "not a finite number"),
                                        (float("nan"), "not a finite number"),
                                        (2 * MAX_ABS_VALUE, "beyond")])
def test_values_must_be_finite_and_bounded(value: float, why: str) -> None:
    with pytest.raises(InputError, match=f"field 'power' value .* is {why}"):
        check_value(value, "field 'power' value x")


def test_present_values_pass_and_missing_is_not_bad() -> None:
    assert check_value(-MAX_ABS_VALUE) == -MAX_ABS_VALUE
    values = np.array([np.nan, 1.5, np.inf, -np.inf, -2e100, 1e100])
    assert values_bad(values).tolist() == [False, False, True, True, True, False]
