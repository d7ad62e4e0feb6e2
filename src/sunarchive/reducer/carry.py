"""The state of each series that a close hands to the next, in arrays indexed by series id,
and the array types of the reducer."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from sunarchive.dedup import Points
from sunarchive.model import FloatArray, IntArray

I32Array = npt.NDArray[np.int32]
G = TypeVar("G", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]
NO_FROM = -(1 << 32)  # "nothing emitted yet" for Carry.hold_from (seconds; × 1e9 fits int64)
NO_MARK = np.iinfo(np.int64).min  # "no sample yet" for Carry.mark_ns
NO_CLOCK = -1  # Carry.seen_ns of a series that follows its own clock (not a live input)

Samples = Points
"""Raw samples of one measurement (series id, UTC epoch ns, every field; NaN: absent)."""


class Carry:
    """Per-series state that crosses closes, in arrays indexed by series id."""

    def __init__(self) -> None:
        self.size = 0
        self.hold_t: dict[str, IntArray] = {}
        self.hold_p: dict[str, FloatArray] = {}
        self.hold_done: dict[str, BoolArray] = {}
        # FIX(peek double count): seconds before hold_from[f][series] of the open hold were
        # already emitted (from a peek); NO_FROM when nothing of it was emitted yet.
        self.hold_from: dict[str, IntArray] = {}
        self.prev_v: dict[str, FloatArray] = {}
        self.prev_t: dict[str, IntArray] = {}
        self.closed_s = np.empty(0, np.int64)
        """Seconds (UTC epoch s) before this are closed for the series; NO_FROM: none yet."""
        self.mark_ns = np.empty(0, np.int64)
        """Newest sample time of the series (UTC epoch ns); NO_MARK: none yet."""
        self.seen_ns = np.empty(0, np.int64)
        """Clock reading (ns) when ``mark_ns`` arrived; NO_CLOCK: the series has no clock."""
        self.slack_ns = np.empty(0, np.int64)
        """How much later than ``lateness_s`` the series has delivered (ns, see
        ``windowing.learn_slack``): its clock holds back by that much."""

    def ensure(self, n: int, power: list[str], sequential: list[str]) -> None:
        """Room for series ids below ``n``, and state for every field named (a field a
        grown profile added starts without state)."""
        missing = any(p not in self.hold_t for p in power) or \
            any(s not in self.prev_v for s in sequential)
        if n <= self.size and not missing:
            return
        grow = max(n, 2 * self.size, 16) if n > self.size else self.size
        self.closed_s = grow_array(self.closed_s, grow, NO_FROM, np.int64)
        self.mark_ns = grow_array(self.mark_ns, grow, NO_MARK, np.int64)
        self.seen_ns = grow_array(self.seen_ns, grow, NO_CLOCK, np.int64)
        self.slack_ns = grow_array(self.slack_ns, grow, 0, np.int64)
        for name in power:
            self.hold_t[name] = grow_array(self.hold_t.get(name), grow, -1, np.int64)
            self.hold_p[name] = grow_array(self.hold_p.get(name), grow, np.nan, np.float64)
            self.hold_done[name] = grow_array(self.hold_done.get(name), grow, True, np.bool_)
            self.hold_from[name] = grow_array(self.hold_from.get(name), grow, NO_FROM, np.int64)
        for name in sequential:
            self.prev_v[name] = grow_array(self.prev_v.get(name), grow, np.nan, np.float64)
            self.prev_t[name] = grow_array(self.prev_t.get(name), grow, -1, np.int64)
        self.size = grow


def grow_array(old: npt.NDArray[G] | None, n: int, fill: object,
               dtype: type[G]) -> npt.NDArray[G]:
    new: npt.NDArray[G] = np.full(n, fill, dtype=dtype)
    if old is not None:
        new[: len(old)] = old
    return new
