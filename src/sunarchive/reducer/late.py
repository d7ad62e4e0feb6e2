"""Late merges and duplicates: a sample after its second was closed is reduced on its own
and merged into the stored row; a point written again is a duplicate (dropped when unchanged)
or a replacement whose seconds are recomputed from the remembered points
(:mod:`sunarchive.dedup`, :mod:`sunarchive.replacement`)."""

from __future__ import annotations

import numpy as np

from sunarchive.dedup import Points, RecentPoints, last_per_point
from sunarchive.model import NS_PER_S, Event, FieldKind, FloatArray, IntArray, StatsRows
from sunarchive.profiles.spec import FieldSpec, Profile
from sunarchive.reducer.carry import NO_FROM, Carry, Samples
from sunarchive.reducer.rows import ReduceResult, concat_rows
from sunarchive.reducer.statistics import empty_columns, field_stats, round_columns
from sunarchive.reducer.windowing import group_starts, sort_order, watermark
from sunarchive.replacement import Fields, Span, merged_spans, replacement_rows, span_of
from sunarchive.resolution import ValueGrid


class LateMerges:
    """The part of :class:`~sunarchive.reducer.Reducer` that handles samples of closed
    seconds and repeated points."""

    profile: Profile
    value_grid: ValueGrid
    names: list[str]
    power: list[FieldSpec]
    sequential: list[FieldSpec]
    too_late_total: int
    _carry: Carry
    _too_late: list[Samples]
    _recent: RecentPoints
    _duplicates: int
    _replacing: list[tuple[int, int]]

    # -- repeats of written points ---------------------------------------------------------
    def _add_too_late(self, late: Samples) -> None:
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

    def _without_recalled(self, samples: Samples) -> Samples:
        """Drop repeats of points an earlier run wrote (see :meth:`recall`)."""
        until = self._recent.recalled_until_ns
        if until is None or not len(samples) or int(samples.time_ns.min()) > until:
            return samples
        return self._without_repeats(samples)

    def _without_repeats(self, samples: Samples) -> Samples:
        """``samples`` without repeats of remembered (written) points: an unchanged repeat is
        dropped, a changed one becomes a replacement (:meth:`_replace`)."""
        same, changed, merged = self._recent.classify(samples)
        if not (same.any() or changed.any()):
            return samples
        self._duplicates += int(same.sum()) + int(changed.sum())
        if changed.any():
            self._replace(merged.take(changed))
        return samples.take(~same & ~changed)

    def _replace(self, points: Samples) -> None:
        """Points that change written ones: remember them as they now stand, let the open
        state of their series (a hold's power, a counter's previous value) take the new
        value, and recompute their seconds once that can be done exactly."""
        newest = watermark(self._carry)
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
    def _retake(points: Samples, name: str, held_t: IntArray, held_v: FloatArray) -> None:
        """Where a series holds the value of a replaced point, hold the new value."""
        value = points.values[name]
        hit = (held_t[points.series] == points.time_ns) & ~np.isnan(value)
        held_v[points.series[hit]] = value[hit]

    def _merge_points(self, s: Samples) -> Samples:
        """Merge exact duplicates of samples sorted by (series, time), counting them."""
        merged = last_per_point(s.series, s.time_ns, s.values)
        if merged is None:
            return s
        starts, values = merged
        self._duplicates += len(s) - len(starts)
        return Samples(s.series[starts], s.time_ns[starts], values)

    def _remember(self, s: Samples, result: ReduceResult) -> None:
        """Remember the points just reduced (for duplicates arriving after their second was
        written) and hand the duplicates counted since the last close to ``result``."""
        newest = watermark(self._carry)
        if newest is not None:
            self._recent.remember(s, newest)
        result.duplicates += self._duplicates
        self._duplicates = 0

    # -- samples of closed seconds ---------------------------------------------------------
    def _reduce_too_late(self, result: ReduceResult) -> None:
        """Reduce the too-late samples on their own into merge rows of ``result``: exact
        gauge, flag and count statistics; energy and counter/state transitions unrevised."""
        if not self._too_late:
            return
        late = Samples.concat(self._too_late, self.names)
        self._too_late = []
        late_order = sort_order(late.series, late.time_ns)
        if late_order is not None:
            late = late.take(late_order)
        merged = len(late)
        late = self._merge_points(late)
        merged -= len(late)
        self.too_late_total -= merged
        self._remember(late, result)
        second = late.time_ns // NS_PER_S
        starts = group_starts(late.series, second)
        counts = np.diff(np.append(starts, len(late))).astype(np.float64)
        cols: dict[str, FloatArray] = {"sample_count": counts, "covered_s": np.ones(len(starts))}
        for spec in self.profile.fields:
            if spec.kind in (FieldKind.GAUGE, FieldKind.POWER, FieldKind.FLAG):
                cols.update(field_stats(spec, late, starts, counts, self._carry))
            else:
                v = late.values[spec.name]
                cols[f"{spec.stem}_count"] = np.add.reduceat((~np.isnan(v)).astype(float),
                                                             starts)
        rows = empty_columns(self.profile, len(starts))
        rows.update(cols)
        for spec in self.power:
            rows[spec.energy_column_name] = np.zeros(len(starts))
        round_columns(self.profile, rows, self.value_grid)
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

    def _reduce_alone(self, points: Samples, until_s: int) -> StatsRows:
        """The rows a fresh reducer makes of ``points`` closed until ``until_s`` (the
        ``Reducer`` makes them)."""
        raise NotImplementedError

    def _merge_late(self, keys: list[tuple[int, int]], result: ReduceResult) -> None:
        """Replaced points that cannot be recomputed: merged as late samples."""
        found = {k: None for k in keys}
        parts = []
        for series_id in {k[0] for k in keys}:
            points = self._recent.series_points(series_id)
            pick = np.array([(series_id, int(t)) in found for t in points.time_ns], bool)
            parts.append(points.take(pick))
        late = Samples.concat(parts, self.names)
        self._too_late.append(late)
        self.too_late_total += len(late)
        self._duplicates -= len(late)
        self._reduce_too_late(result)
