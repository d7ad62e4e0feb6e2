"""The streaming reducer of one measurement: input, closing, and the rows of a close (the
rules are in the package docstring)."""

from __future__ import annotations

import numpy as np

from sunarchive.dedup import RecentPoints
from sunarchive.model import NS_PER_S, Event, FieldKind, FloatArray, IntArray, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.reducer.carry import NO_FROM, NO_MARK, Carry, I32Array, Samples
from sunarchive.reducer.energy import energy_parts
from sunarchive.reducer.late import LateMerges
from sunarchive.reducer.rows import ReduceResult, split_rows
from sunarchive.reducer.statistics import empty_columns, round_columns, stats
from sunarchive.reducer.windowing import (
    advance_marks,
    closed_until,
    key_order,
    learn_slack,
    ready_until,
    sort_order,
    split_at,
    watermark,
    with_fields,
    without_empty_rows,
)
from sunarchive.resolution import ValueGrid


class Reducer(LateMerges):
    """Streaming reducer of one measurement (see the package docstring for the rules); the
    handling of late samples and repeated points is in :class:`LateMerges`."""

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
        self._buffer: list[Samples] = []
        self._buffered = 0
        self._carry = Carry()
        self._too_late: list[Samples] = []
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
        self._buffer = [with_fields(s, added) for s in self._buffer]
        self._too_late = [with_fields(s, added) for s in self._too_late]
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
        samples = Samples(np.asarray(series, np.int32), np.asarray(time_ns, np.int64), cols)
        samples = without_empty_rows(samples)
        if not len(samples):
            return
        self._carry.ensure(int(samples.series.max()) + 1, [f.name for f in self.power],
                           [f.name for f in self.sequential])
        if arrived_ns is not None:
            learn_slack(self._carry, samples, arrived_ns, self.lateness_ns)
        late = samples.time_ns < self._carry.closed_s[samples.series] * NS_PER_S
        if late.any():
            self._add_too_late(samples.take(late))
            samples = samples.take(~late)
        samples = self._without_recalled(samples)
        if len(samples):
            self._buffer.append(samples)
            self._buffered += len(samples)
            advance_marks(self._carry, samples, arrived_ns)

    @property
    def closed_until_s(self) -> int | None:
        """Seconds before this are closed for the series furthest ahead (None: none closed).
        Rollups use it; a lagging series' later rows re-materialize the buckets they touch."""
        return closed_until(self._carry)

    @property
    def watermark_ns(self) -> int | None:
        """Newest sample time of any series (UTC epoch ns), None before the first."""
        return watermark(self._carry)

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
        arrived less the series' learned slack (:func:`windowing.learn_slack`)."""
        return ready_until(self._carry, self.lateness_ns, now_ns)

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
        now, rest = split_at(Samples.concat(self._buffer, self.names), until)
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        order = sort_order(now.series, now.time_ns)
        if order is not None:
            now = now.take(order)
        now = self._merge_points(now)
        events: list[Event] = []
        stats_keys, stats_cols = stats(self.profile, self._carry, now)
        energy = energy_parts(self.power, self._carry, now, rest, until, events,
                              self.max_gap_ns, self.profile.name)
        self._carry.closed_s = until
        fresh, merge = self._assemble(stats_keys, stats_cols, energy, prev)
        result = ReduceResult(fresh, merge, events)
        self._remember(now, result)
        self._reduce_too_late(result)
        self._recompute_replaced(result, final)
        return result

    # -- output ----------------------------------------------------------------------------
    def _assemble(self, stats_keys: tuple[I32Array, IntArray], stats: dict[str, FloatArray],
                  energy: list[tuple[I32Array, IntArray, str, FloatArray]],
                  prev_until: IntArray) -> tuple[StatsRows, StatsRows]:
        ser = np.concatenate([stats_keys[0], *[e[0] for e in energy]])
        sec = np.concatenate([stats_keys[1], *[e[1] for e in energy]])
        if len(ser) == 0:
            empty = StatsRows.empty(self.profile.name)
            return empty, StatsRows.empty(self.profile.name)
        by_key = key_order(ser, sec)
        s_sorted, t_sorted = ser[by_key], sec[by_key]
        first = np.ones(len(by_key), bool)
        first[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
        row_of_sorted = np.cumsum(first) - 1
        row_of = np.empty(len(by_key), np.intp)
        row_of[by_key] = row_of_sorted
        nrows = int(row_of_sorted[-1]) + 1
        out_ser, out_sec = s_sorted[first], t_sorted[first]
        columns = empty_columns(self.profile, nrows)
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
        round_columns(self.profile, columns, self.value_grid)
        rows = StatsRows(self.profile.name, out_sec.astype(np.int64),
                         out_ser.astype(np.int32), dict(columns))
        return split_rows(rows, prev_until)

    def _reduce_alone(self, points: Samples, until_s: int) -> StatsRows:
        """The rows a fresh reducer makes of ``points`` closed until ``until_s``."""
        alone = Reducer(self.profile, lateness_s=0.0, value_grid=self.value_grid,
                        dedup_window_s=0.0)
        alone.add(points.series, points.time_ns, points.values)
        return alone.close_until(until_s).fresh
