"""A point written again with another value after its second was stored (invariant 9).

A point (one series at one nanosecond timestamp) written again replaces the earlier one, as in
InfluxDB. Before its second closes the reducer simply keeps the last value
(:func:`sunarchive.dedup.last_per_point`); after, the stored rows already hold the old value.
Merging the new value in would count the point twice, so the seconds the point touches are
recomputed from the remembered raw points (:class:`sunarchive.dedup.RecentPoints`) and replace
the stored rows of its series over a range of seconds:

* the point at time t lies in second S: S's statistics change;
* the hold of each of its power fields lasts until the next point carrying that field, whose
  second's energy, counter increase and state change change too: the last of these seconds
  is E.

The range [S, E] is recomputed from every remembered point from the last one before S that
carries each power, counter and state field (their holds end in S, their previous values
give S's first increase), closed before E + 1, and replaces the stored rows of its series
over [S, E + 1). Rows outside the range do not depend on the point. Row E is final in the
store only once every hold that touches it has ended (its end point is written) or while
no part of a still open hold has been stored (nothing is buffered after it): a replacement
waits for that, which for a live series is the time its next point takes to be written.

A recomputation needs those predecessors: the newest forgotten point carrying each field is
kept, so they are always remembered or there was none — unless the points were recalled
after a restart (``RecentPoints.complete`` is False) and one is missing. Then, and for a point
no longer remembered, the new value is merged as a late sample instead (its count moves; the
docs say so). Replacement rows carry the range in the columns :data:`REPLACE_FROM` and
:data:`REPLACE_UNTIL` (UTC epoch s); the store deletes the series' rows in the range and
inserts them, after ordinary merges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sunarchive.dedup import Points
from sunarchive.model import NS_PER_S, StatsRows

REPLACE_FROM = "_replace_from"
REPLACE_UNTIL = "_replace_until"
"""Columns of replacement rows: the series' stored rows in [from, until) (UTC epoch s) are
replaced by the rows carrying them."""


@dataclass(frozen=True)
class Span:
    """A recomputation of one series' rows [first_s, until_s) (UTC epoch s) from its
    remembered points ``points[lo:]``."""

    first_s: int
    until_s: int
    lo: int


@dataclass(frozen=True)
class Fields:
    """The fields whose values cross samples: power fields (holds) and those of holds,
    counters and states (previous values)."""

    holds: list[str]
    carried: list[str]


def span_of(points: Points, time_ns: int, fields: Fields, complete: bool,
            final: bool) -> Span | bool | None:
    """The range a replaced point at ``time_ns`` touches, among the remembered ``points`` of
    its series (time order). ``final``: the store holds nothing of the series' open holds
    (the run ends, or nothing follows them yet). None: wait for later points; False: cannot
    be recomputed (the point or a predecessor is not remembered)."""
    times = points.time_ns
    at = int(np.searchsorted(times, time_ns))
    if at >= len(times) or int(times[at]) != time_ns:
        return False
    first_s = time_ns // NS_PER_S
    lo = _first_needed(points, first_s, fields.carried, complete)
    if lo is None:
        return False
    last_s = first_s
    for name in fields.carried:
        if np.isnan(points.values[name][at]):
            continue
        after = _next_carrying(points, name, at + 1)
        if after is None:   # its hold is still open: wait, unless the run ends
            if not final:
                return None
            continue
        last_s = max(last_s, int(times[after]) // NS_PER_S)
    if not final:
        ends_after = int(np.searchsorted(times, (last_s + 1) * NS_PER_S))
        for name in fields.holds:   # every hold touching the last second has ended
            carrying = np.flatnonzero(~np.isnan(points.values[name][:ends_after]))
            if len(carrying) and _next_carrying(points, name, ends_after) is None:
                return None
    return Span(first_s, last_s + 1, lo)


def _first_needed(points: Points, first_s: int, carried: list[str],
                  complete: bool) -> int | None:
    """Index of the earliest point a recomputation from second ``first_s`` needs: for every
    carried field the last point before it carrying the field (None: one is missing)."""
    before = int(np.searchsorted(points.time_ns, first_s * NS_PER_S))
    lo = before
    for name in carried:
        carrying = np.flatnonzero(~np.isnan(points.values[name][:before]))
        if len(carrying):
            lo = min(lo, int(carrying[-1]))
        elif not complete:
            return None
    return lo


def _next_carrying(points: Points, name: str, start: int) -> int | None:
    """Index of the first point at or after ``start`` carrying field ``name``."""
    found = np.flatnonzero(~np.isnan(points.values[name][start:]))
    return start + int(found[0]) if len(found) else None


def merged_spans(spans: list[Span]) -> list[Span]:
    """Overlapping or adjacent spans of one series joined (each range replaced once)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.first_s):
        if out and span.first_s <= out[-1].until_s:
            last = out[-1]
            out[-1] = Span(last.first_s, max(last.until_s, span.until_s),
                           min(last.lo, span.lo))
        else:
            out.append(span)
    return out


def replacement_rows(points: Points, span: Span,
                     reduce: Callable[[Points, int], StatsRows]) -> StatsRows:
    """The rows of [span.first_s, span.until_s) recomputed by ``reduce(points, closed_s)``
    (a fresh reducer closed before ``closed_s``), marked with their range."""
    # closed after the last point: a hold that begins in the range and ends after it puts
    # its later parts into the row after its first second, inside the range
    closed_s = max(span.until_s, int(points.time_ns[-1]) // NS_PER_S + 1)
    rows = reduce(points.take(np.arange(span.lo, len(points))), closed_s)
    keep = (rows.time_s >= span.first_s) & (rows.time_s < span.until_s)
    picked = StatsRows(rows.measurement, rows.time_s[keep], rows.series_id[keep],
                       {k: v[keep] for k, v in rows.columns.items()})
    picked.columns[REPLACE_FROM] = np.full(len(picked), float(span.first_s))
    picked.columns[REPLACE_UNTIL] = np.full(len(picked), float(span.until_s))
    return picked


def split_replacements(merge: StatsRows) -> tuple[StatsRows, StatsRows]:
    """(ordinary merge rows, replacement rows) of a batch's merge rows."""
    marker = merge.columns.get(REPLACE_FROM)
    if marker is None or not len(merge):
        return merge, _pick(merge, np.zeros(len(merge), bool))
    replacing = ~np.isnan(np.asarray(marker, np.float64))
    return _pick(merge, ~replacing), _pick(merge, replacing)


def replaced_ranges(rows: StatsRows) -> list[tuple[int, int, int]]:
    """The distinct (series id, from, until) ranges (UTC epoch s) replacement rows replace."""
    found = zip(rows.series_id.tolist(), np.asarray(rows.columns[REPLACE_FROM]).tolist(),
                np.asarray(rows.columns[REPLACE_UNTIL]).tolist(), strict=True)
    return sorted({(int(s), int(lo), int(hi)) for s, lo, hi in found})


def replaced_seconds(merge: StatsRows) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """Seconds that mark every 5-minute bucket the replaced ranges of ``merge`` touch (so
    program-maintained rollups re-materialize them)."""
    _, replacing = split_replacements(merge)
    if not len(replacing):
        return np.empty(0, np.int64)
    marks = [np.append(np.arange(lo, hi, 300, dtype=np.int64), hi - 1)
             for _, lo, hi in replaced_ranges(replacing)]
    return np.concatenate(marks)


def _pick(rows: StatsRows, mask: np.ndarray[tuple[int], np.dtype[np.bool_]]) -> StatsRows:
    return StatsRows(rows.measurement, rows.time_s[mask], rows.series_id[mask],
                     {k: v[mask] for k, v in rows.columns.items()})
