"""The plan's "validate migration" step: the source files against the store.

For the energy snapshots, per series (its tags): the number of snapshots, the first and last
one, and per local day of the site the number of snapshots and each field's sum, against the
1 s tier (``sample_count``, and ``<field>_avg × <field>_count`` summed: exact, since a
second's mean times its count is the sum of its samples). For the charging sessions: the
number, which ids are missing or hold other values, the first start and the last end, and per
local day of ``start_time`` the number of sessions and the sums of ``energy_charged_kwh`` and
``total_cost_pln``. Duplicates in the source count once (the store keeps a point or a session
once). Every comparison is one :class:`Check`; the validation passes when all do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sunarchive.model import SeriesKey
from sunarchive.profiles import Profile
from sunarchive.upstream.goodwe.files import MEASUREMENT, TAGS, Snapshot
from sunarchive.upstream.goodwe.tables import Session, sessions_by_id

SESSION_SUMS = ("energy_charged_kwh", "total_cost_pln")
NS = 10**9


@dataclass(frozen=True)
class Check:
    subject: str
    what: str
    source: Any
    store: Any
    ok: bool

    def line(self) -> str:
        return (f"{'ok' if self.ok else 'MISMATCH'}  {self.subject}  {self.what}: "
                f"source {_shown(self.source)}, store {_shown(self.store)}")


@dataclass
class Validation:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, subject: str, what: str, source: Any, store: Any,
            same: bool | None = None) -> None:
        self.checks.append(Check(subject, what, source, store,
                                 source == store if same is None else same))

    def render(self) -> str:
        lines = [c.line() for c in self.checks]
        bad = sum(not c.ok for c in self.checks)
        lines.append(f"validation: OK — source and store match ({len(self.checks)} checks)"
                     if not bad else f"validation: MISMATCH — {bad} of {len(self.checks)} "
                     "checks differ")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [
            {"subject": c.subject, "what": c.what, "source": _plain(c.source),
             "store": _plain(c.store), "ok": c.ok} for c in self.checks]}


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " … ".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return "none" if value is None else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# -- energy snapshots -------------------------------------------------------------------------
def unique_snapshots(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """One snapshot per series and nanosecond, the later one winning (a point is a point)."""
    return list({(s.tags, s.time_ns): s for s in snapshots}.values())


def _day_edges(zone: ZoneInfo, first_s: int, last_s: int) -> tuple[list[date], np.ndarray[
        Any, np.dtype[np.int64]]]:
    """The local days spanning [first_s, last_s] and their starts (UTC epoch s)."""
    day = datetime.fromtimestamp(first_s, zone).date()
    end = datetime.fromtimestamp(last_s, zone).date()
    days, starts = [], []
    while day <= end + timedelta(days=1):
        days.append(day)
        starts.append(int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()))
        day += timedelta(days=1)
    return days, np.asarray(starts, np.int64)


def validate_energy(result: Validation, store: Any, profile: Profile,
                    snapshots: Sequence[Snapshot], zone: ZoneInfo) -> None:
    by_series: dict[tuple[str, ...], list[Snapshot]] = {}
    for snap in unique_snapshots(snapshots):
        by_series.setdefault(snap.tags, []).append(snap)
    ids = store.load_series() if by_series else {}
    names = [f.name for f in profile.fields]
    for tags, snaps in sorted(by_series.items()):
        subject = f"{MEASUREMENT} " + " ".join(f"{k}={v}" for k, v in zip(TAGS, tags,
                                                                         strict=True))
        times = np.array([s.time_ns // NS for s in snaps], np.int64)
        first, last = int(times.min()), int(times.max())
        days, edges = _day_edges(zone, first, last)
        stored = _stored_seconds(store, profile, ids.get(SeriesKey(MEASUREMENT, tags)),
                                 first, last + 1, names)
        kept = stored["sample_count"] > 0
        result.add(subject, "snapshots", len(snaps), int(stored["sample_count"].sum()))
        store_range = (_utc(int(stored["time"][kept].min())),
                       _utc(int(stored["time"][kept].max()))) if kept.any() else (None, None)
        result.add(subject, "first … last second", (_utc(first), _utc(last)), store_range)
        source_day = np.searchsorted(edges, times, side="right") - 1
        store_day = np.searchsorted(edges, stored["time"], side="right") - 1
        for i in sorted(set(source_day.tolist())):
            mine = [s for s, d in zip(snaps, source_day, strict=True) if d == i]
            theirs = store_day == i
            label = f"{subject} {days[i].isoformat()}"
            result.add(label, "snapshots", len(mine), int(stored["sample_count"][theirs].sum()))
            for name in names:
                values = [s.fields[name] for s in mine if name in s.fields]
                if not values:
                    continue
                counts = stored[f"{name}_count"][theirs]
                total = float(np.nansum(stored[f"{name}_avg"][theirs] * counts))
                mine_total = float(np.sum(values))
                result.add(label, f"{name} sum (n)", (mine_total, len(values)),
                           (total, int(counts.sum())),
                           _close(mine_total, total) and len(values) == int(counts.sum()))


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _stored_seconds(store: Any, profile: Profile, series_id: int | None, start_s: int,
                    end_s: int, names: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    """The 1 s rows of one series in [start_s, end_s) as numpy columns (time in epoch s)."""
    columns = ["sample_count", *(f"{n}_{s}" for n in names for s in ("avg", "count"))]
    if series_id is None:
        return {"time": np.empty(0, np.int64), **{c: np.empty(0) for c in columns}}
    p = "?" if store.dialect.name == "duckdb" else "%s"
    table: pa.Table = store._read_arrow(
        f"SELECT time, {', '.join(columns)} FROM {store.q(profile.table('1s'))} "
        f"WHERE series_id = {p} AND time >= {p} AND time < {p}",
        [series_id, store.time_param(start_s), store.time_param(end_s)])
    out: dict[str, np.ndarray[Any, Any]] = {}
    if not table.num_rows:
        return _stored_seconds(store, profile, None, 0, 0, names)
    stamps = table.column("time")
    unit = stamps.type.unit
    raw = pc.cast(pc.cast(stamps, pa.timestamp(unit)), pa.int64()).to_numpy()
    out["time"] = raw // {"s": 1, "ms": 10**3, "us": 10**6, "ns": NS}[unit]
    for c in columns:
        out[c] = np.nan_to_num(pc.cast(table.column(c), pa.float64()).to_numpy(
            zero_copy_only=False), nan=0.0) if c.endswith(("count", "sample_count")) else \
            pc.cast(table.column(c), pa.float64()).to_numpy(zero_copy_only=False)
    return out


# -- charging sessions ------------------------------------------------------------------------
def unique_sessions(sessions: Sequence[Session]) -> dict[str, Session]:
    """The sessions by id; a repeated id keeps its first record (as the store does)."""
    out: dict[str, Session] = {}
    for s in sessions:
        out.setdefault(s.session_id, s)
    return out


def validate_sessions(result: Validation, store: Any, sessions: Sequence[Session],
                      zone: ZoneInfo) -> None:
    source = unique_sessions(sessions)
    if not source:
        return
    stored = sessions_by_id(store, list(source))
    subject = "charging_sessions"
    result.add(subject, "sessions", len(source), len(stored))
    missing = sorted(set(source) - set(stored))
    if missing:
        result.add(subject, "missing session ids", ", ".join(missing[:10]) +
                   (f" and {len(missing) - 10} more" if len(missing) > 10 else ""), "none",
                   False)
    for session_id, session in source.items():
        row = stored.get(session_id)
        if row is None:
            continue
        for name, value in session.values().items():
            if name == "created_at" and value is None:
                continue
            if row.get(name) != value:
                result.add(f"{subject} {session_id}", name, value, row.get(name), False)
    starts = [s.start_time for s in source.values() if s.start_time]
    ends = [s.end_time or s.start_time for s in source.values() if s.start_time]
    kept = list(stored.values())
    result.add(subject, "first start … last end", (min(starts), max(ends)),
               (min(r["start_time"] for r in kept), max(r["end_time"] or r["start_time"]
                                                      for r in kept)) if kept else (None, None))
    for day in sorted({s.astimezone(zone).date() for s in starts}):
        mine = [s for s in source.values() if s.start_time and
                s.start_time.astimezone(zone).date() == day]
        theirs = [r for r in kept if r["start_time"].astimezone(zone).date() == day]
        label = f"{subject} {day.isoformat()}"
        result.add(label, "sessions", len(mine), len(theirs))
        for name in SESSION_SUMS:
            result.add(label, f"{name} sum", _sum([getattr(s, name) for s in mine]),
                       _sum([r[name] for r in theirs]))


def _sum(values: list[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), Decimal(0))
