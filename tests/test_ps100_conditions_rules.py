"""The console's words for the sky are the ``conditions_estimate`` column's (issue 18, point 2:
"the console's words … one shared definition"): the Python rules and their SQL renderings agree
on any input (tests/test_ps100_console_conditions.py checks a running collector against the
view)."""

from __future__ import annotations

import math

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sunarchive.console import WAITING, condition
from sunarchive.upstream.ps100_conditions import (
    clearsky_at,
    clearsky_sql,
    conditions_estimate,
    conditions_sql,
    expected_power_w,
    expected_sql,
)

pytestmark = pytest.mark.unit

watts = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)
maybe_watts = st.none() | watts
irradiance = st.floats(min_value=0.0, max_value=1400.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(measured=st.none() | watts, expected=maybe_watts,
       rated=st.floats(min_value=1.0, max_value=500.0))
def test_the_words_are_the_same_in_python_and_sql(measured: float | None,
                                                   expected: float | None,
                                                   rated: float) -> None:
    in_sql = duckdb.execute(
        f"SELECT {conditions_sql('m', 'e', 'r')} FROM (SELECT CAST(? AS DOUBLE) AS m, "
        "CAST(? AS DOUBLE) AS e, CAST(? AS DOUBLE) AS r)", [measured, expected, rated]
    ).fetchone()
    assert in_sql is not None
    assert in_sql[0] == conditions_estimate(measured, expected, rated)


@settings(max_examples=150, deadline=None)
@given(rated=st.floats(min_value=1.0, max_value=500.0),
       gamma=st.floats(min_value=-1.0, max_value=0.1),
       first=irradiance, following=st.none() | irradiance,
       second=st.integers(min_value=0, max_value=59),
       temperature=st.none() | st.floats(min_value=-30.0, max_value=90.0))
def test_expected_power_is_the_same_in_python_and_sql(
        rated: float, gamma: float, first: float, following: float | None, second: int,
        temperature: float | None) -> None:
    poa = clearsky_sql("c0", "c1", "t")
    expected = expected_sql("rated", "gamma", f"({poa})", "temperature")
    row = duckdb.execute(
        f"SELECT {poa}, {expected} FROM (SELECT CAST(? AS DOUBLE) AS rated, CAST(? AS DOUBLE) "
        "AS gamma, CAST(? AS DOUBLE) AS c0, CAST(? AS DOUBLE) AS c1, "
        "make_timestamp(2026, 6, 21, 12, 30, CAST(? AS DOUBLE)) AS t, "
        "CAST(? AS DOUBLE) AS temperature)",
        [rated, gamma, first, following, second, temperature]).fetchone()
    assert row is not None
    want_poa = clearsky_at(first, following, second)
    assert row[0] == pytest.approx(want_poa, rel=1e-12, abs=1e-9)
    want = expected_power_w(rated, gamma, want_poa, temperature)
    assert want is not None and math.isfinite(want)
    assert row[1] == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_console_row_words() -> None:
    entry = {"values": {"power_avg": 80.0}, "expected_power_w": 90.0, "rated_power_w": 100.0}
    assert condition(entry) == conditions_estimate(80.0, 90.0, 100.0) == "Excellent - Full sun"
    assert condition({"values": {"power_avg": 80.0}}) == WAITING
    assert condition({"values": {"power_avg": None}}) == "No data"
    night = {"values": {"power_avg": 0.0}, "expected_power_w": 0.5, "rated_power_w": 100.0}
    assert condition(night) == "Night or no production"
