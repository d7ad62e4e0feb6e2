"""The read side: pick a tier for a range, validate names, return aware UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from sunarchive.model import InputError, require_aware
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
    return QueryResult(_aware_times(table), tier=chosen)


def _aware_times(table: pa.Table) -> pa.Table:
    if "time" not in table.column_names:
        return table
    index = table.column_names.index("time")
    aware = pc.assume_timezone(table.column("time"), timezone="UTC")
    return table.set_column(index, pa.field("time", aware.type), aware)
