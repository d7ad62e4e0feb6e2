"""Per-kind statistics of the samples of each (series, second): gauge and power (count, mean,
min, max, stddev), flag (any, number true, count), counter (first, last, increase with the reset
rule) and state (first, last, min, max, changes); the empty columns of a row, and rounding to
the profile's resolution."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sunarchive.model import NS_PER_S, FieldKind, FloatArray, IntArray
from sunarchive.profiles.spec import FieldSpec, Profile
from sunarchive.reducer.carry import BoolArray, Carry, I32Array, Samples
from sunarchive.reducer.windowing import group_starts
from sunarchive.resolution import ValueGrid, round_to_grid


def stats(profile: Profile, carry: Carry,
          s: Samples) -> tuple[tuple[I32Array, IntArray], dict[str, FloatArray]]:
    """The statistics of every (series, second) of ``s`` (sorted by series and time): their
    keys and columns."""
    second = s.time_ns // NS_PER_S
    starts = group_starts(s.series, second)
    keys = (s.series[starts], second[starts])
    counts = np.diff(np.append(starts, len(s))).astype(np.float64)
    cols: dict[str, FloatArray] = {"sample_count": counts,
                                   "covered_s": np.ones(len(starts))}
    for spec in profile.fields:
        cols.update(field_stats(spec, s, starts, counts, carry))
    return keys, cols


def field_stats(spec: FieldSpec, s: Samples, starts: npt.NDArray[np.intp],
                counts: FloatArray, carry: Carry) -> dict[str, FloatArray]:
    """The statistics columns of one field for the groups beginning at ``starts``."""
    if len(starts) == 0:
        return {c.name: np.empty(0) for c in spec.columns()}
    v = s.values[spec.name]
    present = ~np.isnan(v)
    n = np.add.reduceat(present.astype(np.float64), starts)
    f = spec.stem   # of the columns; values are by the field's name
    if spec.kind in (FieldKind.GAUGE, FieldKind.POWER):
        return gauge_stats(f, v, present, starts, n, counts)
    if spec.kind is FieldKind.FLAG:
        truthy = np.where(present, v != 0, False)
        true_count = np.add.reduceat(truthy.astype(np.float64), starts)
        any_true = np.where(n > 0, (true_count > 0).astype(np.float64), np.nan)
        return {f"{f}_any": any_true, f"{f}_true_count": true_count, f"{f}_count": n}
    return sequential_stats(spec, s, v, present, starts, n, carry)


def sequential_stats(spec: FieldSpec, s: Samples, v: FloatArray, present: BoolArray,
                     starts: npt.NDArray[np.intp], n: FloatArray,
                     carry: Carry) -> dict[str, FloatArray]:
    """Counter and state statistics; the previous value of each series comes from (and goes
    back to) ``carry``."""
    f, c = spec.name, spec.stem   # values and carry by name, columns by stem
    first, last = first_last(v, present, starts)
    idx = np.flatnonzero(present)
    ser, tv, vv = s.series[idx], s.time_ns[idx], v[idx]
    prev_v = np.empty(len(idx))
    prev_t = np.empty(len(idx), np.int64)
    if len(idx):
        new_series = np.empty(len(idx), bool)
        new_series[0] = True
        new_series[1:] = ser[1:] != ser[:-1]
        prev_v[1:], prev_t[1:] = vv[:-1], tv[:-1]
        prev_v[new_series] = carry.prev_v[f][ser[new_series]]
        prev_t[new_series] = carry.prev_t[f][ser[new_series]]
        last_of_series = np.append(new_series[1:], True)
        carry.prev_v[f][ser[last_of_series]] = vv[last_of_series]
        carry.prev_t[f][ser[last_of_series]] = tv[last_of_series]
    per_sample = np.zeros(len(v))
    if spec.kind is FieldKind.COUNTER:
        per_sample[idx] = counter_increase(vv, prev_v, (tv - prev_t) / NS_PER_S,
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


def gauge_stats(f: str, v: FloatArray, present: BoolArray, starts: npt.NDArray[np.intp],
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


def first_last(v: FloatArray, present: BoolArray,
               starts: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    """First and last present value of each group (NaN when none is present)."""
    idx = np.arange(len(v))
    big = len(v)
    first_i = np.minimum.reduceat(np.where(present, idx, big), starts)
    last_i = np.maximum.reduceat(np.where(present, idx, -1), starts)
    padded = np.append(v, np.nan)
    return padded[first_i], padded[np.where(last_i < 0, big, last_i)]


def counter_increase(value: FloatArray, prev: FloatArray, dt_s: FloatArray,
                     max_rate_per_s: float | None) -> FloatArray:
    """Increase contributed by each sample (see the package docstring for the reset rule)."""
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


def round_columns(profile: Profile, columns: dict[str, FloatArray], grid: ValueGrid) -> None:
    """Round to the profile's declared resolution (see ``FieldSpec.rounded_columns``) on
    the store's grid."""
    for spec in profile.fields:
        for name, decimals in spec.rounded_columns().items():
            columns[name] = round_to_grid(columns[name], decimals, grid)


def empty_columns(profile: Profile, n: int) -> dict[str, FloatArray]:
    """``n`` rows of every statistics column: counts 0, the rest missing (NaN)."""
    cols: dict[str, FloatArray] = {}
    for c in profile.stats_columns():
        # FIX(tests/test_reducer_properties.py): `<state>_changes` is no longer pre-filled
        # with 0. An energy-only row has no state sample, so its changes are missing
        # (NULL), as in a row whose samples lack the state field (see sequential_stats)
        # and as the package docstring says ("statistics NULL"); counts stay 0.
        zero = c.name in ("sample_count", "covered_s") or c.name.endswith("_count")
        cols[c.name] = np.zeros(n) if zero else np.full(n, np.nan)
    return cols
