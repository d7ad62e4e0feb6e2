"""TimescaleDB layout: hypertable, hierarchical continuous aggregates, compression, retention.

Per profile:

* ``<m>_1s`` — hypertable, chunk interval from the profile, compressed after
  ``compress_after_days`` (default 7) segmented by ``series_id``;
* ``<m>_5min`` ← ``<m>_1s``, ``<m>_1hour`` ← ``<m>_5min``, ``<m>_daily`` ← ``<m>_5min`` — continuous
  aggregates of mergeable state (:func:`sunarchive.rollup.single_pass_select`), each with a
  refresh policy and real-time aggregation switched on explicitly; the daily one buckets by the
  site's local day (``time_bucket('1 day', time, '<zone>')``);
* retention — one job per profile (``sunarchive_retention``) dropping chunks older than each
  tier's retention, but never past the watermark of an aggregate that reads the tier, nor
  past the oldest refresh a write still owes (``sunarchive_refresh_owed``: a backfill below a
  watermark a policy moved): raw data that is not yet materialized is never dropped;
* refreshes never recompute a bucket whose source chunks were dropped, by that job or by hand
  (:mod:`.drops`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sunarchive.model import ConfigError
from sunarchive.profiles.spec import Profile
from sunarchive.profiles.sql_names import index_name
from sunarchive.rollup import (
    POSTGRES,
    ROLLUP_TIERS,
    TIER_SOURCE,
    coalesce_ranges,
    single_pass_select,
    tier_floor,
)
from sunarchive.rollup import tier_next as next_bucket
from sunarchive.storage.postgres import drops, view_tables
from sunarchive.storage.postgres.partitions import interval_seconds
from sunarchive.storage.postgres.schema import (
    add_missing_columns,
    column_defs,
    existing_columns,
    relation_kind,
)
from sunarchive.storage.tiered import tier_columns

Q = POSTGRES.quote
Con = psycopg.Connection[tuple[Any, ...]]
REFRESH_LOOKBACK_S = 5 * 3600
"""Writes older than this are outside the 5-minute policy's window: refreshed explicitly."""
BUCKETS = {"5min": "5 minutes", "1hour": "1 hour", "daily": "1 day"}
POLICIES = {  # tier: (start_offset, end_offset, schedule_interval)
    "5min": ("6 hours", "5 minutes", "5 minutes"),
    "1hour": ("2 days", "1 hour", "30 minutes"),
    "daily": ("7 days", "1 day", "1 hour"),
}
POLICY_REACH_S = {"5min": 6 * 3600 + 300, "1hour": 2 * 86400 + 3600, "daily": 8 * 86400}
"""How far back each refresh policy's window reaches (start offset + one bucket): the
retention job keeps the tier an aggregate reads at least this long."""
DEFAULT_COMPRESS_AFTER_DAYS = 7
RETENTION_PROC = """
CREATE OR REPLACE PROCEDURE sunarchive_retention(job_id INT, config JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    item JSONB;
    cutoff TIMESTAMPTZ;
    guard TIMESTAMPTZ;
    reader TEXT;
BEGIN
    FOR item IN SELECT * FROM jsonb_array_elements(config -> 'tiers') LOOP
        -- a profile's view kept as a hypertable (view_tables) only where it is one
        CONTINUE WHEN COALESCE((item ->> 'if_hypertable')::BOOLEAN, FALSE) AND NOT EXISTS (
            SELECT 1 FROM timescaledb_information.hypertables h
             WHERE h.hypertable_schema = current_schema()
               AND h.hypertable_name = item ->> 'relation');
        cutoff := COALESCE((config ->> 'now')::TIMESTAMPTZ, now())
                  - (item ->> 'keep_days')::DOUBLE PRECISION * INTERVAL '1 day';
        -- never below what the refresh policies of the aggregates reading the tier look at
        cutoff := LEAST(cutoff, COALESCE((config ->> 'now')::TIMESTAMPTZ, now())
                  - COALESCE((item ->> 'policy_reach_s')::DOUBLE PRECISION, 0)
                    * INTERVAL '1 second');
        FOR reader IN SELECT jsonb_array_elements_text(item -> 'read_by') LOOP
            SELECT _timescaledb_functions.to_timestamp(
                       _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id))
              INTO guard
              FROM _timescaledb_catalog.continuous_agg ca
             WHERE ca.user_view_name = reader AND ca.user_view_schema = current_schema();
            cutoff := LEAST(cutoff, COALESCE(guard, '-infinity'::TIMESTAMPTZ));
        END LOOP;
        -- nor below a refresh a write still owes (a backfill older than the policies'
        -- windows): its rows are in no aggregate yet, even where a policy has moved the
        -- watermark past them
        IF jsonb_array_length(COALESCE(item -> 'read_by', '[]'::JSONB)) > 0 THEN
            SELECT to_timestamp(MIN(o.lo_s)) INTO guard FROM sunarchive_refresh_owed o
             WHERE o.measurement = config ->> 'measurement';
            cutoff := LEAST(cutoff, COALESCE(guard, 'infinity'::TIMESTAMPTZ));
        END IF;
        IF cutoff > '-infinity'::TIMESTAMPTZ AND EXISTS (
                SELECT 1 FROM show_chunks(item ->> 'relation', older_than => cutoff)) THEN
            PERFORM drop_chunks(item ->> 'relation', older_than => cutoff);
            INSERT INTO sunarchive_retained VALUES (item ->> 'relation', cutoff)
                ON CONFLICT (relation) DO UPDATE
                SET dropped_before = GREATEST(sunarchive_retained.dropped_before, cutoff);
        END IF;
    END LOOP;
END $$
"""


def installed_version(con: Con) -> str | None:
    row = con.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                      ).fetchone()
    return None if row is None else str(row[0])


def ensure_extension(con: Con) -> tuple[str | None, str]:
    """Create the extension when the server has it; (version or None, why not)."""
    version = installed_version(con)
    if version:
        return version, ""
    row = con.execute("SELECT default_version FROM pg_available_extensions "
                      "WHERE name = 'timescaledb'").fetchone()
    if row is None:
        return None, "the timescaledb extension is not installed on the server"
    try:
        with con.transaction():
            con.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        return None, f"CREATE EXTENSION timescaledb failed: {str(exc).strip().splitlines()[0]}"
    return installed_version(con), ""


def create_layout(con: Con, profile: Profile, timezone: str,
                  retention_days: dict[str, float | None], policies: bool = True) -> list[str]:
    """Create or repair everything of one profile (idempotent)."""
    con.execute(OWED_TABLE)
    con.execute(drops.RETAINED_TABLE)
    con.execute(drops.DROPPED_TABLE)
    changes = _hypertable(con, profile)
    for tier in ROLLUP_TIERS:
        changes.extend(_aggregate(con, profile, tier, timezone, policies))
    if policies:
        changes.extend(_compression(con, profile))
        changes.extend(_retention_job(con, profile, retention_days))
    return changes


MATERIALIZATION_SQL = """
    SELECT format('%%I.%%I', h.schema_name, h.table_name),
           CASE WHEN isfinite(w) AND w > '0001-01-01Z' THEN EXTRACT(EPOCH FROM w)::BIGINT END
    FROM _timescaledb_catalog.continuous_agg ca
    JOIN _timescaledb_catalog.hypertable h ON h.id = ca.mat_hypertable_id
    CROSS JOIN LATERAL _timescaledb_functions.to_timestamp(
        _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)) AS w
    WHERE ca.user_view_schema = current_schema() AND ca.user_view_name = %s"""
"""A continuous aggregate's materialized hypertable and its watermark (UTC epoch s; NULL
while nothing is materialized, when TimescaleDB reports the earliest time it can hold):
buckets before the watermark are final in that table."""


def _hypertable(con: Con, profile: Profile) -> list[str]:
    table = profile.table("1s")
    changes: list[str] = []
    if relation_kind(con, table) is None:
        con.execute(f"CREATE TABLE {Q(table)} ({column_defs(profile, '1s')})")
        changes.append(f"created table {table}")
    else:
        changes.extend(add_missing_columns(con, profile, "1s"))
    chunk = interval_seconds(profile.chunk_interval)
    known = con.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE "
                        "hypertable_name = %s AND hypertable_schema = current_schema()",
                        [table]).fetchone()
    if known is None:
        con.execute("SELECT create_hypertable(%s::regclass, 'time', chunk_time_interval => "
                    "make_interval(secs => %s), create_default_indexes => FALSE)",
                    [Q(table), chunk])
        changes.append(f"made {table} a hypertable (chunks of {profile.chunk_interval})")
        index = index_name(table, "_series_time")
        con.execute(f"CREATE INDEX IF NOT EXISTS {Q(index)} ON {Q(table)} "
                    "(series_id, time DESC)")
    return changes


def aggregate_sql(profile: Profile, tier: str, timezone: str) -> str:
    source = Q(profile.table(TIER_SOURCE[tier]))
    if tier == "daily":
        zone = timezone.replace("'", "''")
        bucket = f"time_bucket(INTERVAL '1 day', time, '{zone}')"
        day = f"MIN((time AT TIME ZONE '{zone}')::DATE)"
        return single_pass_select(profile, source, bucket, POSTGRES, day=day)
    bucket = f"time_bucket(INTERVAL '{BUCKETS[tier]}', time)"
    return single_pass_select(profile, source, bucket, POSTGRES)


def _aggregate(con: Con, profile: Profile, tier: str, timezone: str,
               policies: bool) -> list[str]:
    view = profile.table(tier)
    changes: list[str] = []
    if relation_kind(con, view) is None:
        con.execute(f"CREATE MATERIALIZED VIEW {Q(view)} WITH (timescaledb.continuous, "
                    f"timescaledb.materialized_only = false) AS "
                    f"{aggregate_sql(profile, tier, timezone)} WITH NO DATA")
        changes.append(f"created continuous aggregate {view}")
    else:
        con.execute(f"ALTER MATERIALIZED VIEW {Q(view)} SET "
                    "(timescaledb.materialized_only = false)")
    if policies:
        start, end, every = POLICIES[tier]
        _remove_stale_refresh_policy(con, view, start, end, every)
        before = _job_count(con)
        con.execute("SELECT add_continuous_aggregate_policy(%s::regclass, "
                    "start_offset => %s::INTERVAL, end_offset => %s::INTERVAL, "
                    "schedule_interval => %s::INTERVAL, if_not_exists => TRUE)",
                    [Q(view), start, end, every])
        if _job_count(con) > before:
            changes.append(f"refresh policy on {view}: every {every}, window "
                           f"[now - {start}, now - {end}]")
    return changes


def _remove_stale_refresh_policy(con: Con, view: str, start: str, end: str,
                                 every: str) -> None:
    """A refresh policy whose window or schedule differs from ours goes (and is re-added)."""
    stale = con.execute(
        "SELECT 1 FROM timescaledb_information.jobs j WHERE j.proc_name = "
        "'policy_refresh_continuous_aggregate' AND j.hypertable_name = %s AND "
        "j.hypertable_schema = current_schema() AND "
        "((j.config ->> 'start_offset')::INTERVAL IS DISTINCT FROM %s::INTERVAL OR "
        "(j.config ->> 'end_offset')::INTERVAL IS DISTINCT FROM %s::INTERVAL OR "
        "j.schedule_interval <> %s::INTERVAL)", [view, start, end, every]).fetchone()
    if stale is not None:
        con.execute("SELECT remove_continuous_aggregate_policy(%s::regclass)", [Q(view)])


def _job_count(con: Con) -> int:
    row = con.execute("SELECT COUNT(*) FROM timescaledb_information.jobs").fetchone()
    return 0 if row is None else int(str(row[0]))


def _compression(con: Con, profile: Profile) -> list[str]:
    return compression(con, profile.table("1s"), "series_id", "time", compress_after_days(profile))


def compress_after_days(profile: Profile) -> int:
    """Days after which the profile's chunks are compressed (``extra.compress_after_days``)."""
    return int(str(profile.extra.get("compress_after_days", DEFAULT_COMPRESS_AFTER_DAYS)))


def view_hypertables(con: Con, profiles: Iterable[Profile], policies: bool = True) -> list[str]:
    """The profiles' views kept as hypertables (:mod:`.view_tables`), each in a transaction
    of its own, compressed after the same days as the 1 s tier, segmented by the first tag
    (HOMEPOT's ``device_id``; the document compresses ``health_checks`` after 7 days) when
    ``policies``. What changed."""
    changes: list[str] = []
    for profile in profiles:
        if not view_tables.kept(profile, view_tables.LAYOUT):
            continue
        with con.transaction():
            changes.extend(view_tables.ensure(con, profile))
            if policies and view_tables.is_ours(con, profile):
                changes.extend(compression(
                    con, str(profile.view), profile.tags[0] if profile.tags else None,
                    profile.view_time, compress_after_days(profile)))
    return changes


def compression(con: Con, table: str, segment_by: str | None, order_by: str,
                days: int) -> list[str]:
    """Compression of hypertable ``table`` segmented by ``segment_by`` (None: not
    segmented), ordered by ``order_by`` (column names), and its policy after ``days``
    (idempotent; what changed)."""
    enabled = con.execute("SELECT compression_enabled FROM timescaledb_information.hypertables"
                          " WHERE hypertable_name = %s AND hypertable_schema = "
                          "current_schema()", [table]).fetchone()
    changes: list[str] = []
    if enabled is None or not enabled[0]:
        segments = "" if segment_by is None else \
            f"timescaledb.compress_segmentby = '{Q(segment_by)}', "
        con.execute(f"ALTER TABLE {Q(table)} SET (timescaledb.compress, {segments}"
                    f"timescaledb.compress_orderby = '{Q(order_by)}')")
        changes.append(f"compression enabled on {table} (segment by {segment_by or 'nothing'})")
    stale = con.execute("SELECT 1 FROM timescaledb_information.jobs WHERE proc_name = "
                        "'policy_compression' AND hypertable_name = %s AND "
                        "hypertable_schema = current_schema() AND "
                        "(config ->> 'compress_after')::INTERVAL <> make_interval(days => %s)",
                        [table, days]).fetchone()
    if stale is not None:
        con.execute("SELECT remove_compression_policy(%s::regclass)", [Q(table)])
    before = _job_count(con)
    con.execute("SELECT add_compression_policy(%s::regclass, compress_after => "
                "make_interval(days => %s), if_not_exists => TRUE)", [Q(table), days])
    if _job_count(con) > before:
        changes.append(f"compression policy on {table}: after {days} days")
    return changes


def retention_config(profile: Profile, retention_days: dict[str, float | None]
                     ) -> dict[str, Any]:
    """The retention job's config: per tier relation, days kept and the aggregates reading it."""
    tiers = []
    for tier in ("1s", *ROLLUP_TIERS):
        days = retention_days.get(tier)
        if days is None:
            continue
        reading = [t for t, src in TIER_SOURCE.items() if src == tier]
        tiers.append({"relation": profile.table(tier), "keep_days": days,
                      "read_by": [profile.table(t) for t in reading],
                      "policy_reach_s": max((POLICY_REACH_S[t] for t in reading), default=0)})
        if tier == "1s" and view_tables.kept(profile, view_tables.LAYOUT):
            tiers.append(view_tables.retention_item(profile, tiers[-1]))
    return {"measurement": profile.name, "tiers": tiers}


def _retention_job(con: Con, profile: Profile,
                   retention_days: dict[str, float | None]) -> list[str]:
    con.execute(RETENTION_PROC)
    config = retention_config(profile, retention_days)
    row = con.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = "
                      "'sunarchive_retention' AND config ->> 'measurement' = %s",
                      [profile.name]).fetchone()
    if not config["tiers"]:
        if row is not None:
            con.execute("SELECT delete_job(%s)", [row[0]])
            return [f"removed retention job of {profile.name} (keep forever)"]
        return []
    kept = ", ".join(f"{t['relation']} {t['keep_days']:g} d" for t in config["tiers"])
    if row is not None:
        same = con.execute("SELECT config = %s::JSONB FROM timescaledb_information.jobs "
                           "WHERE job_id = %s", [json.dumps(config), row[0]]).fetchone()
        if same is not None and same[0]:
            return []
        con.execute("SELECT alter_job(%s, config => %s::JSONB)", [row[0], json.dumps(config)])
        return [f"retention job for {profile.name} changed: {kept}"]
    con.execute("SELECT add_job('sunarchive_retention', INTERVAL '1 hour', "
                "config => %s::JSONB)", [json.dumps(config)])
    return [f"retention job for {profile.name}: {kept}"]


def apply_retention(con: Con, profile: Profile, retention_days: dict[str, float | None],
                    now: datetime) -> None:
    """Run the retention job's procedure now (the same code the background job runs)."""
    config = retention_config(profile, retention_days)
    if config["tiers"]:
        config["now"] = now.isoformat()
        con.execute("CALL sunarchive_retention(0, %s::JSONB)", [json.dumps(config)])


OWED_TABLE = """CREATE TABLE IF NOT EXISTS sunarchive_refresh_owed (
    owed_id BIGINT GENERATED ALWAYS AS IDENTITY, measurement TEXT NOT NULL,
    lo_s BIGINT NOT NULL, hi_s BIGINT NOT NULL)"""
"""Refreshes owed after a commit (UTC epoch s, [lo_s, hi_s)): recorded in the write's
transaction, deleted once done, so a crash in between leaves them to the next start."""


def owe_refresh(con: Con, measurement: str, lo_s: int, hi_s: int) -> None:
    """Record a refresh owed over [lo_s, hi_s); call inside the write's transaction."""
    con.execute("INSERT INTO sunarchive_refresh_owed (measurement, lo_s, hi_s) "
                "VALUES (%s, %s, %s)", [measurement, lo_s, hi_s])


def settle_owed(con: Con, profile: Profile, tz: ZoneInfo) -> int:
    """Run the refreshes owed for ``profile`` and forget them; returns how many were owed."""
    owed = con.execute("SELECT owed_id, lo_s, hi_s FROM sunarchive_refresh_owed "
                       "WHERE measurement = %s", [profile.name]).fetchall()
    if not owed:
        return 0
    for lo, hi in coalesce_ranges([(int(r[1]), int(r[2])) for r in owed]):
        refresh(con, profile, lo, hi, tz)
    con.execute("DELETE FROM sunarchive_refresh_owed WHERE measurement = %s AND owed_id <= %s",
                [profile.name, max(int(r[0]) for r in owed)])
    return len(owed)


def refresh(con: Con, profile: Profile, start_s: int, end_s: int, tz: ZoneInfo,
            now_s: int | None = None) -> None:
    """Refresh the aggregates over [start_s, end_s), lowest tier first, bucket-aligned.

    Only buckets closed at ``now_s`` (UTC epoch s; default now): a bucket still open would
    be materialized half-full and the aggregate's watermark would move past it, so later
    data of that bucket would wait for a policy (up to two days for today's daily total).
    Open buckets stay with real-time aggregation and the policies. Never a bucket whose
    source was dropped (:mod:`.drops`: retention or ``drop_chunks`` by hand, looked for in
    the catalog first over the days the window touches): it would be recomputed from nothing."""
    now = int(time.time()) if now_s is None else now_s
    day_lo = tier_floor("daily", start_s, tz)
    drops.detect(con, profile, tz, day_lo, next_bucket("daily", tier_floor(
        "daily", max(end_s - 1, day_lo), tz), tz))
    for tier in ROLLUP_TIERS:
        lo = tier_floor(tier, start_s, tz)
        hi = min(next_bucket(tier, tier_floor(tier, end_s - 1, tz), tz),
                 tier_floor(tier, now, tz))
        tiers = {profile.table(t) for t in ROLLUP_TIERS}   # 1hour and daily read 5min
        above = [v for v in dependents(con, profile.table(tier)) if v not in tiers]
        for part_lo, part_hi in drops.refreshable(con, profile, tier, lo, hi, tz):
            for view in (profile.table(tier), *above):   # the tier, then aggregates on it
                con.execute("CALL refresh_continuous_aggregate(%s::regclass, %s, %s)",
                            [Q(view), _utc(part_lo), _utc(part_hi)])


def dependents(con: Con, view: str) -> list[str]:
    """Continuous aggregates of the current schema built on the continuous aggregate
    ``view``: a profile's coarser tiers on its 5-minute one, HOMEPOT's
    ``device_metrics_hourly`` on ``health_checks_1hour`` (those have ``view``'s bucket
    width, so :func:`refresh` refreshes them over the same closed buckets after it)."""
    rows = con.execute(
        "SELECT up.user_view_name FROM _timescaledb_catalog.continuous_agg up "
        "JOIN _timescaledb_catalog.continuous_agg low ON up.raw_hypertable_id = "
        "low.mat_hypertable_id WHERE low.user_view_name = %s AND low.user_view_schema = "
        "current_schema() AND up.user_view_schema = current_schema() "
        "ORDER BY up.user_view_name", [view]).fetchall()
    return [str(r[0]) for r in rows]


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def compress(con: Con, table: str, older_than_s: int) -> list[str]:
    """Compress chunks of ``table`` entirely older than ``older_than_s`` ago (idempotent)."""
    rows = con.execute("SELECT compress_chunk(c, if_not_compressed => TRUE)::TEXT FROM "
                       "show_chunks(%s::regclass, older_than => make_interval(secs => %s)) c "
                       "JOIN timescaledb_information.chunks i ON format('%%I.%%I', "
                       "i.chunk_schema, i.chunk_name)::regclass = c WHERE NOT i.is_compressed",
                       [Q(table), older_than_s]).fetchall()
    return [str(r[0]) for r in rows]


def _materialization(con: Con, view: str) -> str | None:
    row = con.execute("SELECT materialization_hypertable_name FROM "
                      "timescaledb_information.continuous_aggregates WHERE view_name = %s "
                      "AND view_schema = current_schema()", [view]).fetchone()
    return None if row is None else str(row[0])


def relation_bytes(con: Con, name: str) -> int:
    """Bytes on disk of a tier: its hypertable or its aggregate's materialization."""
    target = _materialization(con, name) or name
    schema = "_timescaledb_internal" if target != name else None
    qualified = f"{Q(schema)}.{Q(target)}" if schema else Q(target)
    row = con.execute("SELECT hypertable_size(%s::regclass)", [qualified]).fetchone()
    return 0 if row is None or row[0] is None else int(str(row[0]))


def chunks(con: Con, table: str) -> list[dict[str, Any]]:
    """Chunks of a hypertable or of an aggregate's materialization, oldest first: those of
    the store's own schema (another store in another schema of the database may have a
    hypertable of the same name)."""
    found = con.execute(drops.HYPERTABLE_SQL, {"name": table}).fetchone()
    if found is None:
        return []
    schema, target = str(found[0]), str(found[1])
    sizes = {str(r[0]): int(str(r[1])) for r in con.execute(
        "SELECT chunk_name, total_bytes FROM chunks_detailed_size(%s::regclass)",
        [f"{Q(schema)}.{Q(target)}"]).fetchall()}
    rows = con.execute("SELECT chunk_name, range_start, range_end, is_compressed FROM "
                       "timescaledb_information.chunks WHERE hypertable_schema = %s AND "
                       "hypertable_name = %s ORDER BY range_start",
                       [schema, target]).fetchall()
    return [{"chunk": str(name), "range_start": start, "range_end": end,
             "bytes": sizes.get(str(name), 0), "compressed": bool(compressed)}
            for name, start, end, compressed in rows]


def _finite(stamp: object) -> str | None:
    """A timestamp as text, None for never (NULL or -infinity)."""
    return None if stamp is None or "infinity" in str(stamp) else str(stamp)


def status(con: Con, version: str | None) -> dict[str, Any]:
    """Extension version, hypertables with chunk counts and compression, aggregates, jobs."""
    hypertables = []
    for name, chunk_count, compressed in con.execute(
            "SELECT hypertable_name, num_chunks, compression_enabled FROM "
            "timescaledb_information.hypertables WHERE hypertable_schema = current_schema() "
            "ORDER BY 1").fetchall():
        entry: dict[str, Any] = {"hypertable": name, "chunks": int(chunk_count),
                                 "compression_enabled": bool(compressed)}
        if compressed:
            stats = con.execute(
                "SELECT number_compressed_chunks, before_compression_total_bytes, "
                "after_compression_total_bytes FROM hypertable_compression_stats(%s::regclass)",
                [Q(name)]).fetchone()
            if stats is not None and stats[1]:
                before, after = int(stats[1]), int(stats[2])
                entry.update(compressed_chunks=int(stats[0] or 0), before_bytes=before,
                             after_bytes=after, ratio=round(before / after, 1) if after else None,
                             saved_percent=round(100 * (1 - after / before), 1))
        hypertables.append(entry)
    aggregates = [{"view": str(v), "materialized_only": bool(m), "source": str(s)}
                  for v, m, s in con.execute(
                      "SELECT view_name, materialized_only, hypertable_name FROM "
                      "timescaledb_information.continuous_aggregates ORDER BY 1").fetchall()]
    jobs = [{"job_id": int(j), "application": str(app), "proc": str(proc),
             "relation": None if rel is None else str(rel), "schedule": str(every),
             "last_run": _finite(last), "last_status": None if st is None else str(st),
             "next_start": _finite(nxt), "runs": int(runs or 0), "failures": int(fails or 0)}
            for j, app, proc, rel, every, last, st, nxt, runs, fails in con.execute(
                "SELECT j.job_id, j.application_name, j.proc_name, j.hypertable_name, "
                "j.schedule_interval::TEXT, s.last_run_started_at::TEXT, s.last_run_status, "
                "s.next_start::TEXT, s.total_runs, s.total_failures "
                "FROM timescaledb_information.jobs j "
                "LEFT JOIN timescaledb_information.job_stats s USING (job_id) "
                "WHERE j.job_id >= 1000 ORDER BY j.job_id").fetchall()]
    return {"extension": f"timescaledb {version}", "hypertables": hypertables,
            "continuous_aggregates": aggregates, "jobs": jobs}


# -- a profile that grew (schema on write) -------------------------------------------------------
def grow_layout(con: Con, profile: Profile, tz: ZoneInfo,
                retention_days: dict[str, float | None], policies: bool = True,
                remade: Collection[str] = ()) -> list[str]:
    """Give a measurement's hypertable the columns its grown ``profile`` adds, and its
    continuous aggregates too.

    An aggregate cannot gain a column: the three are dropped, made again from ``profile``
    and refreshed over every stored second (closed buckets; real-time aggregation covers the
    rest), which costs one pass over the measurement's 1 s rows. When retention has already
    dropped 1 s chunks, remaking them would lose the rollups of that range: the growth is
    refused (:class:`ConfigError`) and nothing changes. Continuous aggregates built on them
    are dropped first when the caller makes them again (``remade``: HOMEPOT's); any other
    refuses the growth too."""
    raw = profile.table("1s")
    stale = any(_lacks_columns(con, profile, tier) for tier in ROLLUP_TIERS)
    dropped = drops.dropped_ranges(con, [raw]) if stale else []
    if dropped:
        raise ConfigError(
            f"measurement {profile.name!r} cannot gain tags or fields on TimescaleDB: its "
            f"1 s rows were dropped ({drops.describe(dropped)}), and remaking its continuous "
            "aggregates would lose their rollups of that range")
    views = [profile.table(tier) for tier in ROLLUP_TIERS]
    above = [a for v in views for a in dependents(con, v) if a not in views] if stale else []
    foreign = [a for a in above if a not in remade]
    if foreign:
        raise ConfigError(
            f"measurement {profile.name!r} cannot gain tags or fields on TimescaleDB: "
            f"continuous aggregates of yours are built on its aggregates "
            f"({', '.join(foreign)}); drop them, then start again")
    changes = add_missing_columns(con, profile, "1s")
    if not stale:
        return changes
    for view in reversed(views):   # 1hour and daily read 5min
        for name in dependents(con, view):   # the caller makes them again (HOMEPOT's)
            if name in above:
                con.execute(f"DROP MATERIALIZED VIEW IF EXISTS {Q(name)}")
                changes.append(f"dropped continuous aggregate {name} (on {view}; made "
                               "again below)")
        con.execute(f"DROP MATERIALIZED VIEW IF EXISTS {Q(view)}")
    con.execute("DELETE FROM sunarchive_retained WHERE relation = ANY(%s)", [views])
    con.execute(drops.DROPPED_TABLE)
    con.execute("DELETE FROM sunarchive_dropped WHERE relation = ANY(%s)", [views])
    changes.extend(create_layout(con, profile, tz.key, retention_days, policies))
    row = con.execute(f"SELECT EXTRACT(EPOCH FROM MIN(time))::BIGINT, EXTRACT(EPOCH FROM "
                      f"MAX(time))::BIGINT FROM {Q(raw)}").fetchone()
    if row is not None and row[0] is not None:
        refresh(con, profile, int(str(row[0])), int(str(row[1])) + 1, tz)
        changes.append(f"refreshed the remade aggregates of {profile.name} over its data")
    return changes


def _lacks_columns(con: Con, profile: Profile, tier: str) -> bool:
    have = set(existing_columns(con, profile.table(tier)))
    return any(name not in have for name, _ in tier_columns(profile, tier))
