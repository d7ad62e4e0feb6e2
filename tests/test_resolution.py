"""The stored resolution grids: decimal and binary rounding of the 1 s statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sunarchive.profiles import load_profiles
from sunarchive.reducer import Reducer
from sunarchive.resolution import binary_bits, round_to_grid

pytestmark = pytest.mark.unit

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_binary_bits_is_the_coarsest_binary_unit_not_coarser_than_the_decimal_one() -> None:
    assert [binary_bits(d) for d in range(7)] == [0, 4, 7, 10, 14, 17, 20]
    for d in range(1, 13):
        assert 2.0 ** -binary_bits(d) <= 10.0 ** -d < 2.0 ** -(binary_bits(d) - 1)


@given(st.lists(finite, min_size=1, max_size=50), st.integers(0, 8))
def test_binary_values_lie_on_the_grid_within_half_a_unit(values: list[float],
                                                          decimals: int) -> None:
    raw = np.array(values)
    rounded = round_to_grid(raw, decimals, "binary")
    bits = binary_bits(decimals)
    scaled = np.ldexp(rounded, bits)
    assert np.array_equal(scaled, np.round(scaled))           # k / 2**bits exactly
    assert np.all(np.abs(rounded - raw) <= 0.5 * 2.0 ** -bits * (1 + 1e-12) + 1e-300)


@given(st.integers(-10**7, 10**7), st.integers(1, 6))
def test_the_decimal_value_is_recovered_by_rounding_a_binary_one(units: int,
                                                                 decimals: int) -> None:
    decimal_value = round(units * 10.0 ** -decimals, decimals)
    binary_value = float(round_to_grid(np.array([decimal_value]), decimals, "binary")[0])
    assert round(binary_value, decimals) == decimal_value


def test_nan_stays_missing_and_the_decimal_grid_is_plain_rounding() -> None:
    values = np.array([math.nan, 20.00149, -0.00051])
    assert np.isnan(round_to_grid(values, 3, "binary")[0])
    assert np.array_equal(round_to_grid(values, 3, "decimal")[1:], [20.001, -0.001])


def test_reducer_rounds_statistics_to_the_grid_it_is_given() -> None:
    profile = load_profiles(None)["ps100_readings"]
    rng = np.random.default_rng(7)
    n = 40
    series = np.zeros(n, np.int32)
    time_ns = np.arange(n, dtype=np.int64) * 100_000_000 + 1_780_000_000 * 10**9
    fields = {"voltage": 20 + rng.normal(0, 0.01, n), "current": 4 + rng.normal(0, 0.01, n),
              "power": 80 + rng.normal(0, 0.5, n), "temperature": 30 + rng.normal(0, 0.1, n)}
    rows = {}
    for grid in ("decimal", "binary"):
        reducer = Reducer(profile, value_grid=grid)
        reducer.add(series, time_ns, fields)
        rows[grid] = reducer.flush().fresh.columns
    for spec in profile.fields:
        for column, decimals in spec.rounded_columns().items():
            binary, decimal = rows["binary"][column], rows["decimal"][column]
            scaled = np.ldexp(binary, binary_bits(decimals))
            assert np.array_equal(scaled, np.round(scaled)), column
            assert np.allclose(binary, decimal, rtol=0, atol=10.0 ** -decimals), column
    assert not np.array_equal(rows["binary"]["voltage_avg"], rows["decimal"]["voltage_avg"])
