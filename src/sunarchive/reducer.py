"""Raw samples → exact 1-second statistics, vectorized with numpy.

The reducer of one measurement buffers samples and *closes* whole seconds of each series on
its own: a series' seconds close once that series' clock is more than ``lateness_s`` past their
end, so a series that runs behind another (a second sender, a slow device clock) is never made
"too late" by it. A series' clock is its newest sample time; for live inputs (samples added
with ``arrived_ns``, closes given ``now_ns``) it also advances with the time elapsed since that
sample arrived, so a point that nothing follows is closed ``lateness_s`` after the end of its
second (plus the *slack* of a series whose sender delivers in bursts, see ``_learn_slack``).
Closing turns the buffered samples of those seconds into one statistics row per (series,
second):

* gauge / power fields: count, mean, min, max, population stddev;
* power fields also: energy in Wh, the time integral of power with a zero-order hold — each
  sample holds until the next sample of the same series, the hold is split exactly at the
  boundaries below, and a hold longer than the profile's ``max_gap_s`` contributes nothing and
  is reported as a ``gap`` event. The pieces of a hold inside its first second and inside
  the second of its end go to those seconds; the rest is cut at 5-minute boundaries (UTC
  epoch multiples of 300 s) and each piece goes to its first second — an energy-only row
  (``sample_count`` 0, statistics NULL). So a hold makes at most one energy-only row per
  5-minute bucket it crosses (a 15-minute poll makes 3, not 900), a second with samples has
  exactly its own energy, every rollup tier is exact, and the 1 s tier is exact over ranges
  that begin and end on 5-minute boundaries (see ``_split_holds``);
* counter fields: first, last and increase. The increase of a sample is its difference to the
  previous sample of the series and belongs to the sample's own second. A decrease is a reset
  (midnight, restart, replacement): it contributes the new value only when the field declares
  ``max_rate_per_s`` and the new value is within ``max_rate_per_s`` × elapsed time, otherwise
  nothing. With ``max_rate_per_s`` a rise faster than that rate is a spike and contributes
  nothing. Increase is therefore never negative and never spikes;
* state fields: first, last, min, max and changes (a change belongs to the second of the sample
  that differs from its predecessor);
* flag fields: any, number true, count.

A sample that arrives after its second was closed is *too late*: it is reduced on its own and
returned as a ``merge`` row that the store merges into the stored row; its gauge, flag and count
statistics are exact, its energy and counter/state transitions are not revised (they depend on
neighbours that have already been accounted). Too-late samples are counted.

A point written again (same series, same nanosecond) is a duplicate, never a second sample:
before its second closes the last value of every field wins; after, an unchanged repeat is
dropped and a changed one *replaces* the point — the seconds it touches are recomputed from the
remembered points and replace the stored rows (:mod:`sunarchive.replacement`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from sunarchive.dedup import Points, RecentPoints, last_per_point
from sunarchive.model import NS_PER_S, Event, FieldKind, FloatArray, IntArray, StatsRows
from sunarchive.profiles.spec import FieldSpec, Profile
from sunarchive.replacement import Fields, Span, merged_spans, replacement_rows, span_of
from sunarchive.resolution import ValueGrid, round_to_grid

I32Array = npt.NDArray[np.int32]
G = TypeVar("G", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]
WH_PER_WS = 1.0 / 3600.0
ENERGY_PIECE_S = 300  # a hold's energy goes to at most one 1 s row per this many seconds
NO_FROM = -(1 << 32)  # "nothing emitted yet" for _Carry.hold_from (seconds; × 1e9 fits int64)
NO_MARK = np.iinfo(np.int64).min  # "no sample yet" for _Carry.mark_ns
NO_CLOCK = -1  # _Carry.seen_ns of a series that follows its own clock (not a live input)


@dataclass
class ReduceResult:
    """Rows produced by one close: ``fresh`` rows are new, ``merge`` rows update stored rows."""

    fresh: StatsRows
    merge: StatsRows
    events: list[Event] = field(default_factory=list)
    too_late_samples: int = 0
    duplicates: int = 0
    """Exact duplicate points merged into the earlier ones or dropped (see ``add``)."""


_Samples = Points
"""Raw samples of one measurement (series id, UTC epoch ns, every field; NaN: absent)."""


class _Holds:
    """Zero-order holds [start, end) of constant power collected for one close."""

    def __init__(self) -> None:
        self._parts: list[tuple[I32Array, IntArray, IntArray, FloatArray, IntArray,
                                BoolArray]] = []

    def add(self, series: I32Array, start_ns: IntArray, end_ns: IntArray, power_w: FloatArray,
            emitted_s: IntArray | None = None, tentative: bool = False) -> None:
        n = len(series)
        if n == 0:
            return
        frm = emitted_s if emitted_s is not None else np.full(n, NO_FROM, np.int64)
        self._parts.append((series, start_ns, end_ns, power_w, frm, np.full(n, tentative)))

    def arrays(self) -> tuple[I32Array, IntArray, IntArray, FloatArray, IntArray, BoolArray]:
        if not self._parts:
            return (np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64),
                    np.empty(0), np.empty(0, np.int64), np.empty(0, bool))
        if len(self._parts) == 1:
            return self._parts[0]
        cols = list(zip(*self._parts, strict=True))
        return (np.concatenate(cols[0]), np.concatenate(cols[1]), np.concatenate(cols[2]),
                np.concatenate(cols[3]), np.concatenate(cols[4]), np.concatenate(cols[5]))


class _Carry:
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
        ``Reducer._learn_slack``): its clock holds back by that much."""

    def ensure(self, n: int, power: list[str], sequential: list[str]) -> None:
        """Room for series ids below ``n``, and state for every field named (a field a
        grown profile added starts without state)."""
        missing = any(p not in self.hold_t for p in power) or \
            any(s not in self.prev_v for s in sequential)
        if n <= self.size and not missing:
            return
        grow = max(n, 2 * self.size, 16) if n > self.size else self.size
        self.closed_s = _grow(self.closed_s, grow, NO_FROM, np.int64)
        self.mark_ns = _grow(self.mark_ns, grow, NO_MARK, np.int64)
        self.seen_ns = _grow(self.seen_ns, grow, NO_CLOCK, np.int64)
        self.slack_ns = _grow(self.slack_ns, grow, 0, np.int64)
        for name in power:
            self.hold_t[name] = _grow(self.hold_t.get(name), grow, -1, np.int64)
            self.hold_p[name] = _grow(self.hold_p.get(name), grow, np.nan, np.float64)
            self.hold_done[name] = _grow(self.hold_done.get(name), grow, True, np.bool_)
            self.hold_from[name] = _grow(self.hold_from.get(name), grow, NO_FROM, np.int64)
        for name in sequential:
            self.prev_v[name] = _grow(self.prev_v.get(name), grow, np.nan, np.float64)
            self.prev_t[name] = _grow(self.prev_t.get(name), grow, -1, np.int64)
        self.size = grow


def _grow(old: npt.NDArray[G] | None, n: int, fill: object,
          dtype: type[G]) -> npt.NDArray[G]:
    new: npt.NDArray[G] = np.full(n, fill, dtype=dtype)
    if old is not None:
        new[: len(old)] = old
    return new


def _sort_order(series: I32Array, time_ns: IntArray) -> npt.NDArray[np.intp] | None:
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


def _split_at(samples: _Samples, until_s: IntArray) -> tuple[_Samples, _Samples]:
    """(samples before ``until_s[series]`` seconds, the rest) without copying when one side
    is empty."""
    before = _before(samples, until_s)
    count = int(before.sum())
    if count == len(samples):
        return samples, samples.take(np.empty(0, np.intp))
    if count == 0:
        return samples.take(np.empty(0, np.intp)), samples
    return samples.take(before), samples.take(~before)


def _before(samples: _Samples, until_s: IntArray) -> BoolArray:
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


def _group_starts(series: I32Array, second: IntArray) -> npt.NDArray[np.intp]:
    """Start index of every (series, second) run in sorted arrays."""
    if len(series) == 0:
        return np.empty(0, np.intp)
    change = np.empty(len(series), dtype=bool)
    change[0] = True
    change[1:] = (series[1:] != series[:-1]) | (second[1:] != second[:-1])
    return np.flatnonzero(change)


class Reducer:
    """Streaming reducer of one measurement (see the module docstring for the rules)."""

    def __init__(self, profile: Profile, lateness_s: float = 2.0,
                 value_grid: ValueGrid = "decimal", dedup_window_s: float = 600.0) -> None:
        """``value_grid``: the grid the statistics are rounded to (the store's,
        :mod:`sunarchive.resolution`); ``dedup_window_s``: how long (sample time) written
        points are remembered to recognise duplicates (:class:`RecentPoints`)."""
        self.profile = profile
        self.value_grid: ValueGrid = value_grid
        self.lateness_ns = round(lateness_s * NS_PER_S)
        self.max_gap_ns = round(profile.max_gap_s * NS_PER_S)
        self.names = [f.name for f in profile.fields]
        self.power = profile.fields_of(FieldKind.POWER)
        self.sequential = profile.fields_of(FieldKind.COUNTER, FieldKind.STATE)
        self.too_late_total = 0
        self._buffer: list[_Samples] = []
        self._buffered = 0
        self._carry = _Carry()
        self._too_late: list[_Samples] = []
        self._recent = RecentPoints(dedup_window_s, self.names)
        self._duplicates = 0
        self._replacing: list[tuple[int, int]] = []
        """(series id, UTC epoch ns) of changed points whose seconds are still to be
        recomputed (see :mod:`sunarchive.replacement`)."""

    def grow(self, profile: Profile) -> None:
        """Take ``profile``, the same measurement's profile grown by fields (schema on
        write): buffered samples get the new fields as absent, and nothing already
        buffered, carried or remembered is lost."""
        added = [f.name for f in profile.fields if f.name not in self.names]
        self.profile = profile
        self.names.extend(added)      # the list RecentPoints holds too
        self.power = profile.fields_of(FieldKind.POWER)
        self.sequential = profile.fields_of(FieldKind.COUNTER, FieldKind.STATE)
        self._buffer = [_with_fields(s, added) for s in self._buffer]
        self._too_late = [_with_fields(s, added) for s in self._too_late]
        self._recent.add_fields(added)
        self._carry.ensure(self._carry.size, [f.name for f in self.power],
                           [f.name for f in self.sequential])

    # -- input -----------------------------------------------------------------------------
    def add(self, series: I32Array, time_ns: IntArray, values: dict[str, FloatArray],
            arrived_ns: int | None = None) -> None:
        """Buffer samples; ``series`` holds compact series ids, ``time_ns`` UTC epoch ns.

        ``arrived_ns``: a monotonic clock reading (ns) when the samples arrived, for live
        inputs; their series are then also closed by that clock (see :meth:`close`). None for
        inputs that follow their own clock (imports, the simulator).
        """
        if len(time_ns) == 0:
            return
        cols = {n: np.asarray(values[n], np.float64) if n in values
                else np.full(len(time_ns), np.nan) for n in self.names}
        samples = _Samples(np.asarray(series, np.int32), np.asarray(time_ns, np.int64), cols)
        samples = _without_empty_rows(samples)
        if not len(samples):
            return
        self._carry.ensure(int(samples.series.max()) + 1, [f.name for f in self.power],
                           [f.name for f in self.sequential])
        if arrived_ns is not None:
            self._learn_slack(samples, arrived_ns)
        late = samples.time_ns < self._carry.closed_s[samples.series] * NS_PER_S
        if late.any():
            self._add_too_late(samples.take(late))
            samples = samples.take(~late)
        samples = self._without_recalled(samples)
        if len(samples):
            self._buffer.append(samples)
            self._buffered += len(samples)
            self._advance_marks(samples, arrived_ns)

    def _add_too_late(self, late: _Samples) -> None:
        """Samples of closed seconds: a point written before that they do not change is a
        duplicate and dropped, one they change replaces it; the others are merged into the
        stored rows at the next close."""
        late = self._without_repeats(late)
        if len(late):
            self._too_late.append(late)
            self.too_late_total += len(late)

    def recall(self, parts: list[Points]) -> None:
        """Remember the points an earlier run wrote in the dedup window (read back from disk):
        a repeat of one of them that changes nothing is dropped."""
        self._recent.recall(parts)

    def take_remembered(self) -> list[Points]:
        """Points written since the last call, for the next run's :meth:`recall`."""
        return self._recent.take_unsaved()

    def _without_recalled(self, samples: _Samples) -> _Samples:
        """Drop repeats of points an earlier run wrote (see :meth:`recall`)."""
        until = self._recent.recalled_until_ns
        if until is None or not len(samples) or int(samples.time_ns.min()) > until:
            return samples
        return self._without_repeats(samples)

    def _without_repeats(self, samples: _Samples) -> _Samples:
        """``samples`` without repeats of remembered (written) points: an unchanged repeat is
        dropped, a changed one becomes a replacement (:meth:`_replace`)."""
        same, changed, merged = self._recent.classify(samples)
        if not (same.any() or changed.any()):
            return samples
        self._duplicates += int(same.sum()) + int(changed.sum())
        if changed.any():
            self._replace(merged.take(changed))
        return samples.take(~same & ~changed)

    def _replace(self, points: _Samples) -> None:
        """Points that change written ones: remember them as they now stand, let the open
        state of their series (a hold's power, a counter's previous value) take the new
        value, and recompute their seconds once that can be done exactly."""
        newest = self.watermark_ns
        self._recent.remember(points, newest if newest is not None
                              else int(points.time_ns.max()))
        carry = self._carry
        for spec in self.power:
            self._retake(points, spec.name, carry.hold_t[spec.name], carry.hold_p[spec.name])
        for spec in self.sequential:
            self._retake(points, spec.name, carry.prev_t[spec.name], carry.prev_v[spec.name])
        self._replacing.extend(zip(points.series.tolist(), points.time_ns.tolist(),
                                   strict=True))

    @staticmethod
    def _retake(points: _Samples, name: str, held_t: IntArray, held_v: FloatArray) -> None:
        """Where a series holds the value of a replaced point, hold the new value."""
        value = points.values[name]
        hit = (held_t[points.series] == points.time_ns) & ~np.isnan(value)
        held_v[points.series[hit]] = value[hit]

    def _merge_points(self, s: _Samples) -> _Samples:
        """Merge exact duplicates of samples sorted by (series, time), counting them."""
        merged = last_per_point(s.series, s.time_ns, s.values)
        if merged is None:
            return s
        starts, values = merged
        self._duplicates += len(s) - len(starts)
        return _Samples(s.series[starts], s.time_ns[starts], values)

    def _remember(self, s: _Samples, result: ReduceResult) -> None:
        """Remember the points just reduced (for duplicates arriving after their second was
        written) and hand the duplicates counted since the last close to ``result``."""
        newest = self.watermark_ns
        if newest is not None:
            self._recent.remember(s, newest)
        result.duplicates += self._duplicates
        self._duplicates = 0

    def _learn_slack(self, samples: _Samples, arrived_ns: int) -> None:
        """A sender that delivers in bursts (Telegraf's flush interval, a logger uploading
        every few minutes) arrives behind its series' clock. Slack is how far the oldest
        sample of a delivery was behind it beyond ``lateness_s``; it halves with every
        delivery that is not as late, so a one-off delay (an outage) fades."""
        carry = self._carry
        oldest = np.full(carry.size, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(oldest, samples.series, samples.time_ns)
        ids = np.flatnonzero((oldest != np.iinfo(np.int64).max) & (carry.mark_ns != NO_MARK)
                             & (carry.seen_ns != NO_CLOCK))
        clock = carry.mark_ns[ids] + np.maximum(arrived_ns - carry.seen_ns[ids], 0)
        excess = clock - oldest[ids] - self.lateness_ns
        carry.slack_ns[ids] = np.maximum(excess, carry.slack_ns[ids] // 2)

    def _advance_marks(self, samples: _Samples, arrived_ns: int | None) -> None:
        carry = self._carry
        newest = carry.mark_ns.copy()
        np.maximum.at(newest, samples.series, samples.time_ns)
        ahead = newest > carry.mark_ns
        carry.mark_ns[ahead] = newest[ahead]
        carry.seen_ns[ahead] = NO_CLOCK if arrived_ns is None else arrived_ns

    @property
    def closed_until_s(self) -> int | None:
        """Seconds before this are closed for the series furthest ahead (None: none closed).
        Rollups use it; a lagging series' later rows re-materialize the buckets they touch."""
        closed = self._carry.closed_s
        return int(closed.max()) if len(closed) and closed.max() != NO_FROM else None

    @property
    def watermark_ns(self) -> int | None:
        """Newest sample time of any series (UTC epoch ns), None before the first."""
        marks = self._carry.mark_ns
        return int(marks.max()) if len(marks) and marks.max() != NO_MARK else None

    @property
    def buffered(self) -> int:
        """Samples waiting for their second to close."""
        return self._buffered

    def buffered_by_series(self) -> dict[int, int]:
        """Samples waiting for their second to close, per series id."""
        counts: dict[int, int] = {}
        for part in self._buffer:
            ids, n = np.unique(part.series, return_counts=True)
            for sid, count in zip(ids.tolist(), n.tolist(), strict=True):
                counts[sid] = counts.get(sid, 0) + count
        return counts

    # -- closing ---------------------------------------------------------------------------
    def ready_until_s(self, now_ns: int | None = None) -> IntArray:
        """Per series id: seconds before this may be closed now — the series' clock minus
        lateness (NO_FROM for a series without samples). The clock is the newest sample
        time, plus — when ``now_ns`` is given and the series is live — the time since it
        arrived less the series' learned slack."""
        carry = self._carry
        clock = carry.mark_ns.copy()
        if now_ns is not None:
            live = (carry.seen_ns != NO_CLOCK) & (carry.mark_ns != NO_MARK)
            waited = now_ns - carry.seen_ns[live] - carry.slack_ns[live]
            clock[live] += np.maximum(waited, 0)
        until = (clock - self.lateness_ns) // NS_PER_S
        return np.where(carry.mark_ns == NO_MARK, NO_FROM, until)

    def close(self, now_ns: int | None = None) -> ReduceResult:
        """Close every second each series' clock allows; ``now_ns`` is the monotonic clock
        reading (ns) of live inputs, None when only the data may close seconds."""
        return self._close(self.ready_until_s(now_ns))

    def flush(self) -> ReduceResult:
        """Close everything buffered (clean stop or end of an import)."""
        marks = self._carry.mark_ns
        return self._close(np.where(marks == NO_MARK, NO_FROM, marks // NS_PER_S + 1),
                           final=True)

    def _close_late_only(self, final: bool = False) -> ReduceResult:
        result = ReduceResult(StatsRows.empty(self.profile.name),
                              StatsRows.empty(self.profile.name))
        result.duplicates, self._duplicates = self._duplicates, 0
        self._reduce_too_late(result)
        self._recompute_replaced(result, final)
        return result

    def close_until(self, until_s: int) -> ReduceResult:
        """Close all seconds before ``until_s`` (UTC epoch seconds) of every series."""
        return self._close(np.full(self._carry.size, until_s, np.int64))

    def _close(self, until: IntArray, final: bool = False) -> ReduceResult:
        """Close the seconds before ``until[series id]`` (UTC epoch s) of each series;
        ``final``: nothing more is coming (a flush)."""
        prev = self._carry.closed_s
        until = np.maximum(until, prev)
        if not bool((until > prev).any()):
            return self._close_late_only(final)
        now, rest = _split_at(_Samples.concat(self._buffer, self.names), until)
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        order = _sort_order(now.series, now.time_ns)
        if order is not None:
            now = now.take(order)
        now = self._merge_points(now)
        events: list[Event] = []
        stats_keys, stats_cols = self._stats(now)
        energy = self._energy(now, rest, until, events)
        self._carry.closed_s = until
        fresh, merge = self._assemble(stats_keys, stats_cols, energy, prev)
        result = ReduceResult(fresh, merge, events)
        self._remember(now, result)
        self._reduce_too_late(result)
        self._recompute_replaced(result, final)
        return result

    # -- statistics ------------------------------------------------------------------------
    def _stats(self, s: _Samples) -> tuple[tuple[I32Array, IntArray], dict[str, FloatArray]]:
        second = s.time_ns // NS_PER_S
        starts = _group_starts(s.series, second)
        keys = (s.series[starts], second[starts])
        counts = np.diff(np.append(starts, len(s))).astype(np.float64)
        cols: dict[str, FloatArray] = {"sample_count": counts,
                                       "covered_s": np.ones(len(starts))}
        for spec in self.profile.fields:
            cols.update(self._field_stats(spec, s, starts, counts))
        return keys, cols

    def _field_stats(self, spec: FieldSpec, s: _Samples, starts: npt.NDArray[np.intp],
                     counts: FloatArray) -> dict[str, FloatArray]:
        if len(starts) == 0:
            return {c.name: np.empty(0) for c in spec.columns()}
        v = s.values[spec.name]
        present = ~np.isnan(v)
        n = np.add.reduceat(present.astype(np.float64), starts)
        f = spec.stem   # of the columns; values are by the field's name
        if spec.kind in (FieldKind.GAUGE, FieldKind.POWER):
            return _gauge_stats(f, v, present, starts, n, counts)
        if spec.kind is FieldKind.FLAG:
            truthy = np.where(present, v != 0, False)
            true_count = np.add.reduceat(truthy.astype(np.float64), starts)
            any_true = np.where(n > 0, (true_count > 0).astype(np.float64), np.nan)
            return {f"{f}_any": any_true, f"{f}_true_count": true_count, f"{f}_count": n}
        return self._sequential_stats(spec, s, v, present, starts, n)

    def _sequential_stats(self, spec: FieldSpec, s: _Samples, v: FloatArray,
                          present: BoolArray, starts: npt.NDArray[np.intp],
                          n: FloatArray) -> dict[str, FloatArray]:
        f, c = spec.name, spec.stem   # values and carry by name, columns by stem
        first, last = _first_last(v, present, starts)
        idx = np.flatnonzero(present)
        ser, tv, vv = s.series[idx], s.time_ns[idx], v[idx]
        prev_v = np.empty(len(idx))
        prev_t = np.empty(len(idx), np.int64)
        if len(idx):
            new_series = np.empty(len(idx), bool)
            new_series[0] = True
            new_series[1:] = ser[1:] != ser[:-1]
            prev_v[1:], prev_t[1:] = vv[:-1], tv[:-1]
            prev_v[new_series] = self._carry.prev_v[f][ser[new_series]]
            prev_t[new_series] = self._carry.prev_t[f][ser[new_series]]
            last_of_series = np.append(new_series[1:], True)
            self._carry.prev_v[f][ser[last_of_series]] = vv[last_of_series]
            self._carry.prev_t[f][ser[last_of_series]] = tv[last_of_series]
        per_sample = np.zeros(len(v))
        if spec.kind is FieldKind.COUNTER:
            per_sample[idx] = _counter_increase(vv, prev_v, (tv - prev_t) / NS_PER_S,
                                                spec.max_rate_per_s)
            return {f"{c}_first": first, f"{c}_last": last,
                    f"{c}_increase": np.where(n > 0, np.add.reduceat(per_sample, starts),
                                              np.nan),
                    f"{c}_count": n}
        per_sample[idx] = (~np.isnan(prev_v) & (vv != prev_v)).astype(np.float64)
        changes = np.where(n > 0, np.add.reduceat(per_sample, starts), np.nan)
        return {f"{c}_first": first, f"{c}_last": last,
                f"{c}_min": np.fmin.reduceat(np.where(present, v, np.nan), starts),
                f"{c}_max": np.fmax.reduceat(np.where(present, v, np.nan), starts),
                f"{c}_changes": changes, f"{c}_count": n}

    # -- energy ----------------------------------------------------------------------------
    def _energy(self, now: _Samples, rest: _Samples, until_s: IntArray,
                events: list[Event]) -> list[tuple[I32Array, IntArray, str, FloatArray]]:
        """Energy contributions (series, second, column, Wh) for seconds before
        ``until_s[series]``.

        Every hold is cut at its series' ``until_s``; the rest of an open hold is emitted by a
        later close once its successor is final (see ``_Carry.hold_from``).
        """
        out: list[tuple[I32Array, IntArray, str, FloatArray]] = []
        for spec in self.power:
            ser, sec, wh = self._field_energy(spec, now, rest, events, until_s)
            if len(ser):
                out.append((ser, sec, spec.energy_column_name, wh))
        return out

    def _field_energy(self, spec: FieldSpec, now: _Samples, rest: _Samples,
                      events: list[Event], until_s: IntArray,
                      ) -> tuple[I32Array, IntArray, FloatArray]:
        # FIX(peek double count): a hold ending at a *peek* (earliest buffered sample at or
        # after `until_s`) is only tentative — a sample in [until_s, peek) may still arrive
        # within the lateness allowance and become the real successor. Formerly the peek hold
        # was split completely and its later seconds kept pending, so such a sample made those
        # seconds count twice (and a peek "gap" could be reported and dropped wrongly). Now a
        # peek hold emits only its seconds before `until_s`, and only when it is certainly no
        # gap (the real successor lies in [until_s, peek]); the hold stays open and its final
        # successor emits the seconds from `hold_from` on.
        f = spec.name
        carry = self._carry
        mask = ~np.isnan(now.values[f])
        s_ser, s_t, s_p = now.series[mask], now.time_ns[mask], now.values[f][mask]
        peek_ser, peek_t, _ = _first_per_series(rest, f)
        holds = _Holds()
        # A: consecutive samples of a series inside this close (the bulk, already sorted)
        inner = np.flatnonzero(s_ser[1:] == s_ser[:-1])
        holds.add(s_ser[inner], s_t[inner], s_t[inner + 1], s_p[inner])
        boundary = np.ones(len(s_ser) + 1, bool)
        boundary[1:-1] = s_ser[1:] != s_ser[:-1]
        first_i = np.flatnonzero(boundary[:-1])
        last_i = np.flatnonzero(boundary[1:])
        # B: an open hold from an earlier close ends at the series' first sample here
        fs = s_ser[first_i]
        open_b = ~carry.hold_done[f][fs]
        fs, fi = fs[open_b], first_i[open_b]
        holds.add(fs, carry.hold_t[f][fs], s_t[fi], carry.hold_p[f][fs],
                  emitted_s=carry.hold_from[f][fs])
        # C: the series' last sample here holds until its peek (tentative)
        ls = s_ser[last_i]
        pos = np.minimum(np.searchsorted(peek_ser, ls), max(len(peek_ser) - 1, 0))
        has_peek = (peek_ser[pos] == ls) if len(peek_ser) else np.zeros(len(ls), bool)
        holds.add(ls[has_peek], s_t[last_i][has_peek], peek_t[pos[has_peek]],
                  s_p[last_i][has_peek], tentative=True)
        # D: an open hold of a series without samples here holds until its peek (tentative)
        idle = ~carry.hold_done[f][peek_ser] & ~np.isin(peek_ser, ls)
        ds = peek_ser[idle]
        holds.add(ds, carry.hold_t[f][ds], peek_t[idle], carry.hold_p[f][ds],
                  emitted_s=carry.hold_from[f][ds], tentative=True)
        iser, start, end, power, frm, tentative = holds.arrays()
        gap = (end - start) > self.max_gap_ns
        for i in np.flatnonzero(gap & ~tentative):
            events.append(Event(start[i] / NS_PER_S, "gap", self.profile.name,
                                f"{f}: no sample for {(end[i] - start[i]) / NS_PER_S:.1f} s "
                                f"(limit {self.max_gap_ns / NS_PER_S:g} s); no energy counted",
                                series_id=int(iser[i]), end_s=end[i] / NS_PER_S))
        self._update_holds(f, s_ser, s_t, s_p, iser[tentative & ~gap], until_s)
        end = np.where(tentative, until_s[iser] * NS_PER_S, end)
        part_start = np.maximum(start, frm * NS_PER_S)  # skip seconds already emitted
        ok = ~gap & (part_start < end)
        return _split_holds(iser[ok], part_start[ok], end[ok], power[ok], start[ok])

    def _update_holds(self, f: str, s_ser: I32Array, s_t: IntArray, s_p: FloatArray,
                      emitted_ser: I32Array, until_s: IntArray) -> None:
        # FIX(peek double count): holds stay open until their successor is final (in `now`);
        # `emitted_ser` are the series whose open hold was emitted up to `until_s` from a peek.
        carry = self._carry
        if len(s_ser):
            last = np.append(s_ser[1:] != s_ser[:-1], True)
            ls = s_ser[last]
            carry.hold_t[f][ls] = s_t[last]
            carry.hold_p[f][ls] = s_p[last]
            carry.hold_done[f][ls] = False
            carry.hold_from[f][ls] = NO_FROM
        carry.hold_from[f][emitted_ser] = until_s[emitted_ser]

    # -- output ----------------------------------------------------------------------------
    def _assemble(self, stats_keys: tuple[I32Array, IntArray], stats: dict[str, FloatArray],
                  energy: list[tuple[I32Array, IntArray, str, FloatArray]],
                  prev_until: IntArray) -> tuple[StatsRows, StatsRows]:
        ser = np.concatenate([stats_keys[0], *[e[0] for e in energy]])
        sec = np.concatenate([stats_keys[1], *[e[1] for e in energy]])
        if len(ser) == 0:
            empty = StatsRows.empty(self.profile.name)
            return empty, StatsRows.empty(self.profile.name)
        key_order = _key_order(ser, sec)
        s_sorted, t_sorted = ser[key_order], sec[key_order]
        first = np.ones(len(key_order), bool)
        first[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
        row_of_sorted = np.cumsum(first) - 1
        row_of = np.empty(len(key_order), np.intp)
        row_of[key_order] = row_of_sorted
        nrows = int(row_of_sorted[-1]) + 1
        out_ser, out_sec = s_sorted[first], t_sorted[first]
        columns = self._empty_columns(nrows)
        n_stats = len(stats_keys[0])
        stat_rows = row_of[:n_stats]
        for name, values in stats.items():
            columns[name][stat_rows] = values
        offset = n_stats
        for e_ser, _, col, wh in energy:
            targets = row_of[offset: offset + len(e_ser)]
            offset += len(e_ser)
            target = columns[col]
            add = np.bincount(targets, weights=wh, minlength=nrows)
            hit = np.bincount(targets, minlength=nrows) > 0
            target[hit] = np.nan_to_num(target[hit]) + add[hit]
        for spec in self.power:
            energy_col = columns[spec.energy_column_name]
            has_power = columns[f"{spec.stem}_count"] > 0
            energy_col[np.isnan(energy_col) & has_power] = 0.0
        self._round(columns)
        rows = StatsRows(self.profile.name, out_sec.astype(np.int64),
                         out_ser.astype(np.int32), dict(columns))
        return _split_rows(rows, prev_until)

    def _round(self, columns: dict[str, FloatArray]) -> None:
        """Round to the profile's declared resolution (see ``FieldSpec.rounded_columns``) on
        the store's grid."""
        for spec in self.profile.fields:
            for name, decimals in spec.rounded_columns().items():
                columns[name] = round_to_grid(columns[name], decimals, self.value_grid)

    def _empty_columns(self, n: int) -> dict[str, FloatArray]:
        cols: dict[str, FloatArray] = {}
        for c in self.profile.stats_columns():
            # FIX(tests/test_reducer_properties.py): `<state>_changes` is no longer pre-filled
            # with 0. An energy-only row has no state sample, so its changes are missing
            # (NULL), as in a row whose samples lack the state field (see _sequential_stats)
            # and as the module docstring says ("statistics NULL"); counts stay 0.
            zero = c.name in ("sample_count", "covered_s") or c.name.endswith("_count")
            cols[c.name] = np.zeros(n) if zero else np.full(n, np.nan)
        return cols

    def _reduce_too_late(self, result: ReduceResult) -> None:
        if not self._too_late:
            return
        late = _Samples.concat(self._too_late, self.names)
        self._too_late = []
        late_order = _sort_order(late.series, late.time_ns)
        if late_order is not None:
            late = late.take(late_order)
        merged = len(late)
        late = self._merge_points(late)
        merged -= len(late)
        self.too_late_total -= merged
        self._remember(late, result)
        second = late.time_ns // NS_PER_S
        starts = _group_starts(late.series, second)
        counts = np.diff(np.append(starts, len(late))).astype(np.float64)
        cols: dict[str, FloatArray] = {"sample_count": counts, "covered_s": np.ones(len(starts))}
        for spec in self.profile.fields:
            if spec.kind in (FieldKind.GAUGE, FieldKind.POWER, FieldKind.FLAG):
                cols.update(self._field_stats(spec, late, starts, counts))
            else:
                v = late.values[spec.name]
                cols[f"{spec.stem}_count"] = np.add.reduceat((~np.isnan(v)).astype(float),
                                                             starts)
        rows = self._empty_columns(len(starts))
        rows.update(cols)
        for spec in self.power:
            rows[spec.energy_column_name] = np.zeros(len(starts))
        self._round(rows)
        late_rows = StatsRows(self.profile.name, second[starts], late.series[starts],
                              dict(rows))
        result.merge = concat_rows([result.merge, late_rows])
        result.too_late_samples += len(late)
        result.events.append(Event(float(late.time_ns.min()) / NS_PER_S, "late_samples",
                                   self.profile.name,
                                   f"{len(late)} samples arrived after their second was "
                                   "closed; merged into the stored rows",
                                   end_s=float(late.time_ns.max()) / NS_PER_S))


    # -- replacements ----------------------------------------------------------------------
    def _recompute_replaced(self, result: ReduceResult, final: bool) -> None:
        """Recompute the seconds of replaced points that can be now (see
        :mod:`sunarchive.replacement`); a point that cannot be recomputed is merged as a
        late sample instead."""
        if not self._replacing:
            return
        fields = Fields([f.name for f in self.power],
                        [f.name for f in (*self.power, *self.sequential)])
        by_series: dict[int, list[int]] = {}
        for series_id, time_ns in self._replacing:
            by_series.setdefault(series_id, []).append(time_ns)
        self._replacing = []
        parts, unrecomputable = [result.merge], []
        for series_id, times in by_series.items():
            points = self._recent.series_points(series_id)
            settled = final or self._nothing_open_emitted(series_id)
            spans = []
            for time_ns in times:
                span = span_of(points, time_ns, fields, self._recent.complete, settled)
                if span is None:
                    self._replacing.append((series_id, time_ns))
                elif isinstance(span, Span):
                    spans.append(span)
                else:
                    unrecomputable.append((series_id, time_ns))
            parts.extend(replacement_rows(points, span, self._reduce_alone)
                         for span in merged_spans(spans))
        result.merge = concat_rows(parts)
        if unrecomputable:
            self._merge_late(unrecomputable, result)

    def _nothing_open_emitted(self, series_id: int) -> bool:
        """No part of an open hold of the series is stored yet (none was emitted ahead of
        its successor): its stored rows are then what a reduction of its written points
        gives, as at the end of a run."""
        carry = self._carry
        if series_id >= carry.size:
            return True
        return all(bool(carry.hold_done[f.name][series_id])
                   or int(carry.hold_from[f.name][series_id]) == NO_FROM for f in self.power)

    def _reduce_alone(self, points: _Samples, until_s: int) -> StatsRows:
        """The rows a fresh reducer makes of ``points`` closed until ``until_s``."""
        alone = Reducer(self.profile, lateness_s=0.0, value_grid=self.value_grid,
                        dedup_window_s=0.0)
        alone.add(points.series, points.time_ns, points.values)
        return alone.close_until(until_s).fresh

    def _merge_late(self, keys: list[tuple[int, int]], result: ReduceResult) -> None:
        """Replaced points that cannot be recomputed: merged as late samples."""
        found = {k: None for k in keys}
        parts = []
        for series_id in {k[0] for k in keys}:
            points = self._recent.series_points(series_id)
            pick = np.array([(series_id, int(t)) in found for t in points.time_ns], bool)
            parts.append(points.take(pick))
        late = _Samples.concat(parts, self.names)
        self._too_late.append(late)
        self.too_late_total += len(late)
        self._duplicates -= len(late)
        self._reduce_too_late(result)


def _with_fields(samples: _Samples, names: list[str]) -> _Samples:
    """``samples`` with the fields ``names`` added, absent (NaN) everywhere."""
    values = dict(samples.values)
    for name in names:
        values[name] = np.full(len(samples), np.nan)
    return _Samples(samples.series, samples.time_ns, values)


def _without_empty_rows(samples: _Samples) -> _Samples:
    """Drop rows in which every field is missing: they are not samples (they would count in
    ``sample_count`` and ``covered_s`` and overstate completeness)."""
    if not samples.values:
        return samples
    present = np.zeros(len(samples), bool)
    for column in samples.values.values():
        present |= ~np.isnan(column)
    return samples if present.all() else samples.take(present)


def _key_order(series: I32Array, second: IntArray) -> npt.NDArray[np.intp]:
    """Stable order by (series, second); fast for a few already-sorted runs."""
    base = int(second.min())
    if int(second.max()) - base < (1 << 31):
        key = (series.astype(np.int64) << 32) | (second - base)
        return np.argsort(key, kind="stable")
    return np.lexsort((second, series))


def _gauge_stats(f: str, v: FloatArray, present: BoolArray, starts: npt.NDArray[np.intp],
                 n: FloatArray, counts: FloatArray) -> dict[str, FloatArray]:
    zeroed = np.where(present, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(zeroed, starts) / n
        lengths = counts.astype(np.intp)
        dev = np.where(present, v - np.repeat(mean, lengths), 0.0)
        m2 = np.add.reduceat(dev * dev, starts)
        std = np.sqrt(m2 / n)
    nan_v = np.where(present, v, np.nan)
    return {f"{f}_avg": mean, f"{f}_min": np.fmin.reduceat(nan_v, starts),
            f"{f}_max": np.fmax.reduceat(nan_v, starts), f"{f}_stddev": std, f"{f}_count": n}


def _first_last(v: FloatArray, present: BoolArray,
                starts: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    """First and last present value of each group (NaN when none is present)."""
    idx = np.arange(len(v))
    big = len(v)
    first_i = np.minimum.reduceat(np.where(present, idx, big), starts)
    last_i = np.maximum.reduceat(np.where(present, idx, -1), starts)
    padded = np.append(v, np.nan)
    return padded[first_i], padded[np.where(last_i < 0, big, last_i)]


def _counter_increase(value: FloatArray, prev: FloatArray, dt_s: FloatArray,
                      max_rate_per_s: float | None) -> FloatArray:
    """Increase contributed by each sample (see the module docstring for the reset rule)."""
    delta = value - prev
    out = np.where(np.isnan(prev), 0.0, np.maximum(delta, 0.0))
    reset = ~np.isnan(prev) & (delta < 0)
    if max_rate_per_s is None:
        out[reset] = 0.0
        return out
    allowed = max_rate_per_s * np.maximum(dt_s, 1.0)
    out[reset] = np.where(value[reset] <= allowed[reset], value[reset], 0.0)
    spike = ~reset & (out > allowed)
    out[spike] = 0.0
    return out


def _first_per_series(s: _Samples, f: str) -> tuple[I32Array, IntArray, FloatArray]:
    """Earliest present sample of field ``f`` per series (series ascending), without sorting."""
    mask = ~np.isnan(s.values[f])
    ser, t, p = s.series[mask], s.time_ns[mask], s.values[f][mask]
    if len(ser) == 0:
        return ser, t, p
    earliest = np.full(int(ser.max()) + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(earliest, ser, t)
    candidates = np.flatnonzero(t == earliest[ser])
    series_ids, first = np.unique(ser[candidates], return_index=True)
    pick = candidates[first]
    return series_ids.astype(np.int32), t[pick], p[pick]


def _split_holds(series: I32Array, start_ns: IntArray, end_ns: IntArray, power_w: FloatArray,
                 hold_start_ns: IntArray | None = None) -> tuple[I32Array, IntArray, FloatArray]:
    """Energy of the parts [start, end) of holds of constant power → (series, second, Wh).

    ``hold_start_ns`` is where each whole hold began (default ``start_ns``): a part may be the
    rest of a hold whose beginning an earlier close emitted. The rule (one row per 5-minute
    bucket a hold crosses, not one per second):

    * the piece inside the hold's first second goes to that second (the sample's own row);
    * the piece inside the second of the hold's end (the successor's second) goes there;
    * the rest is cut at 5-minute boundaries (UTC epoch multiples of ``ENERGY_PIECE_S``) and
      each piece goes to its first second, an energy-only row (no sample lies there).

    So a second holding samples gets exactly the energy inside it (consistent with its power
    statistics); every 5-minute bucket gets exactly the energy inside it, and so does every
    hour and every local day (the daily tier is built from 5-minute buckets, which assumes
    the site's midnights are 5-minute aligned — true of every zone's UTC offset today, all
    multiples of 15 minutes); the 1 s tier is exact over any range that begins and ends on
    5-minute boundaries. The attribution depends only on the hold, so a hold emitted in
    parts by several closes puts each part in the same rows (later parts as merge rows): a
    part cut at a close's ``until`` ends on the grid, and the real end lies at or after it.
    """
    if len(series) == 0:
        return series, start_ns // NS_PER_S, np.empty(0)
    first_s = (start_ns if hold_start_ns is None else hold_start_ns) // NS_PER_S
    after_first_ns = (first_s + 1) * NS_PER_S
    if bool((end_ns <= after_first_ns).all()):  # at 10 Hz most holds lie inside one second
        return series, first_s, power_w * ((end_ns - start_ns) / NS_PER_S) * WH_PER_WS
    head_end = np.minimum(end_ns, after_first_ns)
    head = start_ns < head_end
    last_s = end_ns // NS_PER_S  # the second of the successor (when it is not on the grid)
    body_start = np.maximum(start_ns, after_first_ns)
    body_end = np.maximum(last_s * NS_PER_S, body_start)
    tail_start = np.maximum(body_end, start_ns)
    body = body_start < body_end
    tail = tail_start < end_ns
    bs, bt, bw = _split_rest(series[body], body_start[body], body_end[body], power_w[body],
                             first_s[body] + 1)
    return (np.concatenate([series[head], bs, series[tail]]),
            np.concatenate([first_s[head], bt, last_s[tail]]),
            np.concatenate([_wh(power_w, start_ns, head_end, head), bw,
                            _wh(power_w, tail_start, end_ns, tail)]))


def _wh(power_w: FloatArray, start_ns: IntArray, end_ns: IntArray,
        pick: BoolArray) -> FloatArray:
    """Energy (Wh) of the picked holds' parts [start, end) of constant power."""
    return power_w[pick] * ((end_ns[pick] - start_ns[pick]) / NS_PER_S) * WH_PER_WS


def _split_rest(series: I32Array, start_ns: IntArray, end_ns: IntArray, power_w: FloatArray,
                rest_from_s: IntArray) -> tuple[I32Array, IntArray, FloatArray]:
    """Cut hold parts [start, end) lying after their hold's first second at 5-minute
    boundaries; a piece goes to the first second of the hold's piece it belongs to, the
    later of ``rest_from_s`` (the second after the hold's first) and the boundary."""
    piece_ns = ENERGY_PIECE_S * NS_PER_S
    first_b = start_ns // piece_ns
    pieces = ((end_ns - 1) // piece_ns - first_b + 1).astype(np.intp)
    owner = np.repeat(np.arange(len(pieces)), pieces)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    bucket = first_b[owner] + offset
    lo = np.maximum(bucket * piece_ns, start_ns[owner])
    hi = np.minimum((bucket + 1) * piece_ns, end_ns[owner])
    second = np.maximum(rest_from_s[owner], bucket * ENERGY_PIECE_S)
    return series[owner], second, power_w[owner] * ((hi - lo) / NS_PER_S) * WH_PER_WS


def _split_rows(rows: StatsRows, prev_until: IntArray) -> tuple[StatsRows, StatsRows]:
    """(fresh rows, merge rows): a row is merged when its series had closed its second."""
    old = rows.time_s < prev_until[rows.series_id]
    return select_rows(rows, ~old), select_rows(rows, old)


def select_rows(rows: StatsRows, mask: BoolArray | npt.NDArray[np.intp]) -> StatsRows:
    """Rows picked by a boolean mask or index array."""
    return StatsRows(rows.measurement, rows.time_s[mask], rows.series_id[mask],
                     {k: v[mask] for k, v in rows.columns.items()})


def concat_rows(parts: list[StatsRows]) -> StatsRows:
    """Concatenate rows of one measurement (columns missing in a part become NaN)."""
    measurement = parts[0].measurement if parts else ""
    parts = [p for p in parts if len(p)]
    if not parts:
        return StatsRows.empty(measurement)
    if len(parts) == 1:
        return parts[0]
    names = sorted({k for p in parts for k in p.columns})
    cols = {n: np.concatenate([p.columns.get(n, np.full(len(p), np.nan)).astype(np.float64)
                               for p in parts]) for n in names}
    return StatsRows(parts[0].measurement, np.concatenate([p.time_s for p in parts]),
                     np.concatenate([p.series_id for p in parts]), cols)
