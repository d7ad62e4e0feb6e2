"""Comparing rows read from a tier view with the program's own reads."""

from __future__ import annotations

from typing import Any

import pytest


def assert_same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The same rows: times, days, tags and counts equal; floats equal up to the rounding of
    a sum in another order (SQL fixes no order; PostgreSQL's plan for the view and for the
    program's query add the same values in different orders: 1 ulp apart)."""
    assert [(r["time"], r["panel_id"]) for r in got] == \
        [(r["time"], r["panel_id"]) for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=_tolerance(key), abs=1e-15), key
            else:
                assert mine[key] == value, key


def _tolerance(column: str) -> float:
    """Relative tolerance of a float column. A standard deviation merged in another order
    differs more than a sum: it comes from a difference of sums of squares, which cancels
    (mean² ≫ variance for a panel's voltage), so the merge's rounding is amplified by
    mean²/variance — seen 2.6e-12 apart on TimescaleDB's real-time aggregate."""
    return 1e-9 if column.endswith("_stddev") else 1e-12
