"""Points too far ahead of the clock (sunarchive.timecheck), refused by live inputs."""

from __future__ import annotations

import numpy as np
import pytest

from sunarchive.lineprotocol import parse_lines
from sunarchive.model import SampleBatch
from sunarchive.timecheck import ahead_of_clock, drop_ahead, split_batch

pytestmark = pytest.mark.unit

NOW = 1_782_036_000 * 10**9
S = 10**9


def test_ahead_of_clock_allows_max_future_s() -> None:
    times = np.array([NOW - S, NOW + 300 * S, NOW + 300 * S + 1, 2**63 - 1], np.int64)
    assert ahead_of_clock(times, NOW, 300).tolist() == [False, False, True, True]
    assert not ahead_of_clock(times, 2**63 - 10, 300).any()   # limit clamped to int64


def test_drop_ahead_names_each_line_and_keeps_the_rest() -> None:
    body = (f"m,s=a x=1 {NOW // S}\n\nm,s=b x=2 {NOW // S + 86400 * 365}\n"
            f"n x=3 {NOW // S + 3600}\nm,s=a x=4 {NOW // S + 10}")
    parsed = drop_ahead(parse_lines(body, precision="s", now_ns=NOW), NOW, 300)
    assert [e.line_number for e in parsed.errors] == [3, 4]
    assert "365.0 days ahead of the clock" in parsed.errors[0].message
    assert parsed.errors[1].message.startswith("line 4: timestamp 2026-06-21T11:00:00+00:00 "
                                               "is 3600 s ahead")
    assert list(parsed.measurements) == ["m"]
    assert parsed.measurements["m"].line_numbers.tolist() == [1, 5]
    assert parsed.points == 2


def test_split_batch() -> None:
    batch = SampleBatch("m", [("a",)], np.zeros(3, np.int32),
                        np.array([NOW, NOW + 3600 * S, NOW + 1], np.int64),
                        {"x": np.array([1.0, 2.0, 3.0])})
    kept, refused = split_batch(batch, NOW, 60)
    assert refused == 1 and kept is not None
    assert kept.fields["x"].tolist() == [1.0, 3.0] and kept.time_ns.tolist() == [NOW, NOW + 1]
    assert split_batch(batch, NOW, 7200) == (batch, 0)
    assert split_batch(batch, NOW - 7200 * S, 60) == (None, 3)
