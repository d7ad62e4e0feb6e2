"""Which seconds of which series close when: samples sorted and grouped by (series, second),
split at each series' close bound, and the per-series clocks (newest sample time, advanced for
live inputs by the time elapsed since it arrived, held back by a bursty sender's slack)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sunarchive.model import NS_PER_S, IntArray
from sunarchive.reducer.carry import (
    NO_CLOCK,
    NO_FROM,
    NO_MARK,
    BoolArray,
    Carry,
    I32Array,
    Samples,
)


def sort_order(series: I32Array, time_ns: IntArray) -> npt.NDArray[np.intp] | None:
    """Indices sorting by (series, time), or None when already sorted."""
    if len(time_ns) == 0:
        return None
    base = int(time_ns.min())
    span = int(time_ns.max()) - base
    if span < (1 << 42) and int(series.max()) < (1 << 20):
        key = (series.astype(np.int64) << 42) | (time_ns - base)
        if bool(np.all(key[1:] >= key[:-1])):
            return None
        return np.argsort(key, kind="stable")
    return np.lexsort((time_ns, series))


def split_at(samples: Samples, until_s: IntArray) -> tuple[Samples, Samples]:
    """(samples before ``until_s[series]`` seconds, the rest) without copying when one side
    is empty."""
    before = before_bounds(samples, until_s)
    count = int(before.sum())
    if count == len(samples):
        return samples, samples.take(np.empty(0, np.intp))
    if count == 0:
        return samples.take(np.empty(0, np.intp)), samples
    return samples.take(before), samples.take(~before)


def before_bounds(samples: Samples, until_s: IntArray) -> BoolArray:
    """Which samples lie before their series' ``until_s``; only the samples between the
    lowest and highest bound are looked up per series (the bulk is compared at once)."""
    bounds = until_s[until_s != NO_FROM]
    if not len(bounds):
        return np.zeros(len(samples), bool)
    lo_ns, hi_ns = int(bounds.min()) * NS_PER_S, int(bounds.max()) * NS_PER_S
    before = samples.time_ns < lo_ns
    if hi_ns > lo_ns:
        mid = np.flatnonzero(~before & (samples.time_ns < hi_ns))
        until_ns = until_s * NS_PER_S
        before[mid] = samples.time_ns[mid] < until_ns[samples.series[mid]]
    return before


def group_starts(series: I32Array, second: IntArray) -> npt.NDArray[np.intp]:
    """Start index of every (series, second) run in sorted arrays."""
    if len(series) == 0:
        return np.empty(0, np.intp)
    change = np.empty(len(series), dtype=bool)
    change[0] = True
    change[1:] = (series[1:] != series[:-1]) | (second[1:] != second[:-1])
    return np.flatnonzero(change)


def key_order(series: I32Array, second: IntArray) -> npt.NDArray[np.intp]:
    """Stable order by (series, second); fast for a few already-sorted runs."""
    base = int(second.min())
    if int(second.max()) - base < (1 << 31):
        key = (series.astype(np.int64) << 32) | (second - base)
        return np.argsort(key, kind="stable")
    return np.lexsort((second, series))


def with_fields(samples: Samples, names: list[str]) -> Samples:
    """``samples`` with the fields ``names`` added, absent (NaN) everywhere."""
    values = dict(samples.values)
    for name in names:
        values[name] = np.full(len(samples), np.nan)
    return Samples(samples.series, samples.time_ns, values)


def without_empty_rows(samples: Samples) -> Samples:
    """Drop rows in which every field is missing: they are not samples (they would count in
    ``sample_count`` and ``covered_s`` and overstate completeness)."""
    if not samples.values:
        return samples
    present = np.zeros(len(samples), bool)
    for column in samples.values.values():
        present |= ~np.isnan(column)
    return samples if present.all() else samples.take(present)


# -- the clocks of the series -------------------------------------------------------------
def learn_slack(carry: Carry, samples: Samples, arrived_ns: int, lateness_ns: int) -> None:
    """A sender that delivers in bursts (Telegraf's flush interval, a logger uploading
    every few minutes) arrives behind its series' clock. Slack is how far the oldest
    sample of a delivery was behind it beyond ``lateness_s``; it halves with every
    delivery that is not as late, so a one-off delay (an outage) fades."""
    oldest = np.full(carry.size, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(oldest, samples.series, samples.time_ns)
    ids = np.flatnonzero((oldest != np.iinfo(np.int64).max) & (carry.mark_ns != NO_MARK)
                         & (carry.seen_ns != NO_CLOCK))
    clock = carry.mark_ns[ids] + np.maximum(arrived_ns - carry.seen_ns[ids], 0)
    excess = clock - oldest[ids] - lateness_ns
    carry.slack_ns[ids] = np.maximum(excess, carry.slack_ns[ids] // 2)


def advance_marks(carry: Carry, samples: Samples, arrived_ns: int | None) -> None:
    """Move each series' newest sample time (and when it arrived) to ``samples``'."""
    newest = carry.mark_ns.copy()
    np.maximum.at(newest, samples.series, samples.time_ns)
    ahead = newest > carry.mark_ns
    carry.mark_ns[ahead] = newest[ahead]
    carry.seen_ns[ahead] = NO_CLOCK if arrived_ns is None else arrived_ns


def ready_until(carry: Carry, lateness_ns: int, now_ns: int | None = None) -> IntArray:
    """Per series id: seconds before this may be closed now — the series' clock minus
    lateness (NO_FROM for a series without samples). The clock is the newest sample
    time, plus — when ``now_ns`` is given and the series is live — the time since it
    arrived less the series' learned slack."""
    clock = carry.mark_ns.copy()
    if now_ns is not None:
        live = (carry.seen_ns != NO_CLOCK) & (carry.mark_ns != NO_MARK)
        waited = now_ns - carry.seen_ns[live] - carry.slack_ns[live]
        clock[live] += np.maximum(waited, 0)
    until = (clock - lateness_ns) // NS_PER_S
    return np.where(carry.mark_ns == NO_MARK, NO_FROM, until)


def closed_until(carry: Carry) -> int | None:
    """Seconds before this are closed for the series furthest ahead (None: none closed)."""
    closed = carry.closed_s
    return int(closed.max()) if len(closed) and closed.max() != NO_FROM else None


def watermark(carry: Carry) -> int | None:
    """Newest sample time of any series (UTC epoch ns), None before the first."""
    marks = carry.mark_ns
    return int(marks.max()) if len(marks) and marks.max() != NO_MARK else None
