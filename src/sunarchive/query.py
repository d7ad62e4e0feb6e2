"""The read side: pick a tier for a range, validate names, return aware UTC times."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sunarchive.model import FieldKind, InputError, require_aware
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ALL_TIERS, NOMINAL_SECONDS
from sunarchive.storage.base import QueryResult, Store

DEFAULT_MAX_POINTS = 1000
DEFAULT_SPAN = timedelta(hours=24)


def choose_tier(start: datetime, end: datetime, max_points: int) -> str:
    """Coarsest tier that still gives at least ``max_points`` buckets over [start, end)."""
    span_s = (end - start).total_seconds()
    for tier in reversed(ALL_TIERS):
        if span_s / NOMINAL_SECONDS[tier] >= max_points:
            return tier
    return "1s"


def parse_time(text: str, what: str) -> datetime:
    """ISO 8601 with an offset (``Z`` allowed); ``now`` and ``-24h``/``-7d``/``-30m`` too."""
    text = text.strip()
    if text == "now":
        return datetime.now(UTC)
    if text.startswith("-") and text[-1:] in ("s", "m", "h", "d") and text[1:-1].isdigit():
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[text[-1]]
        return datetime.now(UTC) - timedelta(**{unit: int(text[1:-1])})
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what}: {text!r} is not an ISO 8601 time "
                         "(e.g. 2026-06-21T12:00:00+02:00)") from None
    return require_aware(value, what)


def resolve_fields(profile: Profile, fields: list[str] | None) -> list[str] | None:
    """Statistics columns for the requested field names (or column names)."""
    if not fields:
        return None
    columns = {c.name for c in profile.stats_columns()}
    out: list[str] = ["sample_count"]
    for name in fields:
        if name in columns:
            out.append(name)
            continue
        try:
            spec = profile.field(name)
        except KeyError:
            raise InputError(f"field {name!r} is not in measurement {profile.name!r}; "
                             f"fields: {', '.join(f.name for f in profile.fields)}") from None
        out.extend(c.name for c in spec.columns())
    return list(dict.fromkeys(out))


def run_query(store: Store, measurement: str, tier: str = "auto",
              start: datetime | None = None, end: datetime | None = None,
              tags: dict[str, str] | None = None, fields: list[str] | None = None,
              max_points: int = DEFAULT_MAX_POINTS) -> QueryResult:
    """Rows of ``measurement`` in [start, end) from the chosen tier, times as aware UTC."""
    profile = store.profiles.get(measurement)
    if profile is None:
        raise InputError(f"unknown measurement {measurement!r}; known: "
                         f"{', '.join(sorted(store.profiles))}")
    end = require_aware(end, "end") if end else datetime.now(UTC)
    start = require_aware(start, "start") if start else end - DEFAULT_SPAN
    if end <= start:
        raise InputError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    for key in tags or {}:
        if key not in profile.tags:
            raise InputError(f"tag {key!r} is not in measurement {measurement!r}; "
                             f"tags: {', '.join(profile.tags) or '(none)'}")
    chosen = choose_tier(start, end, max_points) if tier == "auto" else tier
    if chosen not in ALL_TIERS:
        raise InputError(f"tier {tier!r} is not one of auto, {', '.join(ALL_TIERS)}")
    start_s = int(start.timestamp() // 1)
    end_s = int(-(-end.timestamp() // 1))
    table = store.query_tier(measurement, chosen, start_s, end_s, tags or {},
                             resolve_fields(profile, fields))
    return QueryResult(aware_times(table), tier=chosen)


def aware_times(table: pa.Table) -> pa.Table:
    """Every timestamp column without a zone marked UTC (stores keep UTC instants)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            aware = pc.assume_timezone(table.column(index), timezone="UTC")
            table = table.set_column(index, pa.field(field.name, aware.type), aware)
    return table


def energy_columns(profile: Profile) -> list[str]:
    """The energy (Wh) columns of a profile's power fields."""
    return [f.energy_column_name for f in profile.fields_of(FieldKind.POWER)]


def energy_by_period(store: Store, measurement: str, start: datetime, end: datetime,
                     period: str = "day") -> list[dict[str, Any]]:
    """kWh per series and in total for each local day or month (the store's site zone)
    from the daily tier: ``[{"period": "2026-06-21", "series": {name: kWh}, "total_kwh"}]``."""
    if period not in ("day", "month"):
        raise InputError(f"period {period!r} is not one of day, month")
    profile = store.profiles.get(measurement)
    if profile is None:
        raise InputError(f"unknown measurement {measurement!r}; known: "
                         f"{', '.join(sorted(store.profiles))}")
    columns = energy_columns(profile)
    if not columns:
        raise InputError(f"measurement {measurement!r} has no power field, so no energy")
    data = store.query_tier(measurement, "daily", int(start.timestamp()),
                            int(end.timestamp()) + 1, {}, columns).to_pylist()
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in data:
        label = str(row["day"])[: 7 if period == "month" else 10]
        series_name = "/".join(str(row[t]) for t in profile.tag_column_names) or measurement
        totals[label][series_name] += sum((row[c] or 0.0) for c in columns) / 1000.0
    return [{"period": label, "series": dict(values), "total_kwh": sum(values.values())}
            for label, values in sorted(totals.items())]
