"""Energy of power fields: zero-order holds (each sample holds until the next one of its
series), a hold longer than the profile's ``max_gap_s`` reported as a gap, the rest split at
second and 5-minute boundaries into Wh per (series, second) — see ``split_holds``."""

from __future__ import annotations

import numpy as np

from sunarchive.model import NS_PER_S, Event, FloatArray, IntArray
from sunarchive.profiles.spec import FieldSpec
from sunarchive.reducer.carry import NO_FROM, BoolArray, Carry, I32Array, Samples

WH_PER_WS = 1.0 / 3600.0
ENERGY_PIECE_S = 300  # a hold's energy goes to at most one 1 s row per this many seconds


class Holds:
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


def energy_parts(power: list[FieldSpec], carry: Carry, now: Samples, rest: Samples,
                 until_s: IntArray, events: list[Event], max_gap_ns: int,
                 measurement: str) -> list[tuple[I32Array, IntArray, str, FloatArray]]:
    """Energy contributions (series, second, column, Wh) for seconds before
    ``until_s[series]``.

    Every hold is cut at its series' ``until_s``; the rest of an open hold is emitted by a
    later close once its successor is final (see ``Carry.hold_from``).
    """
    out: list[tuple[I32Array, IntArray, str, FloatArray]] = []
    for spec in power:
        ser, sec, wh = field_energy(spec, carry, now, rest, events, until_s, max_gap_ns,
                                    measurement)
        if len(ser):
            out.append((ser, sec, spec.energy_column_name, wh))
    return out


def field_energy(spec: FieldSpec, carry: Carry, now: Samples, rest: Samples,
                 events: list[Event], until_s: IntArray, max_gap_ns: int,
                 measurement: str) -> tuple[I32Array, IntArray, FloatArray]:
    """The energy of one power field: ``now`` holds the samples of the seconds closing,
    ``rest`` the buffered ones after them (the *peek*); gaps longer than ``max_gap_ns`` go to
    ``events``."""
    # FIX(peek double count): a hold ending at a *peek* (earliest buffered sample at or
    # after `until_s`) is only tentative — a sample in [until_s, peek) may still arrive
    # within the lateness allowance and become the real successor. Formerly the peek hold
    # was split completely and its later seconds kept pending, so such a sample made those
    # seconds count twice (and a peek "gap" could be reported and dropped wrongly). Now a
    # peek hold emits only its seconds before `until_s`, and only when it is certainly no
    # gap (the real successor lies in [until_s, peek]); the hold stays open and its final
    # successor emits the seconds from `hold_from` on.
    f = spec.name
    mask = ~np.isnan(now.values[f])
    s_ser, s_t, s_p = now.series[mask], now.time_ns[mask], now.values[f][mask]
    peek_ser, peek_t, _ = first_per_series(rest, f)
    holds = Holds()
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
    gap = (end - start) > max_gap_ns
    for i in np.flatnonzero(gap & ~tentative):
        events.append(Event(start[i] / NS_PER_S, "gap", measurement,
                            f"{f}: no sample for {(end[i] - start[i]) / NS_PER_S:.1f} s "
                            f"(limit {max_gap_ns / NS_PER_S:g} s); no energy counted",
                            series_id=int(iser[i]), end_s=end[i] / NS_PER_S))
    update_holds(carry, f, s_ser, s_t, s_p, iser[tentative & ~gap], until_s)
    end = np.where(tentative, until_s[iser] * NS_PER_S, end)
    part_start = np.maximum(start, frm * NS_PER_S)  # skip seconds already emitted
    ok = ~gap & (part_start < end)
    return split_holds(iser[ok], part_start[ok], end[ok], power[ok], start[ok])


def update_holds(carry: Carry, f: str, s_ser: I32Array, s_t: IntArray, s_p: FloatArray,
                 emitted_ser: I32Array, until_s: IntArray) -> None:
    """The last sample of each series in ``s_ser`` opens its hold of field ``f``."""
    # FIX(peek double count): holds stay open until their successor is final (in `now`);
    # `emitted_ser` are the series whose open hold was emitted up to `until_s` from a peek.
    if len(s_ser):
        last = np.append(s_ser[1:] != s_ser[:-1], True)
        ls = s_ser[last]
        carry.hold_t[f][ls] = s_t[last]
        carry.hold_p[f][ls] = s_p[last]
        carry.hold_done[f][ls] = False
        carry.hold_from[f][ls] = NO_FROM
    carry.hold_from[f][emitted_ser] = until_s[emitted_ser]


def first_per_series(s: Samples, f: str) -> tuple[I32Array, IntArray, FloatArray]:
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


def split_holds(series: I32Array, start_ns: IntArray, end_ns: IntArray, power_w: FloatArray,
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
    bs, bt, bw = split_rest(series[body], body_start[body], body_end[body], power_w[body],
                            first_s[body] + 1)
    return (np.concatenate([series[head], bs, series[tail]]),
            np.concatenate([first_s[head], bt, last_s[tail]]),
            np.concatenate([wh_of(power_w, start_ns, head_end, head), bw,
                            wh_of(power_w, tail_start, end_ns, tail)]))


def wh_of(power_w: FloatArray, start_ns: IntArray, end_ns: IntArray,
          pick: BoolArray) -> FloatArray:
    """Energy (Wh) of the picked holds' parts [start, end) of constant power."""
    return power_w[pick] * ((end_ns[pick] - start_ns[pick]) / NS_PER_S) * WH_PER_WS


def split_rest(series: I32Array, start_ns: IntArray, end_ns: IntArray, power_w: FloatArray,
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
