"""Exact duplicate points (invariant 9, "a point is a point").

A *point* is one series at one nanosecond timestamp. Writing a point again replaces it, as in
InfluxDB: the fields of the two writes merge and a field present in the later write wins (a
field the later write lacks keeps the earlier value). Two tools:

* :func:`last_per_point` merges the duplicates among buffered samples before their second
  closes (the same body, a later body);
* :class:`RecentPoints` remembers the points of the last ``dedup_window_s`` (by sample time,
  behind the measurement's newest sample) so that a duplicate arriving after its second was
  written is recognised: when it changes nothing it is dropped; when it changes a value the
  reducer recomputes the seconds it touches from the remembered points
  (:meth:`RecentPoints.series_points`, ``Reducer`` "replacements").

Samples are passed as (series ids, UTC epoch ns, {field: values}) arrays; NaN is "absent".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sunarchive.model import FloatArray, IntArray

I32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]
KEY_TIME_BITS = 42
"""A point's lookup key is ``series << 42 | (time_ns − base)``: a window spans < 2^42 ns
(73 min) and series ids < 2^21."""
MAX_WINDOW_S = 3600


@dataclass
class Points:
    """Samples: series id, UTC epoch ns and the value of every field (NaN: absent)."""

    series: I32Array
    time_ns: IntArray
    values: dict[str, FloatArray]

    def __len__(self) -> int:
        return len(self.time_ns)

    def take(self, index: npt.NDArray[np.intp] | BoolArray) -> Points:
        return Points(self.series[index], self.time_ns[index],
                      {k: v[index] for k, v in self.values.items()})

    @staticmethod
    def concat(parts: list[Points], names: list[str]) -> Points:
        """One block of ``parts`` in order, with the fields ``names``."""
        if not parts:
            return Points(np.empty(0, np.int32), np.empty(0, np.int64),
                          {n: np.empty(0, np.float64) for n in names})
        if len(parts) == 1:
            return parts[0]
        return Points(np.concatenate([p.series for p in parts]),
                      np.concatenate([p.time_ns for p in parts]),
                      {n: np.concatenate([p.values[n] for p in parts]) for n in names})


def last_per_point(series: I32Array, time_ns: IntArray, values: dict[str, FloatArray]
                   ) -> tuple[npt.NDArray[np.intp], dict[str, FloatArray]] | None:
    """Merge exact duplicates in samples sorted by (series, time) — stably, so arrival order
    is kept among equal points. Returns (index of the first sample of every point, the merged
    values: per field the last present value), or None when there is no duplicate."""
    if len(time_ns) < 2:
        return None
    same = (series[1:] == series[:-1]) & (time_ns[1:] == time_ns[:-1])
    if not same.any():
        return None
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    idx = np.arange(len(time_ns))
    merged: dict[str, FloatArray] = {}
    for name, v in values.items():
        last = np.maximum.reduceat(np.where(np.isnan(v), -1, idx), starts)
        merged[name] = np.where(last >= 0, v[np.maximum(last, 0)], np.nan)
    return starts, merged


class RecentPoints:
    """The points of one measurement written in the last ``window_s`` seconds of sample time.

    Memory is bounded by the samples of the window (plus those of one close): about
    ``12 + 8 × fields`` bytes per sample, e.g. 10 Hz × 600 s × 4 fields ≈ 270 kB per series.
    """

    def __init__(self, window_s: float, names: list[str]) -> None:
        if not 0 <= window_s <= MAX_WINDOW_S:
            raise ValueError(f"dedup_window_s must be within 0..{MAX_WINDOW_S} s")
        self.window_ns = round(window_s * 1e9)
        self.names = names
        self._parts: list[Points] = []
        self._unsaved: list[Points] = []
        self.recalled_until_ns: int | None = None
        """Newest point recalled from an earlier run (see :meth:`recall`), None if none."""
        self.complete = True
        """True unless points were recalled from an earlier run (which wrote points before
        them): a series without a remembered point carrying a field before some time then
        had none — of the points forgotten, the newest of each series and the newest
        carrying each field are kept (see :meth:`series_points`)."""
        self._edge: Points | None = None
        self._index: tuple[IntArray, npt.NDArray[np.intp], Points, int] | None = None

    def add_fields(self, names: list[str]) -> None:
        """Fields a grown profile added: absent (NaN) in every remembered point."""
        def padded(part: Points) -> Points:
            values = dict(part.values)
            for name in names:
                values.setdefault(name, np.full(len(part), np.nan))
            return Points(part.series, part.time_ns, values)

        for name in names:
            if name not in self.names:
                self.names.append(name)
        self._parts = [padded(p) for p in self._parts]
        self._unsaved = [padded(p) for p in self._unsaved]
        if self._edge is not None:
            self._edge = padded(self._edge)
        self._index = None

    def remember(self, points: Points, newest_ns: int) -> None:
        """Keep ``points`` (just written) and forget those older than the window before
        ``newest_ns`` (the measurement's newest sample time)."""
        if self.window_ns == 0:
            return
        if len(points):
            self._parts.append(points)
            self._unsaved.append(points)
        horizon = newest_ns - self.window_ns
        kept, forgotten = [], []
        for part in self._parts:
            if int(part.time_ns.min()) >= horizon:
                kept.append(part)
                continue
            old = part.time_ns < horizon
            forgotten.append(part.take(old))
            if not old.all():
                kept.append(part.take(~old))
        self._parts = kept
        if forgotten:
            self._keep_edge(forgotten)
        self._index = None

    def _keep_edge(self, forgotten: list[Points]) -> None:
        """Keep, per series, the newest forgotten point and the newest forgotten point
        carrying each field: the predecessors a recomputation of the series' oldest
        remembered seconds needs (:mod:`sunarchive.replacement`)."""
        names = list(forgotten[0].values)
        parts = forgotten if self._edge is None else [self._edge, *forgotten]
        points = Points.concat(parts, names)
        keep = [newest_per_series(points)]
        for name in names:
            carrying = ~np.isnan(points.values[name])
            if carrying.any():
                keep.append(newest_per_series(points.take(carrying)))
        edge = Points.concat(keep, names)
        order = np.lexsort((edge.time_ns, edge.series))
        edge = edge.take(order)
        distinct = np.append((edge.series[1:] != edge.series[:-1])
                             | (edge.time_ns[1:] != edge.time_ns[:-1]), True)
        self._edge = edge.take(distinct)

    def recall(self, parts: list[Points]) -> None:
        """Remember points an earlier run wrote (read back from disk) before any new one."""
        parts = [p for p in parts if len(p)]
        if not parts or self.window_ns == 0:
            return
        newest = max(int(p.time_ns.max()) for p in parts)
        self.complete = False   # the earlier run wrote points before the recalled ones
        self._parts.extend(parts)
        self.remember(Points(parts[0].series[:0], parts[0].time_ns[:0], {}), newest)
        self.recalled_until_ns = newest

    def take_unsaved(self) -> list[Points]:
        """Points remembered since the last call (to be saved for the next run)."""
        out, self._unsaved = self._unsaved, []
        return out

    def unchanged(self, points: Points) -> BoolArray:
        """Which of ``points`` repeat a remembered point without changing it: every field they
        carry is remembered with the same value."""
        return self.classify(points)[0]

    def classify(self, points: Points) -> tuple[BoolArray, BoolArray, Points]:
        """(repeats that change nothing, repeats that change a value, ``points`` with the
        fields they lack filled from the remembered point: the point as it now stands)."""
        same = np.zeros(len(points), bool)
        found = self._lookup(points)
        if found is None:
            return same, same.copy(), points
        hit, where, kept = found
        same = hit.copy()
        merged = {}
        for name in self.names:
            new = points.values[name]
            old = np.full(len(points), np.nan)
            old[hit] = kept.values[name][where[hit]]
            same &= np.isnan(new) | (new == old)
            merged[name] = np.where(np.isnan(new), old, new)
        return same, hit & ~same, Points(points.series, points.time_ns, merged)

    def series_points(self, series_id: int) -> Points:
        """Every remembered point of one series in time order, each as last remembered, after
        the newest forgotten one (if any)."""
        parts = [p.take(p.series == series_id) for p in self._parts]
        if self._edge is not None:
            parts.insert(0, self._edge.take(self._edge.series == series_id))
        points = Points.concat([p for p in parts if len(p)], self.names)
        order = np.argsort(points.time_ns, kind="stable")
        points = points.take(order)
        last = np.append(points.time_ns[1:] != points.time_ns[:-1], True)
        return points.take(last)

    def _lookup(self, points: Points) -> tuple[BoolArray, npt.NDArray[np.intp], Points] | None:
        """(found mask, position in the remembered points, the remembered points)."""
        if not self._parts or not len(points):
            return None
        if self._index is None:
            self._index = _build_index(self._parts)
        keys, order, kept, base = self._index
        span = points.time_ns - base
        valid = (span >= 0) & (span < (1 << KEY_TIME_BITS)) & (points.series < (1 << 21))
        probe = (points.series.astype(np.int64) << KEY_TIME_BITS) | np.where(valid, span, 0)
        pos = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
        hit = valid & (keys[pos] == probe)
        return hit, order[pos], kept


def _build_index(parts: list[Points]) -> tuple[IntArray, npt.NDArray[np.intp], Points, int]:
    kept = Points(np.concatenate([p.series for p in parts]),
                  np.concatenate([p.time_ns for p in parts]),
                  {n: np.concatenate([p.values[n] for p in parts]) for n in parts[0].values})
    base = int(kept.time_ns.min())
    keys = (kept.series.astype(np.int64) << KEY_TIME_BITS) | (kept.time_ns - base)
    # a point remembered twice (a late one) is found at its last remembering
    order = np.argsort(keys, kind="stable")[::-1]
    order = order[np.argsort(keys[order], kind="stable")]
    return keys[order], order, kept, base


def newest_per_series(points: Points) -> Points:
    """The newest point of every series in ``points`` (the last remembered among equals),
    ordered by series. Linear: the newest time per series by ``maximum.at`` over the dense
    series ids, then the last point at that time (no sort of all points)."""
    if not len(points):
        return points
    series = points.series.astype(np.intp)
    newest = np.full(int(series.max()) + 1, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(newest, series, points.time_ns)
    candidates = np.flatnonzero(points.time_ns == newest[series])
    reversed_series = series[candidates][::-1]
    _, first_from_end = np.unique(reversed_series, return_index=True)
    return points.take(candidates[len(candidates) - 1 - first_from_end])
