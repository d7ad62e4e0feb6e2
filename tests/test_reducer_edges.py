"""Reducer edge cases found under real timing, each a defect reproduced first."""

from __future__ import annotations

import numpy as np
import pytest

from sunarchive.model import NS_PER_S
from sunarchive.profiles import load_profiles
from sunarchive.reducer import Reducer

pytestmark = pytest.mark.unit

T0 = 1_782_036_000  # 2026-06-21 10:00 UTC


def test_a_row_with_every_field_empty_is_not_a_sample() -> None:
    """An empty row (every field missing) must not count in sample_count nor covered_s."""
    reducer = Reducer(load_profiles()["ps100_readings"], lateness_s=0.0)
    times = np.array([T0, T0 + 1, T0 + 1], np.int64) * NS_PER_S + \
        np.array([0, 0, NS_PER_S // 2], np.int64)
    power = np.array([50.0, np.nan, 60.0])
    voltage = np.array([20.0, np.nan, np.nan])
    reducer.add(np.zeros(3, np.int32), times, {"power": power, "voltage": voltage})
    # second T0+2 holds only an empty row: no row at all for it
    reducer.add(np.zeros(1, np.int32), np.array([(T0 + 2) * NS_PER_S], np.int64),
                {"power": np.array([np.nan])})
    rows = reducer.flush().fresh
    by_second = dict(zip(rows.time_s.tolist(), range(len(rows)), strict=True))
    assert rows.columns["sample_count"][by_second[T0 + 1]] == 1
    assert T0 + 2 not in by_second or rows.columns["sample_count"][by_second[T0 + 2]] == 0
    assert float(np.nansum(rows.columns["sample_count"])) == 2
