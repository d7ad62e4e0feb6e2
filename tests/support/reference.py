"""A deliberately naive reference: raw samples → the expected rows of every tier.

Pure Python loops, no numpy, no reuse of sunarchive's reducer or rollup code, so that the
property tests compare two independent implementations of the rules in the reducer's module
docstring and ARCHITECTURE.md (invariants 1, 3, 4, 5):

* buckets are ``[start, start + period)`` in UTC epoch seconds, labelled by start; the daily
  bucket is the local calendar day of an IANA zone (DST days have 23 or 25 hours);
* gauge / power: count, mean, min, max, population stddev (two passes over the raw values);
* power energy (Wh): every pair of consecutive present power samples of a series is a hold
  ``[t_i, t_{i+1})`` of power ``P_i``; its overlap with a bucket contributes ``P_i·s/3600``;
  a hold longer than ``profile.max_gap_s`` contributes nothing; the last sample holds nothing.
  At the 5min / 1hour / daily tiers the hold's overlap with each bucket goes to that bucket.
  At the 1 s tier the hold's pieces inside its first second and inside the second of its
  end go to those seconds, and the rest is cut at 5-minute boundaries (UTC epoch multiples
  of 300 s), each piece going to its first second (so a 15-minute poll makes 3 energy-only
  rows, not 900). A bucket that receives
  energy but has no samples is an energy-only row (sample_count 0);
* counter: first, last, increase (difference to the previous present value of the series,
  attributed to the later sample's bucket; a decrease is a reset that counts the new value only
  if the field has ``max_rate_per_s`` and the value is within rate × max(elapsed, 1 s); with a
  rate, a rise beyond it is a spike and counts nothing);
* state: first, last, min, max, changes (a sample differing from its predecessor);
* flag: any, true_count, count;
* sample_count = samples in the bucket with at least one field present (a row with every
  field empty is not a sample), covered_s = distinct seconds holding ≥ 1 such sample.

A statistic with no value in the bucket is ``None`` (missing is not zero); counts are 0.

(The ``Harness`` at the end is not part of the reference: it runs the real reducer and a real
DuckDB store so that tests can compare what they produce with the reference.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sunarchive.model import Event, FieldKind, SeriesKey
from sunarchive.profiles.spec import FieldSpec, Profile
from sunarchive.reducer import Reducer, ReduceResult
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres.store import PostgresStore

NS = 1_000_000_000
FIXED_TIERS = {"1s": 1, "5min": 300, "1hour": 3600}
TIERS = ("1s", "5min", "1hour", "daily")
EngineStore = DuckDBStore | PostgresStore
"""A store of a real engine (the rollup logic they share is ``EngineStore``; they can close)."""

Row = dict[str, Any]
Key = tuple[int, int]  # (series id, bucket start in UTC epoch seconds)


@dataclass(frozen=True)
class RawSample:
    """One raw sample: series id, UTC epoch nanoseconds, field values (None = absent)."""

    series: int
    time_ns: int
    values: Mapping[str, float | None]

    def get(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)


# -- buckets -----------------------------------------------------------------------------------
def local_midnight(day: date, tz: ZoneInfo) -> int:
    """UTC epoch seconds of the local midnight starting ``day`` in ``tz``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def bucket_start(tier: str, second: int, tz: ZoneInfo) -> int:
    """Start (UTC epoch s) of the bucket of ``tier`` holding the whole second ``second``."""
    if tier == "daily":
        return local_midnight(datetime.fromtimestamp(second, tz).date(), tz)
    period = FIXED_TIERS[tier]
    return second - second % period


def bucket_end(tier: str, start: int, tz: ZoneInfo) -> int:
    """End (exclusive, UTC epoch s) of the bucket starting at ``start``."""
    if tier == "daily":
        day = datetime.fromtimestamp(start, tz).date() + timedelta(days=1)
        return local_midnight(day, tz)
    return start + FIXED_TIERS[tier]


def local_date(start: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(start, tz).date()


# -- per-field accumulation --------------------------------------------------------------------
def _gauge(values: list[float], f: str) -> Row:
    n = len(values)
    if n == 0:
        return {f"{f}_avg": None, f"{f}_min": None, f"{f}_max": None, f"{f}_stddev": None,
                f"{f}_count": 0}
    total = 0.0
    for v in values:
        total += v
    mean = total / n
    m2 = 0.0
    for v in values:
        m2 += (v - mean) * (v - mean)
    lo = values[0]
    hi = values[0]
    for v in values:
        lo = min(lo, v)
        hi = max(hi, v)
    return {f"{f}_avg": mean, f"{f}_min": lo, f"{f}_max": hi,
            f"{f}_stddev": math.sqrt(m2 / n), f"{f}_count": n}


def counter_increase(value: float, prev: float | None, dt_s: float,
                     max_rate_per_s: float | None) -> float:
    """Increase contributed by one counter sample (the documented reset rule)."""
    if prev is None:
        return 0.0
    delta = value - prev
    if max_rate_per_s is None:
        return delta if delta >= 0 else 0.0
    allowed = max_rate_per_s * max(dt_s, 1.0)
    if delta < 0:
        return value if value <= allowed else 0.0
    return delta if delta <= allowed else 0.0


@dataclass
class _Point:
    """A sample's value plus what the sequential rules derived for it."""

    time_ns: int
    value: float
    derived: float  # counter: increase; state: 1.0 if it changed, else 0.0


def _sequential(samples: list[RawSample], spec: FieldSpec) -> list[_Point]:
    """Present values of one series in time order with per-sample increase / change."""
    out: list[_Point] = []
    prev: float | None = None
    prev_t = 0
    for s in samples:
        v = s.get(spec.name)
        if v is None:
            continue
        if spec.kind is FieldKind.COUNTER:
            derived = counter_increase(v, prev, (s.time_ns - prev_t) / NS, spec.max_rate_per_s)
        else:
            derived = 1.0 if prev is not None and v != prev else 0.0
        out.append(_Point(s.time_ns, v, derived))
        prev, prev_t = v, s.time_ns
    return out


def holds(samples: list[RawSample], f: str, max_gap_s: float
          ) -> tuple[list[tuple[int, int, float]], list[tuple[int, int]]]:
    """Zero-order holds (start ns, end ns, W) of one series' power field, and the gaps."""
    max_gap_ns = round(max_gap_s * NS)
    present = [(s.time_ns, s.get(f)) for s in samples if s.get(f) is not None]
    out: list[tuple[int, int, float]] = []
    gaps: list[tuple[int, int]] = []
    for i in range(len(present) - 1):
        start, power = present[i]
        end = present[i + 1][0]
        assert power is not None
        if end - start > max_gap_ns:
            gaps.append((start, end))
        elif end > start:
            out.append((start, end, power))
    return out, gaps


def one_second_pieces(start: int, end: int, power: float) -> list[tuple[int, float]]:
    """The 1 s tier's rule for one hold [start ns, end ns) of ``power`` W: (second, Wh)
    pieces — the parts inside the first second and inside the second of the end there, the
    rest cut at 5-minute boundaries and each piece at its first second."""
    first = start // NS
    cuts = [start, min(end, (first + 1) * NS)]
    boundary = (first + 1) - (first + 1) % 300 + 300
    while boundary * NS < end:
        cuts.append(boundary * NS)
        boundary += 300
    cuts.append(max(cuts[1], (end // NS) * NS))
    cuts.append(end)
    cuts.sort()
    out: list[tuple[int, float]] = []
    for lo, hi in itertools.pairwise(cuts):
        if hi > lo:
            out.append((lo // NS, power * ((hi - lo) / NS) / 3600.0))
    return out


def _floor_s(time_ns: int) -> int:
    return time_ns // NS


# -- the reference -----------------------------------------------------------------------------
def reference_rows(profile: Profile, samples: Iterable[RawSample], tier: str,
                   tz: str | ZoneInfo = "UTC") -> dict[Key, Row]:
    """Expected rows of ``tier`` keyed by (series id, bucket start UTC epoch s).

    Every row has every statistics column of the profile (``None`` where missing); daily rows
    also have ``day`` (the local date).
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    by_series: dict[int, list[RawSample]] = {}
    for s in samples:
        by_series.setdefault(s.series, []).append(s)
    rows: dict[Key, Row] = {}
    for sid in sorted(by_series):
        series = sorted(by_series[sid], key=lambda s: s.time_ns)
        rows.update(_series_rows(profile, sid, series, tier, zone))
    return rows


def _series_rows(profile: Profile, sid: int, samples: list[RawSample], tier: str,
                 tz: ZoneInfo) -> dict[Key, Row]:
    def bucket(time_ns: int) -> int:
        return bucket_start(tier, _floor_s(time_ns), tz)

    members: dict[int, list[RawSample]] = {}
    for s in samples:
        if any(v is not None for v in s.values.values()):  # an empty row is not a sample
            members.setdefault(bucket(s.time_ns), []).append(s)

    # Energy of every power field, split over the buckets each hold overlaps.
    energy: dict[str, dict[int, float]] = {}
    for spec in profile.fields_of(FieldKind.POWER):
        per_bucket: dict[int, float] = {}
        for start, end, power in holds(samples, spec.name, profile.max_gap_s)[0]:
            if tier == "1s":
                for second, wh in one_second_pieces(start, end, power):
                    per_bucket[second] = per_bucket.get(second, 0.0) + wh
                continue
            b = bucket(start)
            while b * NS < end:
                b_end = bucket_end(tier, b, tz)
                overlap = min(end, b_end * NS) - max(start, b * NS)
                if overlap > 0:
                    per_bucket[b] = per_bucket.get(b, 0.0) + power * (overlap / NS) / 3600.0
                b = b_end
        energy[spec.name] = per_bucket

    points: dict[str, dict[int, list[_Point]]] = {}
    for spec in profile.fields_of(FieldKind.COUNTER, FieldKind.STATE):
        grouped: dict[int, list[_Point]] = {}
        for point in _sequential(samples, spec):
            grouped.setdefault(bucket(point.time_ns), []).append(point)
        points[spec.name] = grouped

    starts = set(members)
    for per_bucket in energy.values():
        starts |= set(per_bucket)
    out: dict[Key, Row] = {}
    for b in sorted(starts):
        inside = members.get(b, [])
        row: Row = {"sample_count": len(inside),
                    "covered_s": len({_floor_s(s.time_ns) for s in inside})}
        if tier == "daily":
            row["day"] = local_date(b, tz)
        for spec in profile.fields:
            row.update(_field_row(spec, b, inside, energy.get(spec.name, {}),
                                  points.get(spec.name, {}).get(b, [])))
        out[(sid, b)] = row
    return out


def _field_row(spec: FieldSpec, b: int, inside: list[RawSample], energy: dict[int, float],
               mine: list[_Point]) -> Row:
    """Columns of one field in bucket ``b``: ``inside`` are the bucket's samples, ``mine``
    the field's sequential points (value + increase / change) in the bucket, time order."""
    f = spec.name
    values = [v for v in (s.get(f) for s in inside) if v is not None]
    if spec.kind in (FieldKind.GAUGE, FieldKind.POWER):
        row = _gauge(values, f)
        if spec.kind is FieldKind.POWER:
            has_energy = b in energy or len(values) > 0
            row[spec.energy_column_name] = energy.get(b, 0.0) if has_energy else None
        return row
    if spec.kind is FieldKind.FLAG:
        true_count = 0
        for v in values:
            if v != 0:
                true_count += 1
        return {f"{f}_any": (true_count > 0) if values else None,
                f"{f}_true_count": true_count, f"{f}_count": len(values)}
    first = mine[0].value if mine else None
    last = mine[-1].value if mine else None
    total = 0.0
    for p in mine:
        total += p.derived
    if spec.kind is FieldKind.COUNTER:
        return {f"{f}_first": first, f"{f}_last": last,
                f"{f}_increase": total if mine else None, f"{f}_count": len(mine)}
    lo = min((p.value for p in mine), default=None)
    hi = max((p.value for p in mine), default=None)
    return {f"{f}_first": first, f"{f}_last": last, f"{f}_min": lo, f"{f}_max": hi,
            f"{f}_changes": int(total) if mine else None, f"{f}_count": len(mine)}


def gap_holds(profile: Profile, samples: Iterable[RawSample], field: str
              ) -> dict[int, list[tuple[int, int]]]:
    """Per series, the holds (start ns, end ns) of ``field`` longer than ``max_gap_s``."""
    by_series: dict[int, list[RawSample]] = {}
    for s in samples:
        by_series.setdefault(s.series, []).append(s)
    out: dict[int, list[tuple[int, int]]] = {}
    for sid, series in by_series.items():
        series.sort(key=lambda s: s.time_ns)
        found = holds(series, field, profile.max_gap_s)[1]
        if found:
            out[sid] = found
    return out


# -- comparing ---------------------------------------------------------------------------------
def utc_seconds(value: datetime) -> int:
    """UTC epoch seconds of a stored (naive UTC or aware) timestamp."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


LONGEST_BUCKET_S = {"1s": 1, "5min": 300, "1hour": 3600, "daily": 25 * 3600}


def exact_variant(profile: Profile) -> Profile:
    """``profile`` without declared sensor resolution (``decimals``): nothing is rounded."""
    fields = tuple(replace(f, decimals=None) if getattr(f, "decimals", None) is not None else f
                   for f in profile.fields)
    return replace(profile, fields=fields)


def resolution_tolerances(profile: Profile, tier: str) -> dict[str, float]:
    """Absolute tolerance per column that the declared resolution allows at ``tier``.

    1 s rows are stored rounded to ``decimals`` (energy to µWh): a mean/min/max is off by at
    most half a unit, a merged stddev by at most √5 half units, and a bucket's energy by half
    a unit per 1 s row it merges.
    """
    out: dict[str, float] = {}
    for spec in profile.fields:
        rounded: dict[str, int] = getattr(spec, "rounded_columns", dict)()
        for col, decimals in rounded.items():
            half = 0.5 * 10.0 ** -decimals
            if spec.kind is FieldKind.POWER and col == spec.energy_column_name:
                out[col] = half * LONGEST_BUCKET_S[tier] + 1e-9
            elif col.endswith("_stddev"):
                out[col] = 3 * half + 1e-9
            else:
                out[col] = half + 1e-9
    return out


def differences(expected: Mapping[Key, Row], actual: Mapping[Key, Row],
                rel: float = 1e-9, abs_tol: float = 1e-9, limit: int = 20,
                col_abs: Mapping[str, float] | None = None) -> list[str]:
    """Human-readable differences between two row sets (empty when they agree).

    ``col_abs`` gives a column its own absolute tolerance (see :func:`resolution_tolerances`).
    """
    problems: list[str] = []
    for key in sorted(set(expected) - set(actual)):
        problems.append(f"missing row {key}: expected {expected[key]}")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected row {key}: {actual[key]}")
    for key in sorted(set(expected) & set(actual)):
        want, got = expected[key], actual[key]
        for col, w in want.items():
            g = got.get(col)
            tol = abs_tol if col_abs is None else col_abs.get(col, abs_tol)
            if not same_value(w, g, rel, tol):
                problems.append(f"row {key} column {col}: expected {w!r}, got {g!r}")
    return problems[:limit]


def same_value(want: Any, got: Any, rel: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    if isinstance(got, float) and math.isnan(got):
        got = None
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(want) == bool(got)
    if isinstance(want, date | datetime):
        return bool(want == got)
    return math.isclose(float(want), float(got), rel_tol=rel, abs_tol=abs_tol)


# -- harness shared by the tests: reducer → real DuckDB stores → rows as the reference has them --
class Harness:
    """Feeds samples through a real :class:`Reducer` into one real DuckDB store per zone.

    After every close the result is written and rolled up, as the agent does
    (``store.write`` then ``store.rollup(name, reducer.closed_until_s)``).
    """

    def __init__(self, profile: Profile, folder: Path, zones: Iterable[str] = ("UTC",),
                 series: Iterable[int] = (0,), lateness_s: float = 2.0,
                 open_store: Callable[[Profile, str], EngineStore] | None = None) -> None:
        self.profile = profile
        self.reducer = Reducer(profile, lateness_s=lateness_s)
        self.tags = {sid: tuple(f"{tag}{sid}" for tag in profile.tags) for sid in series}
        self.ids = {tags: sid for sid, tags in self.tags.items()}
        self.stores: dict[str, EngineStore] = {}
        self.results: list[ReduceResult] = []
        for zone in zones:
            if open_store is None:
                path = folder / f"{zone.replace('/', '_')}.duckdb"
                store: EngineStore = DuckDBStore(path, {profile.name: profile}, timezone=zone)
            else:
                store = open_store(profile, zone)
            store.setup()
            for sid, tags in self.tags.items():
                store.add_series(SeriesKey(profile.name, tags), sid)
            self.stores[zone] = store

    def add(self, samples: Iterable[RawSample], arrived_ns: int | None = None) -> None:
        """Feed samples; ``arrived_ns`` is the clock reading when they arrived (live input)."""
        batch = list(samples)
        if not batch:
            return
        names = [f.name for f in self.profile.fields]
        series = np.array([s.series for s in batch], np.int32)
        time_ns = np.array([s.time_ns for s in batch], np.int64)
        values = {n: np.array([np.nan if s.get(n) is None else s.get(n) for s in batch],
                              np.float64) for n in names}
        self.reducer.add(series, time_ns, values, arrived_ns=arrived_ns)

    def close(self, final: bool = False, now_ns: int | None = None) -> ReduceResult:
        result = self.reducer.flush() if final else self.reducer.close(now_ns)
        self.results.append(result)
        for store in self.stores.values():
            store.write(result.fresh, result.merge, self.tags)
            store.write_events(result.events)
            store.rollup(self.profile.name, self.reducer.closed_until_s)
        return result

    @property
    def events(self) -> list[Event]:
        return [e for r in self.results for e in r.events]

    @property
    def too_late_samples(self) -> int:
        return sum(r.too_late_samples for r in self.results)

    def rows(self, tier: str, zone: str = "UTC") -> dict[Key, Row]:
        """Rows of ``tier`` as stored (1 s) or served (rollups: materialized + real-time)."""
        store = self.stores[zone]
        names = [c.name for c in self.profile.stats_columns()]
        if tier == "1s":
            table = store.sql(f'SELECT * FROM "{self.profile.table("1s")}"').table
            data = table.to_pylist()
            keyed = {(int(r["series_id"]), utc_seconds(r["time"])): r for r in data}
        else:
            epoch = store.dialect.epoch
            first = store.sql(f'SELECT {epoch("MIN(time)")} AS lo, {epoch("MAX(time)")} '
                              f'AS hi FROM "{self.profile.table("1s")}"').table.to_pylist()[0]
            if first["lo"] is None:
                return {}
            lo, hi = int(first["lo"]) - 3 * 86400, int(first["hi"]) + 3 * 86400
            data = store.query_tier(self.profile.name, tier, lo, hi, {}, None).to_pylist()
            keyed = {(self.ids[tuple(r[t] for t in self.profile.tags)],
                      utc_seconds(r["time"])): r for r in data}
        assert len(keyed) == len(data), f"{tier}: more than one row for a (series, bucket)"
        out: dict[Key, Row] = {}
        for key, r in keyed.items():
            row = {n: r[n] for n in names}
            if tier == "daily":
                row["day"] = r["day"]
            out[key] = row
        return out

    def close_stores(self) -> None:
        for store in self.stores.values():
            store.close()
