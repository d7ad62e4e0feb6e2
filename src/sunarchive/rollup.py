"""Rollup tiers, merge rules per field kind as SQL, and local-day bucketing.

Every tier row carries mergeable state (count, mean, min, max, population stddev, energy,
first/last, increase, changes, any/true count), so merging rows of a lower tier gives exactly
what computing from the raw samples gives:

* mean  = Σ(avg·n) / Σn
* stddev = sqrt((Σ n·stddev² + Σ n·(avg − mean)²) / Σn)   (parallel-variance merge, two pass)
* min/max/sum/any as their names say; first/last by time among rows where the value is present.

The SQL is generated once here and used by every engine through a small :class:`Dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sunarchive.model import FieldKind
from sunarchive.profiles.spec import ColumnSpec, Profile

TIER_SECONDS = {"1s": 1, "5min": 300, "1hour": 3600}
ROLLUP_TIERS = ("5min", "1hour", "daily")
ALL_TIERS = ("1s", "5min", "1hour", "daily")
TIER_SOURCE = {"5min": "1s", "1hour": "5min", "daily": "5min"}
NOMINAL_SECONDS = {"1s": 1, "5min": 300, "1hour": 3600, "daily": 86400}
DAY_TABLE = "_sunarchive_days"


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between engines."""

    name: str

    def quote(self, ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    def first(self, col: str) -> str:
        c = self.quote(col)
        if self.name == "duckdb":
            return f"arg_min({c}, CASE WHEN {c} IS NOT NULL THEN time END)"
        return f"(array_agg({c} ORDER BY time) FILTER (WHERE {c} IS NOT NULL))[1]"

    def last(self, col: str) -> str:
        c = self.quote(col)
        if self.name == "duckdb":
            return f"arg_max({c}, CASE WHEN {c} IS NOT NULL THEN time END)"
        return f"(array_agg({c} ORDER BY time DESC) FILTER (WHERE {c} IS NOT NULL))[1]"

    def bucket(self, seconds: int, col: str = "time") -> str:
        if self.name == "duckdb":
            return f"time_bucket(INTERVAL '{seconds} seconds', {col})"
        return (f"date_bin(INTERVAL '{seconds} seconds', {col}, "
                f"TIMESTAMPTZ '2000-01-03 00:00:00+00')")

    def timestamp(self, seconds: int) -> str:
        """SQL literal of a UTC instant (epoch seconds) in the engine's time column type."""
        text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
        if self.name == "duckdb":
            return f"TIMESTAMP '{text}'"
        return f"TIMESTAMPTZ '{text}+00'"

    def from_epoch(self, expr: str) -> str:
        """SQL for the instant, in the engine's time column type, of the epoch seconds
        ``expr`` (NULL stays NULL)."""
        if self.name == "duckdb":
            return f"make_timestamp(({expr}) * 1000000)"
        return f"to_timestamp({expr})"

    def earliest(self) -> str:
        """SQL literal of a time before every stored one."""
        return "TIMESTAMP '-infinity'" if self.name == "duckdb" else "TIMESTAMPTZ '-infinity'"

    def instant(self, expr: str) -> str:
        """A time column as ``TIMESTAMPTZ`` whatever the session's zone (DuckDB stores UTC
        ``TIMESTAMP``; ``epoch_us`` reads it as UTC)."""
        if self.name == "duckdb":
            return f"make_timestamptz(epoch_us({expr}))"
        return expr

    def local_day(self, expr: str, zone: str) -> str:
        """SQL for the local calendar date in the IANA ``zone`` of the time ``expr``."""
        z = _literal(zone)
        if self.name == "duckdb":
            return f"CAST(timezone({z}, {self.instant(expr)}) AS DATE)"
        return f"CAST(({expr}) AT TIME ZONE {z} AS DATE)"

    def local_day_start(self, expr: str, zone: str) -> str:
        """SQL for the instant (time column type) of the local midnight in ``zone`` that
        starts the day of the time ``expr``; DST days have 23 or 25 hours."""
        midnight = f"CAST({self.local_day(expr, zone)} AS TIMESTAMP)"
        if self.name == "duckdb":
            return f"make_timestamp(epoch_us(timezone({_literal(zone)}, {midnight})))"
        return f"({midnight} AT TIME ZONE {_literal(zone)})"

    def epoch(self, expr: str) -> str:
        """SQL for the epoch seconds (BIGINT) of a time expression."""
        if self.name == "duckdb":
            return f"epoch({expr})::BIGINT"
        return f"EXTRACT(EPOCH FROM {expr})::BIGINT"

    def sql_type(self, name: str) -> str:
        """Engine spelling of a profile column type (DOUBLE, INTEGER, BIGINT, BOOLEAN)."""
        if self.name == "postgres":
            return {"DOUBLE": "DOUBLE PRECISION", "VARCHAR": "TEXT",
                    "TIMESTAMP": "TIMESTAMPTZ"}.get(name, name)
        return name


def _literal(text: str) -> str:
    """SQL string literal of ``text``."""
    return "'" + text.replace("'", "''") + "'"


DUCKDB = Dialect("duckdb")
POSTGRES = Dialect("postgres")


def _merge_expr(col: ColumnSpec, d: Dialect, same_bucket: bool) -> str:
    q = d.quote(col.name)
    if col.name == "covered_s" and same_bucket:
        return f"MAX({q})"
    if col.merge == "sum":
        return f"CAST(SUM({q}) AS {d.sql_type(col.sql_type)})"
    if col.merge in ("min", "max"):
        return f"{col.merge.upper()}({q})"
    if col.merge == "any":
        return f"bool_or({q})"
    if col.merge == "first":
        return d.first(col.name)
    if col.merge == "last":
        return d.last(col.name)
    assert col.count_column is not None
    n = d.quote(col.count_column)
    if col.merge == "mean":
        return f"SUM({q} * {n}) / NULLIF(SUM({n}), 0)"
    assert col.merge == "stddev" and col.mean_column is not None
    avg = d.quote(col.mean_column)
    gm = d.quote(f"_gm_{col.mean_column}")
    return (f"SQRT(GREATEST(SUM({n} * {q} * {q}) + SUM({n} * ({avg} - {gm}) * ({avg} - {gm})),"
            f" 0) / NULLIF(SUM({n}), 0))")


REPLAY_NEW = "_new"
"""Column of a replay merge's source: 1 for an incoming row, 0 for the stored row."""


def _replay_energy_expr(energy: str, avg: str, count: str, d: Dialect) -> str:
    """Energy (Wh) of a stored second after rows of an earlier-stored range are delivered
    again (see :func:`merge_select`): the stored energy scaled by merged average power /
    stored average power (kept when that is 0 or missing); the incoming energy only when
    the second had none."""
    e, p, n, new = d.quote(energy), d.quote(avg), d.quote(count), d.quote(REPLAY_NEW)

    def stored(expr: str) -> str:
        return f"SUM(CASE WHEN {new} = 0 THEN {expr} END)"

    stored_p = f"{stored(f'{p} * {n}')} / NULLIF({stored(n)}, 0)"
    merged_p = f"SUM({p} * {n}) / NULLIF(SUM({n}), 0)"
    return (f"COALESCE({stored(e)} * COALESCE(({merged_p}) / NULLIF({stored_p}, 0), 1), "
            f"SUM({e}))")


def _stats_exprs(profile: Profile, d: Dialect, same_bucket: bool, replay: bool) -> str:
    energy = {f.energy_column_name: f for f in profile.fields if f.kind is FieldKind.POWER}
    out = []
    for c in profile.stats_columns():
        spec = energy.get(c.name) if replay else None
        expr = (_merge_expr(c, d, same_bucket) if spec is None else
                _replay_energy_expr(c.name, f"{spec.stem}_avg", f"{spec.stem}_count", d))
        out.append(f"{expr} AS {d.quote(c.name)}")
    return ", ".join(out)


def merge_select(profile: Profile, source: str, bucket: str, d: Dialect,
                 same_bucket: bool = False, extra_select: str = "",
                 join: str = "", extra_inner: str = "",
                 group_by: tuple[str, ...] | None = None, replay: bool = False) -> str:
    """SELECT merging rows of ``source`` into buckets given by the SQL expression ``bucket``.

    ``source`` is a table name or a parenthesised subquery with the tier columns. The result
    has the tier's columns (``time`` = bucket start). ``same_bucket`` merges rows of the same
    second (late samples): ``covered_s`` is then the maximum rather than the sum. With
    ``group_by`` (tag names), rows of all series sharing those tags merge into one row per
    bucket (e.g. every device of a site), and the result has no ``series_id``. ``replay``
    (with ``same_bucket``; the source has the column :data:`REPLAY_NEW`) merges rows
    delivered again for seconds an earlier run stored: their energy is not added (see
    :func:`_replay_energy_expr`).
    """
    cols = profile.stats_columns()
    means = [c for c in cols if c.merge == "mean"]
    keys = ["series_id"] if group_by is None else [d.quote(profile.tag_column(t))
                                                   for t in group_by]
    window = f"PARTITION BY {', '.join('src.' + k for k in keys)}, {bucket}"
    gm = ", ".join(
        f"SUM({d.quote(c.name)} * {d.quote(c.count_column or '')}) OVER w / "
        f"NULLIF(SUM({d.quote(c.count_column or '')}) OVER w, 0) AS {d.quote('_gm_' + c.name)}"
        for c in means)
    head = f"SELECT src.*, {bucket} AS _bucket{extra_inner}"
    inner = (f"{head}, {gm} FROM {source} AS src {join} WINDOW w AS ({window})" if gm
             else f"{head} FROM {source} AS src {join}")
    if group_by is None:
        heads = "series_id" + "".join(f", MIN({d.quote(t)}) AS {d.quote(t)}"
                                      for t in profile.tag_column_names)
    else:
        heads = ", ".join(keys)
    stats = _stats_exprs(profile, d, same_bucket, replay)
    return (f"SELECT _bucket AS time, {heads}{extra_select}, {stats} "
            f"FROM ({inner}) AS g GROUP BY {', '.join(keys)}, _bucket")


def named_rollup_select(profile: Profile, tier: str, group_by: tuple[str, ...] | None,
                        d: Dialect) -> str:
    """A profile's named rollup: the tier itself, or its rows merged across the series that
    share the ``group_by`` tags."""
    table = d.quote(profile.table(tier))
    if group_by is None:
        return f"SELECT * FROM {table}"
    day = ", MIN(day) AS day" if tier == "daily" else ""
    return merge_select(profile, table, "src.time", d, extra_select=day, group_by=group_by)


def _single_pass_expr(col: ColumnSpec, d: Dialect) -> str:
    """Merge expression without window functions (continuous aggregates allow none).

    The pooled stddev uses E[x²] − mean², with E[x²] rebuilt per row from n·(σ² + avg²).
    """
    if col.merge != "stddev":
        return _merge_expr(col, d, same_bucket=False)
    assert col.count_column is not None and col.mean_column is not None
    n, q, avg = d.quote(col.count_column), d.quote(col.name), d.quote(col.mean_column)
    total = f"NULLIF(SUM({n}), 0)"
    # GREATEST skips NULLs, so the guard against tiny negative rounding must not swallow
    # the NULL of a field without samples in the bucket: missing is not zero
    return (f"CASE WHEN SUM({n}) > 0 THEN SQRT(GREATEST(SUM({n} * ({q} * {q} + {avg} * {avg}))"
            f" / {total} - POWER(SUM({avg} * {n}) / {total}, 2), 0)) END")


def single_pass_select(profile: Profile, source: str, bucket: str, d: Dialect,
                       day: str = "") -> str:
    """Like :func:`merge_select`, in one GROUP BY over ``source`` (for continuous aggregates).

    ``day``, when given, is an aggregate expression for the daily tier's ``day`` column.
    """
    tags = "".join(f", MIN({d.quote(t)}) AS {d.quote(t)}" for t in profile.tag_column_names)
    day_col = f", {day} AS day" if day else ""
    stats = ", ".join(f"{_single_pass_expr(c, d)} AS {d.quote(c.name)}"
                      for c in profile.stats_columns())
    return (f"SELECT {bucket} AS time, series_id{day_col}{tags}, {stats} FROM {source} "
            f"GROUP BY {bucket}, series_id")


def floor_to(seconds: int, instant_s: int) -> int:
    """Start of the fixed-length bucket (UTC epoch seconds) containing ``instant_s``."""
    return instant_s - instant_s % seconds


def local_day_start(instant_s: int, tz: ZoneInfo) -> int:
    """UTC epoch seconds of the local midnight that starts the day containing ``instant_s``."""
    local = datetime.fromtimestamp(instant_s, tz)
    return int(datetime(local.year, local.month, local.day, tzinfo=tz).timestamp())


def local_days(start_s: int, end_s: int, tz: ZoneInfo) -> list[tuple[date, int, int]]:
    """Local calendar days overlapping [start_s, end_s): (date, utc start s, utc end s).

    DST days have 23 or 25 hours; the bounds come from the zone database, not from a fixed
    offset.
    """
    out: list[tuple[date, int, int]] = []
    day = datetime.fromtimestamp(start_s, tz).date()
    while True:
        begin = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        if begin >= end_s:
            break
        nxt = day + timedelta(days=1)
        end = int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp())
        out.append((day, begin, end))
        day = nxt
    return out


def days_relation(start_s: int, end_s: int, tz: ZoneInfo, d: Dialect) -> str:
    """Inline SQL table ``(day, day_start, day_end)`` of the local days in [start_s, end_s)."""
    rows = ", ".join(f"(DATE '{day.isoformat()}', {d.timestamp(lo)}, {d.timestamp(hi)})"
                     for day, lo, hi in local_days(start_s, end_s, tz))
    if not rows:
        rows = f"(DATE '1970-01-01', {d.timestamp(0)}, {d.timestamp(0)})"
    return f"(VALUES {rows}) AS {DAY_TABLE}(day, day_start, day_end)"


def daily_select(profile: Profile, source: str, lo: int, hi: int, tz: ZoneInfo,
                 d: Dialect) -> str:
    """Merge rows of ``source`` into the local days overlapping [lo, hi)."""
    join = (f"JOIN {days_relation(lo, hi, tz, d)} ON src.time >= {DAY_TABLE}.day_start "
            f"AND src.time < {DAY_TABLE}.day_end")
    return merge_select(profile, source, f"{DAY_TABLE}.day_start", d, join=join,
                        extra_inner=f", {DAY_TABLE}.day AS _day",
                        extra_select=", MIN(_day) AS day")


def daily_select_zoned(profile: Profile, source: str, zone: str, d: Dialect) -> str:
    """Merge rows of ``source`` into the local days of the IANA ``zone``, the days computed
    in SQL by the engine's zone database (:func:`daily_select` takes them from Python's, for
    a known range; a view has none)."""
    days = (f"(SELECT s.*, {d.local_day('s.time', zone)} AS _day, "
            f"{d.local_day_start('s.time', zone)} AS _day_start FROM {source} AS s)")
    return merge_select(profile, days, "src._day_start", d, extra_select=", MIN(_day) AS day")


def tier_floor(tier: str, instant_s: int, tz: ZoneInfo) -> int:
    """Start of the bucket of ``tier`` containing ``instant_s``."""
    if tier == "daily":
        return local_day_start(instant_s, tz)
    return floor_to(TIER_SECONDS[tier], instant_s)


def tier_next(tier: str, bucket_s: int, tz: ZoneInfo) -> int:
    """Start of the bucket after the one starting at ``bucket_s``."""
    if tier == "daily":
        return local_day_start(bucket_s + 26 * 3600, tz)
    return bucket_s + TIER_SECONDS[tier]


def coalesce_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or touching [lo, hi) ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
