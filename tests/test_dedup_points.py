"""The newest remembered point per series (the predecessors replacement needs once points
leave the dedup window) against a plain reference: per series the greatest time, and among
points at that time the one remembered last."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sunarchive.dedup import Points, newest_per_series

pytestmark = pytest.mark.unit


def reference(series: list[int], times: list[int]) -> list[tuple[int, int, int]]:
    """(series, time, index of the point) of the newest point per series, by series."""
    best: dict[int, tuple[int, int]] = {}
    for index, (s, t) in enumerate(zip(series, times, strict=True)):
        if s not in best or t >= best[s][0]:
            best[s] = (t, index)
    return [(s, t, i) for s, (t, i) in sorted(best.items())]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(-3, 5)), max_size=60))
def test_newest_per_series_is_the_last_remembered_newest(pairs: list[tuple[int, int]]) -> None:
    series = [s for s, _ in pairs]
    times = [t for _, t in pairs]
    points = Points(np.array(series, np.int32), np.array(times, np.int64),
                    {"index": np.arange(len(pairs), dtype=np.float64)})
    got = newest_per_series(points)
    assert list(zip(got.series.tolist(), got.time_ns.tolist(),
                    got.values["index"].astype(int).tolist(), strict=True)) == \
        reference(series, times)
