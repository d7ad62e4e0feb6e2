"""The TimescaleDB layout in CI, on PGlite (PostgreSQL 17 in WASM with TimescaleDB 2.23).

CI has no TimescaleDB server (``test_timescale.py`` skips there), but it has Node.js, and npm
has PGlite built with TimescaleDB (``tests/support/pglite_server.py``). What it can show runs here:
``setup``'s schema for every built-in profile (hypertables, hierarchical continuous aggregates,
policies and the retention job as rows), the aggregates against the sums of the 1 s rows after
the code's own refresh (local days, DST), issue 15 points 8-11 (refresh windows, retention,
a refresh owed at a crash, chunks/compress/changed settings) through explicit
``CALL refresh_continuous_aggregate``, the retention job's ``drop_chunks`` and an operator's
``drop_chunks`` by hand, and the upstream SQL.

What it cannot: COPY (rows go in with INSERT here, so not through ``PostgresStore.write``),
background workers (policies never run by themselves: the tests run their windows), a second
connection while one is open. Each test works in a schema of its own.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg.types.string import TextLoader

from sunarchive.model import ConfigError, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import POSTGRES, ROLLUP_TIERS, TIER_SOURCE, local_day_start
from sunarchive.storage import plain_views, upstream_schema
from sunarchive.storage.postgres import drops, timescale, view_tables
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.storage.postgres.user_sql import ReaderRole
from sunarchive.upstream import ps100_clearsky
from tests.support.homepot_data import HomepotData
from tests.support.pglite_server import drop_schema, fresh_schema
from tests.support.upstream_sql import Block, HoymilesData, Point, blocks, insert_sql

pytestmark = pytest.mark.engine

PROFILES = load_profiles(None)
PS100 = PROFILES["ps100_readings"]
Con = psycopg.Connection[tuple[Any, ...]]


@dataclass
class Site:
    """A schema on the PGlite server set up by ``PostgresStore.setup`` for some profiles."""

    url: str
    con: Con
    profiles: dict[str, Profile]
    tz: ZoneInfo


@pytest.fixture
def schema(pglite_url: str) -> Iterator[str]:
    name = fresh_schema(pglite_url)
    yield name
    drop_schema(pglite_url, name)


def set_up(url: str, profiles: dict[str, Profile], timezone: str,
           retention_days: dict[str, float | None] | None = None) -> list[str]:
    """``PostgresStore.setup`` (policies included); the store's connection is closed after,
    so the one PGlite connection is free again. User SQL runs as the owner: PGlite refuses
    ``GRANT CONNECT ON DATABASE`` ("tuple concurrently deleted")."""
    store = PostgresStore(url, profiles, timezone=timezone, retention_days=retention_days,
                          reader=ReaderRole(as_owner=True))
    try:
        changes = store.setup()
        assert store.layout == "timescaledb"
        return changes
    finally:
        store.close()


@pytest.fixture
def site(pglite_url: str, schema: str) -> Iterator[Site]:
    """PS100 with the daily tier in Europe/Berlin, one autocommit connection in UTC."""
    set_up(pglite_url, {PS100.name: PS100}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        yield Site(pglite_url, con, {PS100.name: PS100}, ZoneInfo("Europe/Berlin"))


# -- rows ------------------------------------------------------------------------------------
@dataclass
class Seconds:
    """1 s rows of PS100 panels: power and energy per (series, second)."""

    times: np.ndarray[Any, np.dtype[np.int64]]
    series: np.ndarray[Any, np.dtype[np.int32]]
    power_w: np.ndarray[Any, np.dtype[np.float64]]

    @property
    def energy_wh(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.power_w / 3600.0


def seconds(start_s: int, count: int, panels: int = 2, seed: int = 0) -> Seconds:
    """``count`` seconds from ``start_s`` for ``panels`` panels, with random power (W)."""
    times = np.repeat(np.arange(start_s, start_s + count, dtype=np.int64), panels)
    series = np.tile(np.arange(1, panels + 1, dtype=np.int32), count)
    power = np.random.default_rng(seed).uniform(0, 300, len(times)).round(3)
    return Seconds(times, series, power)


def insert(con: Con, rows: Seconds) -> None:
    """Plain INSERT of the rows into ps100_readings_1s (PGlite has no COPY)."""
    con.execute(
        "INSERT INTO ps100_readings_1s (time, series_id, panel_id, sample_count, covered_s, "
        "power_avg, power_min, power_max, power_stddev, power_count, energy_wh) "
        "SELECT to_timestamp(t), s, 'panel_' || s, 10, 1, p, p - 1, p + 1, 0.5, 10, p / 3600 "
        "FROM unnest(%s::BIGINT[], %s::INT[], %s::FLOAT8[]) AS r(t, s, p)",
        [rows.times.tolist(), rows.series.tolist(), rows.power_w.tolist()])


def bucket_of(tier: str, instant_s: int, tz: ZoneInfo) -> int:
    if tier == "daily":
        return local_day_start(instant_s, tz)
    return instant_s - instant_s % {"5min": 300, "1hour": 3600}[tier]


def expected(rows: Seconds, tier: str, tz: ZoneInfo) -> dict[tuple[int, int], tuple[float, ...]]:
    """(bucket start s, series): (energy Wh, sample count, power count, mean, min, max W)."""
    acc: dict[tuple[int, int], list[float]] = defaultdict(
        lambda: [0.0, 0, 0, 0.0, math.inf, -math.inf])
    for t, s, p in zip(rows.times.tolist(), rows.series.tolist(), rows.power_w.tolist(),
                       strict=True):
        a = acc[(bucket_of(tier, t, tz), s)]
        a[0] += p / 3600
        a[1] += 10
        a[2] += 10
        a[3] += p * 10
        a[4] = min(a[4], p - 1)
        a[5] = max(a[5], p + 1)
    return {k: (a[0], a[1], a[2], a[3] / a[2], a[4], a[5]) for k, a in acc.items()}


STATS = ("EXTRACT(EPOCH FROM time)::BIGINT, series_id, energy_wh, sample_count, power_count, "
         "power_avg, power_min, power_max")


def read(con: Con, relation: str, where: str = "TRUE") -> dict[tuple[int, int], tuple[float, ...]]:
    rows = con.execute(f"SELECT {STATS} FROM {relation} WHERE {where}").fetchall()
    return {(int(r[0]), int(r[1])): tuple(float(v) for v in r[2:]) for r in rows}


def materialized(con: Con, tier: str) -> tuple[str, int | None]:
    """The aggregate's materialized hypertable and watermark (what the store reads)."""
    table, watermark = con.execute(timescale.MATERIALIZATION_SQL,
                                   [PS100.table(tier)]).fetchall()[0]
    return str(table), None if watermark is None else int(watermark)


def assert_same(found: dict[tuple[int, int], tuple[float, ...]],
                wanted: dict[tuple[int, int], tuple[float, ...]]) -> None:
    assert sorted(found) == sorted(wanted)
    for key, values in wanted.items():
        assert found[key] == pytest.approx(values, rel=1e-9, abs=1e-9), key


def utc(instant_s: int) -> str:
    return datetime.fromtimestamp(instant_s, UTC).isoformat()


# -- the schema ------------------------------------------------------------------------------
def test_setup_makes_the_timescaledb_layout_of_every_builtin_profile(
        pglite_url: str, schema: str) -> None:
    changes = set_up(pglite_url, PROFILES, "Europe/Berlin")
    assert any("hypertable" in c for c in changes)
    with psycopg.connect(pglite_url, autocommit=True) as con:
        chunks: dict[str, Any] = dict(con.execute(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = %s", [schema]).fetchall())
        aggs = {str(r[0]): (bool(r[1]), str(r[2])) for r in con.execute(
            "SELECT view_name, materialized_only, hypertable_name FROM "
            "timescaledb_information.continuous_aggregates WHERE view_schema = %s",
            [schema]).fetchall()}
        mats = {v: materialized_name(con, v) for v in aggs}
        policies = {str(r[0]): (r[1], r[2], r[3]) for r in con.execute(
            "SELECT hypertable_name, (config ->> 'start_offset')::INTERVAL, "
            "(config ->> 'end_offset')::INTERVAL, schedule_interval FROM "
            "timescaledb_information.jobs WHERE proc_name = "
            "'policy_refresh_continuous_aggregate' AND hypertable_schema = %s",
            [schema]).fetchall()}
        compressed = {str(r[0]) for r in con.execute(
            "SELECT hypertable_name FROM timescaledb_information.jobs WHERE proc_name = "
            "'policy_compression' AND hypertable_schema = %s", [schema]).fetchall()}
        retention = [r[0] for r in con.execute(
            "SELECT config FROM timescaledb_information.jobs "
            "WHERE proc_name = 'sunarchive_retention'").fetchall()]
    for profile in PROFILES.values():
        assert chunks[profile.table("1s")] == span(profile.chunk_interval)
        assert profile.table("1s") in compressed
        for tier in ROLLUP_TIERS:
            view = profile.table(tier)
            source = profile.table(TIER_SOURCE[tier])
            # real-time aggregation on; hierarchical: each tier reads its source's
            # materialization (the 5-minute one reads the 1 s hypertable)
            assert aggs[view] == (False, mats.get(source, source))
            assert policies[view] == tuple(span(x) for x in timescale.POLICIES[tier])
    kept = {str(p.view): p.chunk_interval for p in PROFILES.values() if p.view_hypertable}
    assert sorted(kept) == ["health_checks", "irradiance_measurement", "mpp_measurement",
                            "temperature_measurement"]
    for name, interval in kept.items():   # the documents' hypertables under their names
        assert chunks[name] == span(interval) and name in compressed
    assert [c["measurement"] for c in retention] == ["health_checks"]
    tier, table = retention[0]["tiers"]   # health_checks cut with its 1 s tier
    assert (tier["relation"], tier["keep_days"], tier["read_by"]) == (
        "health_checks_1s", 90.0, ["health_checks_5min"])
    assert table == {**tier, "relation": "health_checks", "if_hypertable": True}
    assert set_up(pglite_url, PROFILES, "Europe/Berlin") == []   # idempotent


def materialized_name(con: Con, view: str) -> str:
    return str(con.execute("SELECT materialization_hypertable_name FROM "
                           "timescaledb_information.continuous_aggregates "
                           "WHERE view_name = %s", [view]).fetchall()[0][0])


def span(text: str) -> timedelta:
    """'6 hours', '1 week' ... as a timedelta."""
    count, unit = text.split()
    return timedelta(**{unit if unit.endswith("s") else unit + "s": int(count)})


# -- the aggregates against the 1 s rows -----------------------------------------------------
def test_refresh_materializes_every_tier_equal_to_the_1s_sums(site: Site) -> None:
    """Two panels for two hours across midnight in Berlin (two local days): after the code's
    refresh, every tier's materialization and view hold exactly the 1 s sums."""
    start = int(datetime(2026, 6, 20, 21, 30, tzinfo=UTC).timestamp())   # 23:30 in Berlin
    rows = seconds(start, 7200, panels=2)
    insert(site.con, rows)
    timescale.refresh(site.con, PS100, start, start + 7200, site.tz)
    for tier in ROLLUP_TIERS:
        table, watermark = materialized(site.con, tier)
        wanted = expected(rows, tier, site.tz)
        assert_same(read(site.con, table), wanted)
        assert_same(read(site.con, PS100.table(tier)), wanted)
        assert watermark is not None and watermark >= max(k[0] for k in wanted)
    days = site.con.execute("SELECT DISTINCT day::TEXT FROM ps100_readings_daily "
                            "ORDER BY 1").fetchall()
    assert [d[0] for d in days] == ["2026-06-20", "2026-06-21"]


@pytest.mark.parametrize(("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25)])
def test_the_daily_tier_follows_berlin_days_across_dst(site: Site, day: str,
                                                       hours: int) -> None:
    """One row a minute from two hours before to two hours after a DST day in Berlin: the
    daily aggregate has that day with 23 or 25 hours of data, and the days around it."""
    local = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=site.tz)
    midnight = int(local.timestamp())
    start = midnight - 2 * 3600
    span_s = hours * 3600 + 4 * 3600
    rows = seconds(start, span_s, panels=1)
    keep = rows.times % 60 == 0
    rows = Seconds(rows.times[keep], rows.series[keep], rows.power_w[keep])
    insert(site.con, rows)
    timescale.refresh(site.con, PS100, start, start + span_s, site.tz)
    daily = site.con.execute(
        "SELECT day::TEXT, EXTRACT(EPOCH FROM time)::BIGINT, sample_count FROM "
        "ps100_readings_daily ORDER BY time").fetchall()
    assert [d[0] for d in daily][1] == day
    assert daily[1][1] == midnight
    assert daily[1][2] == 10 * 60 * hours                      # 10 samples a minute
    assert_same(read(site.con, materialized(site.con, "daily")[0]),
                expected(rows, "daily", site.tz))


def noon_zone(now_s: int) -> str:
    """A fixed-offset IANA zone where it is about noon now, so that hours before and after
    now fall in today's local day whenever the test runs ("Etc/GMT-2" is UTC+2)."""
    offset = 12 - datetime.fromtimestamp(now_s, UTC).hour
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


def run_policies(con: Con, now_s: int) -> None:
    """What the refresh policies' background jobs do at ``now_s`` (PGlite runs no jobs)."""
    for tier in ROLLUP_TIERS:
        start, end, _ = (span(x) for x in timescale.POLICIES[tier])
        con.execute("CALL refresh_continuous_aggregate(%s::regclass, %s, %s)",
                    [PS100.table(tier), datetime.fromtimestamp(now_s, UTC) - start,
                     datetime.fromtimestamp(now_s, UTC) - end])


def test_a_refresh_never_materializes_the_open_day(pglite_url: str, schema: str) -> None:
    """Issue 15 point 8: the writer's refresh after a backfill 7 h old left today's daily
    bucket materialized half-full, and data 40 min old never reached the daily tier."""
    now = int(time.time())
    zone = noon_zone(now)
    set_up(pglite_url, {PS100.name: PS100}, zone)
    tz = ZoneInfo(zone)
    today = local_day_start(now, tz)
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        early = seconds(now - now % 300 - 7 * 3600, 600, seed=1)   # a backfill, 7 h old
        insert(con, early)
        lo, hi = int(early.times.min()), int(early.times.max()) + 1
        timescale.refresh(con, PS100, lo, hi, tz)     # what the writer does after it
        _, watermark = materialized(con, "daily")
        assert watermark is None or watermark <= today, "today's daily bucket was materialized"
        late = seconds(now - now % 300 - 40 * 60, 600, seed=2)     # live data, 40 min old
        insert(con, late)
        run_policies(con, now)
        daily = read(con, PS100.table("daily"), f"time = '{utc(today)}'")
    both = Seconds(np.concatenate([early.times, late.times]),
                   np.concatenate([early.series, late.series]),
                   np.concatenate([early.power_w, late.power_w]))
    assert_same(daily, expected(both, "daily", tz))


def test_a_refresh_owed_at_a_crash_is_settled_at_the_next_start(site: Site) -> None:
    """Issue 15 point 10: the writer records the refresh it owes in the write's transaction;
    a writer killed before refreshing leaves it recorded, and the next start settles it."""
    start = int(datetime(2026, 6, 20, 8, tzinfo=UTC).timestamp())
    rows = seconds(start, 4 * 3600, panels=2, seed=5)
    with site.con.transaction():                 # the write's transaction ...
        insert(site.con, rows)
        timescale.owe_refresh(site.con, PS100.name, start, start + 4 * 3600)
    # ... then the writer dies before its refresh: nothing is materialized
    assert materialized(site.con, "1hour")[1] is None
    site.con.close()
    changes = set_up(site.url, site.profiles, "Europe/Berlin")   # the next start
    assert any("refreshed the aggregates over 1 write" in c for c in changes)
    with psycopg.connect(site.url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        for tier in ROLLUP_TIERS:
            assert_same(read(con, materialized(con, tier)[0]), expected(rows, tier, site.tz))
        owed = con.execute("SELECT COUNT(*) FROM sunarchive_refresh_owed").fetchall()
    assert owed == [(0,)]


def test_chunks_and_compression_of_every_tier(site: Site) -> None:
    """Issue 15 point 11: `chunks` of an aggregate (its materialized hypertable) and a second
    `compress` that lists only what it compressed now."""
    start = int(datetime(2026, 6, 10, 10, tzinfo=UTC).timestamp())
    insert(site.con, seconds(start, 3600))
    insert(site.con, seconds(start + 86400, 3600))
    timescale.refresh(site.con, PS100, start, start + 86400 + 3600, site.tz)
    for tier in ("1s", *ROLLUP_TIERS):
        listed = timescale.chunks(site.con, PS100.table(tier))
        assert listed and all(c["bytes"] > 0 for c in listed), tier
    assert len(timescale.chunks(site.con, PS100.table("1s"))) == 2
    first = timescale.compress(site.con, PS100.table("1s"), 86400)
    assert len(first) == 2
    assert timescale.compress(site.con, PS100.table("1s"), 86400) == []
    assert all(c["compressed"] for c in timescale.chunks(site.con, PS100.table("1s")))
    rows = read(site.con, PS100.table("1s"))                  # readable after compression
    assert len(rows) == 2 * 2 * 3600


def test_chunks_are_those_of_the_stores_own_schema(pglite_url: str, schema: str) -> None:
    """Another store of the same profiles in another schema of the database has a hypertable
    of the same name: `chunks` lists only those of the schema the store works in."""
    start = int(datetime(2026, 6, 10, 10, tzinfo=UTC).timestamp())
    set_up(pglite_url, {PS100.name: PS100}, "UTC")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        insert(con, seconds(start, 3600))
        insert(con, seconds(start + 86400, 3600))
        assert len(timescale.chunks(con, PS100.table("1s"))) == 2
    other = fresh_schema(pglite_url)   # the working schema from here on
    try:
        set_up(pglite_url, {PS100.name: PS100}, "UTC")
        with psycopg.connect(pglite_url, autocommit=True) as con:
            assert timescale.chunks(con, PS100.table("1s")) == []
            insert(con, seconds(start, 60))
            listed = timescale.chunks(con, PS100.table("1s"))
            assert len(listed) == 1 and listed[0]["bytes"] > 0
    finally:
        drop_schema(pglite_url, other)


def test_setup_brings_policies_to_changed_settings(pglite_url: str, schema: str) -> None:
    """Issue 15 point 11: a changed compress_after_days or retention reaches the jobs."""
    set_up(pglite_url, {PS100.name: PS100}, "UTC", {"1s": 30.0})
    changed = dataclasses.replace(PS100, extra={**PS100.extra, "compress_after_days": 3})
    changes = set_up(pglite_url, {PS100.name: changed}, "UTC", {"1s": 10.0})
    assert any("compression policy" in c for c in changes), changes
    assert any("retention job for ps100_readings changed" in c for c in changes), changes
    with psycopg.connect(pglite_url, autocommit=True) as con:
        jobs = {str(r[0]): r[1] for r in con.execute(
            "SELECT proc_name, config FROM timescaledb_information.jobs WHERE proc_name IN "
            "('policy_compression', 'sunarchive_retention')").fetchall()}
    assert jobs["policy_compression"]["compress_after"] == "3 days"
    assert jobs["sunarchive_retention"]["tiers"][0]["keep_days"] == 10.0
    assert set_up(pglite_url, {PS100.name: changed}, "UTC", {"1s": 10.0}) == []


# -- retention -------------------------------------------------------------------------------
DAY = 86400
RETENTION_NOW = datetime(2026, 6, 20, 12, tzinfo=UTC)
OLD_DAYS = (datetime(2026, 6, 10, 10, tzinfo=UTC), datetime(2026, 6, 11, 10, tzinfo=UTC))
RECENT = datetime(2026, 6, 19, 10, tzinfo=UTC)


def retention_site(con: Con) -> Seconds:
    """Two hours on 10 and 11 June and one on 19 June, two panels, inserted."""
    parts = [seconds(int(d.timestamp()), 7200, seed=i) for i, d in enumerate(OLD_DAYS)]
    parts.append(seconds(int(RECENT.timestamp()), 3600, seed=9))
    for part in parts:
        insert(con, part)
    return Seconds(np.concatenate([p.times for p in parts]),
                   np.concatenate([p.series for p in parts]),
                   np.concatenate([p.power_w for p in parts]))


def count_1s(con: Con) -> int:
    return int(con.execute("SELECT COUNT(*) FROM ps100_readings_1s").fetchall()[0][0])


def test_retention_drops_only_raw_chunks_the_aggregates_have_read(site: Site) -> None:
    """The retention procedure (what the background job runs) keeps raw data the 5-minute
    aggregate has not materialized, and once it has, drops the old chunks, never the rollups."""
    rows = retention_site(site.con)
    keep: dict[str, float | None] = {"1s": 3.0}
    timescale.apply_retention(site.con, PS100, keep, RETENTION_NOW)
    assert count_1s(site.con) == len(rows.times)           # nothing materialized yet: kept
    timescale.refresh(site.con, PS100, int(OLD_DAYS[0].timestamp()),
                      int(RECENT.timestamp()) + 3600, site.tz)
    timescale.apply_retention(site.con, PS100, keep, RETENTION_NOW)
    assert count_1s(site.con) == 2 * 3600                   # only 19 June is left
    for tier in ROLLUP_TIERS:
        assert_same(read(site.con, materialized(site.con, tier)[0]),
                    expected(rows, tier, site.tz))


def test_retention_keeps_raw_rows_a_write_still_owes_a_refresh(site: Site) -> None:
    """A refresh policy moves the watermark past old rows whose refresh a write still owes
    (a backfill older than the policies' windows, in ``sunarchive_refresh_owed`` until the
    writer's next rollup): the retention job keeps them until that refresh has run. It
    dropped them before (a real TimescaleDB's policy ran between a test's write and its
    rollup)."""
    rows = retention_site(site.con)
    recent = int(RECENT.timestamp())
    timescale.refresh(site.con, PS100, recent, recent + 3600, site.tz)   # a policy's window
    timescale.owe_refresh(site.con, PS100.name, int(OLD_DAYS[0].timestamp()),
                          int(OLD_DAYS[1].timestamp()) + 7200)
    keep: dict[str, float | None] = {"1s": 3.0}
    timescale.apply_retention(site.con, PS100, keep, RETENTION_NOW)
    assert count_1s(site.con) == len(rows.times)            # owed: kept
    assert timescale.settle_owed(site.con, PS100, site.tz) == 1
    timescale.apply_retention(site.con, PS100, keep, RETENTION_NOW)
    assert count_1s(site.con) == 2 * 3600                   # materialized now: dropped
    for tier in ROLLUP_TIERS:
        assert_same(read(site.con, materialized(site.con, tier)[0]),
                    expected(rows, tier, site.tz))


def test_a_refresh_over_dropped_raw_data_keeps_the_rollups(site: Site) -> None:
    """Issue 15 point 9: after retention dropped old raw chunks, a refresh over that range
    (``sunarchive refresh``) recomputed the aggregates from nothing and deleted them."""
    rows = retention_site(site.con)
    first, last = int(OLD_DAYS[0].timestamp()), int(RECENT.timestamp()) + 3600
    timescale.refresh(site.con, PS100, first, last, site.tz)
    timescale.apply_retention(site.con, PS100, {"1s": 3.0}, RETENTION_NOW)  # drop_chunks
    assert count_1s(site.con) == 2 * 3600                   # only 19 June is left
    timescale.refresh(site.con, PS100, first, last, site.tz)  # `sunarchive refresh` does this
    for tier in ROLLUP_TIERS:
        assert_same(read(site.con, PS100.table(tier)), expected(rows, tier, site.tz))


def drop_raw_chunks(con: Con, older_than: datetime,
                    newer_than: datetime | None = None) -> None:
    """What an operator runs by hand: ``drop_chunks`` on the 1 s hypertable."""
    if newer_than is None:
        con.execute("SELECT drop_chunks('ps100_readings_1s', older_than => %s)", [older_than])
    else:
        con.execute("SELECT drop_chunks('ps100_readings_1s', older_than => %s, "
                    "newer_than => %s)", [older_than, newer_than])


def refreshed_site(site: Site) -> tuple[Seconds, int, int]:
    """:func:`retention_site` refreshed by the program: (rows, first s, last s)."""
    rows = retention_site(site.con)
    first, last = int(OLD_DAYS[0].timestamp()), int(RECENT.timestamp()) + 3600
    timescale.refresh(site.con, PS100, first, last, site.tz)
    return rows, first, last


def assert_rollups_hold(site: Site, rows: Seconds) -> None:
    for tier in ROLLUP_TIERS:
        assert_same(read(site.con, PS100.table(tier)), expected(rows, tier, site.tz))
        assert_same(read(site.con, materialized(site.con, tier)[0]),
                    expected(rows, tier, site.tz))


def test_a_refresh_after_a_manual_drop_chunks_keeps_the_rollups(site: Site) -> None:
    """Issue 15 point 9, a drop not made by sunarchive's retention job: an operator runs
    ``drop_chunks`` by hand, then ``sunarchive refresh`` over the whole range (what the
    program's refresh does): every 5min/1hour/daily row stays as it was."""
    rows, first, last = refreshed_site(site)
    drop_raw_chunks(site.con, datetime(2026, 6, 15, tzinfo=UTC))
    assert count_1s(site.con) == 2 * 3600                   # only 19 June is left
    timescale.refresh(site.con, PS100, first, last, site.tz)
    assert_rollups_hold(site, rows)


def test_a_refresh_after_dropping_middle_chunks_keeps_them_and_refreshes_the_rest(
        site: Site) -> None:
    """Middle chunks dropped by hand (``older_than`` and ``newer_than``): a refresh over the
    whole range keeps the rollups of the dropped day and still refreshes the days around it
    that have raw data."""
    rows, first, last = refreshed_site(site)
    drop_raw_chunks(site.con, datetime(2026, 6, 12, tzinfo=UTC),
                    newer_than=datetime(2026, 6, 11, tzinfo=UTC))       # 11 June only
    assert count_1s(site.con) == len(rows.times) - 2 * 7200
    more = seconds(int(datetime(2026, 6, 10, 14, tzinfo=UTC).timestamp()), 3600, seed=4)
    insert(site.con, more)                           # later data for 10 June: raw kept there
    timescale.refresh(site.con, PS100, first, last, site.tz)
    assert_rollups_hold(site, joined(rows, more))


def joined(*parts: Seconds) -> Seconds:
    return Seconds(np.concatenate([p.times for p in parts]),
                   np.concatenate([p.series for p in parts]),
                   np.concatenate([p.power_w for p in parts]))


def test_a_local_day_reaching_before_the_first_chunk_is_not_taken_for_dropped(
        site: Site) -> None:
    """The first Berlin day of a store starts at 22:00 UTC the evening before; when the
    5-minute aggregate's first chunk starts at that UTC midnight, the day's daily row lies
    before every chunk the daily aggregate reads, though nothing was dropped. A later
    backfill into that day still reaches the daily tier."""
    day = datetime(2026, 6, 16, tzinfo=UTC)              # a multiple of 10 days since 1970
    first = seconds(int(day.timestamp()) + 6 * 3600, 3600, seed=11)
    insert(site.con, first)
    timescale.refresh(site.con, PS100, int(first.times.min()), int(first.times.max()) + 1,
                      site.tz)
    [(chunk_start,)] = site.con.execute(
        "SELECT MIN(range_start) FROM timescaledb_information.chunks WHERE hypertable_name "
        "= %s", [materialized(site.con, "5min")[0].split(".")[-1].strip('"')]).fetchall()
    assert chunk_start == day                              # the premise
    later = seconds(int(day.timestamp()) + 10 * 3600, 3600, seed=12)
    insert(site.con, later)
    timescale.refresh(site.con, PS100, int(later.times.min()), int(later.times.max()) + 1,
                      site.tz)
    assert_rollups_hold(site, joined(first, later))
    assert site.con.execute("SELECT COUNT(*) FROM sunarchive_dropped").fetchall() == [(0,)]


def test_a_local_day_partly_in_dropped_5min_chunks_keeps_its_daily_row(site: Site) -> None:
    """The 5-minute tier's chunks dropped by hand up to a UTC midnight inside a Berlin day
    with data on both sides: a refresh over that day keeps its hourly and daily rows, though
    the raw data is all there (what the daily row was computed from is not)."""
    boundary = datetime(2026, 6, 16, tzinfo=UTC)          # a 5-minute chunk starts here
    evening = seconds(int(boundary.timestamp()) - 5400, 3600, seed=13)   # 22:30 UTC
    morning = seconds(int(boundary.timestamp()) + 6 * 3600, 3600, seed=14)
    both = joined(evening, morning)
    for part in (evening, morning):
        insert(site.con, part)
    lo, hi = int(both.times.min()), int(both.times.max()) + 1
    timescale.refresh(site.con, PS100, lo, hi, site.tz)
    site.con.execute("SELECT drop_chunks('ps100_readings_5min', older_than => %s)",
                     [boundary])
    timescale.refresh(site.con, PS100, lo, hi, site.tz)
    for tier in ("1hour", "daily"):
        assert_same(read(site.con, PS100.table(tier)), expected(both, tier, site.tz))
    assert_same(read(site.con, PS100.table("5min")), expected(morning, "5min", site.tz))


def test_a_late_sample_into_a_manually_dropped_day_is_refused_and_kept_away(
        site: Site) -> None:
    """The writer asks which of its rows fall where raw chunks were dropped by hand (it
    refuses those); and a sample that got into such a range anyway (another client) does not
    replace the 5-minute bucket of every panel nor change the day's total at the next
    refresh."""
    rows, _, _ = refreshed_site(site)
    drop_raw_chunks(site.con, datetime(2026, 6, 15, tzinfo=UTC))
    late = int(OLD_DAYS[1].timestamp()) + 60                  # 11 June, dropped
    assert drops.raw_dropped(site.con, PS100, site.tz, late, late + 1) == [
        (int(OLD_DAYS[0].timestamp()), int(OLD_DAYS[1].timestamp()) + 7200)]
    insert(site.con, Seconds(np.array([late]), np.array([1], np.int32), np.array([900.0])))
    timescale.refresh(site.con, PS100, late, late + 1, site.tz)   # the writer's refresh
    assert_rollups_hold(site, rows)


def test_the_writer_refuses_a_late_sample_into_a_manually_dropped_day(site: Site) -> None:
    """``PostgresStore.write`` of one late sample for a day whose raw chunks were dropped by
    hand: refused with a ``refused_below_retention`` event naming the dropped range, nothing
    stored, no refresh owed, every rollup as it was. (Everything is refused, so the write
    needs no COPY, which PGlite lacks.)"""
    rows, _, _ = refreshed_site(site)
    drop_raw_chunks(site.con, datetime(2026, 6, 15, tzinfo=UTC))
    site.con.close()                                 # PGlite: one connection at a time
    late = int(OLD_DAYS[1].timestamp()) + 60
    store = PostgresStore(site.url, site.profiles, timezone="Europe/Berlin",
                          reader=ReaderRole(as_owner=True))
    try:
        store.setup()
        sample = StatsRows(PS100.name, np.array([late]), np.array([1], np.int32),
                           {"power_avg": np.array([900.0]), "energy_wh": np.array([0.25])})
        assert store.write(sample, StatsRows.empty(PS100.name), {1: ("panel_1",)})
        store.rollup(PS100.name, None)
    finally:
        store.close()
    with psycopg.connect(site.url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        site.con = con
        assert count_1s(con) == 2 * 3600
        assert con.execute("SELECT COUNT(*) FROM sunarchive_refresh_owed").fetchall() == [(0,)]
        [(message,)] = con.execute("SELECT message FROM sunarchive_events WHERE kind = "
                                   "'refused_below_retention'").fetchall()
        assert message.startswith("refused 1 rows of ps100_readings from 2026-06-11T10:01:00")
        assert f"from {utc(int(OLD_DAYS[0].timestamp()))} to" in message
        assert_rollups_hold(site, rows)


def test_backfill_into_ranges_never_written_still_works_after_a_manual_drop(
        site: Site) -> None:
    """History older than anything stored and a day between stored days (no rollup rows
    there, so nothing was dropped) are written and refreshed as before."""
    rows, _, _ = refreshed_site(site)
    drop_raw_chunks(site.con, datetime(2026, 6, 15, tzinfo=UTC))
    history = seconds(int(datetime(2026, 6, 1, 10, tzinfo=UTC).timestamp()), 3600, seed=6)
    between = seconds(int(datetime(2026, 6, 14, 10, tzinfo=UTC).timestamp()), 3600, seed=7)
    for part in (history, between):
        lo, hi = int(part.times.min()), int(part.times.max()) + 1
        assert drops.raw_dropped(site.con, PS100, site.tz, lo, hi) == []
        insert(site.con, part)
        timescale.refresh(site.con, PS100, lo, hi, site.tz)
    assert_rollups_hold(site, joined(rows, history, between))


# -- the upstream SQL ------------------------------------------------------------------------
def upstream_blocks() -> list[Block]:
    return blocks()


UPSTREAM_PROFILES = ("ps100_readings", "health_checks", "dtu", "inverter", "port")
WORKS_TODAY = {  # block: the least number of rows it returns on the data of `upstream`
    "latest_panel_performance": 2, "daily_energy_production": 2,
    "system_performance_trends": 1,
    "five_minute_last_24h": 12, "hourly_last_week": 2, "daily_last_month": 2,
    "sample_counts": 2, "jobs": 3 * len(UPSTREAM_PROFILES) + 3, "job_stats": 0,
    # hoymiles.sql over the plain views dtu, inverter, port (HoymilesData: 5 h up to now)
    "latest_power": 50, "grafana_current_power": 290, "grafana_daily_production": 5,
    "total_production_by_dtu": 1, "average_power_by_hour": 5, "inverter_temperatures": 580,
    "grafana_inverter_temperature": 580, "inverter_uptime": 2, "port_production": 1740,
    "port_performance_comparison": 4,
    # homepot.sql over health_checks and the views on health_checks_1hour (HomepotData: 30 h)
    "device_hourly": 23, "device_hourly_columns": 23, "site_hourly": 30,   # 24 once this
    # hour has a check
    "time_bucket_cpu": 30, "first_last_cpu": 1, "raw_recent_device": 800,
    "refresh_hourly": 0,
    # health_checks is a hypertable of its own (storage/postgres/view_tables.py): 30 h of
    # checks in chunks of a week
    "hypertables": 1, "chunks_of_health_checks": 1}
NOT_YET: dict[str, str] = {}  # block: why it fails on our TimescaleDB schema (strict xfails)


@pytest.fixture(scope="module")
def upstream(pglite_url: str) -> Iterator[str]:
    """A schema with the upstream systems' profiles set up, PS100 holding half an hour of
    two panels that ended now, refreshed, with its derived columns computed, the Hoymiles
    bridge's five hours up to now as 1 s rows (read through the plain views dtu, inverter,
    port) and HOMEPOT's 30 hours of health checks (through health_checks and the aggregates
    on health_checks_1hour). No connection stays open between tests."""
    name = fresh_schema(pglite_url)
    set_up(pglite_url, {n: PROFILES[n] for n in UPSTREAM_PROFILES}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        now = int(time.time())
        start = now - now % 300 - 1800
        insert(con, seconds(start, 1800))
        timescale.refresh(con, PS100, start, start + 1800, ZoneInfo("Europe/Berlin"))
        hoymiles = HoymilesData(now)
        for measurement in ("dtu", "inverter", "port"):
            con.execute(hoymiles.insert_sql(PROFILES[measurement]).encode())
        health = PROFILES["health_checks"]
        points = HomepotData(now).points()
        con.execute(insert_sql(health, points).encode())
        with con.transaction():   # the write's own step (PGlite has no COPY for store.write)
            view_tables.sync(con, health, [np.array([p.time_s for p in points])])
    derive_ps100(pglite_url, start, start + 1800)
    yield name
    drop_schema(pglite_url, name)


def derive_ps100(url: str, start_s: int, end_s: int) -> None:
    """The PS100 tables, views and derived columns (the write hook's work; rows went in with
    INSERT here, not through ``PostgresStore.write``)."""
    store = PostgresStore(url, {n: PROFILES[n] for n in UPSTREAM_PROFILES},
                          timezone="Europe/Berlin", reader=ReaderRole(as_owner=True))
    try:
        store.setup()
        ps100_clearsky.prepare(store, None)
        changes = ps100_clearsky.upkeep(ps100_clearsky.direct(store), None)
        assert any(c.startswith("ps100_clearsky: ") for c in changes), changes
    finally:
        store.close()


def upstream_cases() -> list[Any]:
    cases = []
    for block in upstream_blocks():
        if "timescaledb" not in block.engines:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=NOT_YET[block.name])] \
            if block.name in NOT_YET else []
        cases.append(pytest.param(block, id=f"{block.file}.{block.name}", marks=marks))
    return cases


@pytest.mark.parametrize("block", upstream_cases())
def test_upstream_sql_runs_unchanged_on_timescaledb(pglite_url: str, upstream: str,
                                                    block: Block) -> None:
    """Every block meant for TimescaleDB runs verbatim and returns rows (those listed in
    NOT_YET do not yet: strict xfails, so one that starts working must move here)."""
    assert block.name in WORKS_TODAY or block.name in NOT_YET, "a new upstream block"
    with psycopg.connect(pglite_url, autocommit=True) as con:
        for kind in ("timestamptz", "timestamp", "date"):   # job_stats has -infinity
            con.adapters.register_loader(kind, TextLoader)
        con.execute(f'SET search_path TO "{upstream_schema.name_for(upstream)}", "{upstream}", '
                    'public')
        if re.search(r"^CALL ", block.sql, re.MULTILINE):   # not allowed in a transaction
            con.execute(block.sql)
            return
        with con.transaction(force_rollback=True):
            cursor = con.execute(block.sql)
            rows = cursor.fetchall() if cursor.description else []
    assert len(rows) >= WORKS_TODAY.get(block.name, 1)


# -- HOMEPOT's continuous aggregates (docs/upstream/homepot.md) -------------------------------
HOMEPOT_SCHEDULES = {"device_metrics_hourly": "01:00:00", "device_metrics_daily": "06:00:00",
                     "site_metrics_hourly": "01:00:00"}


def test_homepots_aggregates_are_refreshed_with_the_tiers_and_keep_the_open_hour_live(
        pglite_url: str, schema: str) -> None:
    """device_metrics_hourly & co. are continuous aggregates on health_checks_1hour/_daily
    with the document's schedules; sunarchive's refresh of the tiers materializes their
    closed buckets too (the watermark stops at this hour), real-time aggregation adds the
    open hour, and every figure equals the tier's rows (device 123: one series)."""
    health = PROFILES["health_checks"]
    changes = set_up(pglite_url, {health.name: health}, "Europe/Berlin")
    assert any(c.startswith("created continuous aggregate device_metrics_hourly")
               for c in changes)
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        now = int(time.time())
        con.execute(insert_sql(health, HomepotData(now).points()).encode())
        timescale.refresh(con, health, now - 31 * 3600, now, ZoneInfo("Europe/Berlin"), now)
        jobs: dict[str, str] = dict(con.execute(
            "SELECT hypertable_name, schedule_interval::TEXT FROM timescaledb_information.jobs "
            "WHERE hypertable_name = ANY(%s)", [list(HOMEPOT_SCHEDULES)]).fetchall())
        assert jobs == HOMEPOT_SCHEDULES
        table, watermark = con.execute(timescale.MATERIALIZATION_SQL,
                                       ["device_metrics_hourly"]).fetchall()[0]
        assert watermark == now - now % 3600
        assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchall()[0][0] >= 3 * 29
        got = con.execute("SELECT EXTRACT(EPOCH FROM hour)::BIGINT, avg_cpu, checks, "
                          "unhealthy_checks FROM device_metrics_hourly WHERE device_id = 123 "
                          "ORDER BY 1").fetchall()
        own = con.execute(
            "SELECT EXTRACT(EPOCH FROM time)::BIGINT, cpu_percent_avg, sample_count, "
            "is_healthy_count - is_healthy_true_count FROM health_checks_1hour "
            "WHERE device_id = '123' ORDER BY 1").fetchall()
        assert [(r[0], r[2], r[3]) for r in got] == [(r[0], r[2], r[3]) for r in own]
        assert [r[1] for r in got] == pytest.approx([r[1] for r in own], rel=1e-9)
        last = max(c.time_s for c in HomepotData(now).of(123))
        assert got[-1][0] == last - last % 3600   # the open hour: real-time aggregation
        con.execute("CALL refresh_continuous_aggregate('device_metrics_hourly', NULL, NULL)")
        sites = con.execute("SELECT site_id, MAX(device_count) FROM site_metrics_hourly "
                            "GROUP BY 1 ORDER BY 1").fetchall()
        assert sites == [(1, 2), (2, 1)]
        uptime = con.execute("SELECT SUM(checks), SUM(checks - unhealthy_checks) * 100.0 / "
                             "SUM(checks) FROM device_metrics_daily").fetchall()[0]
        assert uptime[0] == len(HomepotData(now).checks)


def test_a_timescaledb_store_of_step_4_gets_homepots_aggregates(pglite_url: str,
                                                                 schema: str) -> None:
    """The named-rollup views a store before step 7 had under the HOMEPOT names become the
    continuous aggregates at the next setup; ``chunks health_checks`` lists the hypertable's."""
    health = PROFILES["health_checks"]
    set_up(pglite_url, {health.name: health}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        for name in HOMEPOT_SCHEDULES:
            con.execute(f"DROP MATERIALIZED VIEW {name}")
        con.execute("DROP TABLE health_checks")
        con.execute("DELETE FROM sunarchive_meta WHERE key LIKE 'homepot%%' OR key = "
                    "'view_table:health_checks'")
        con.execute("DELETE FROM sunarchive_schema_changes WHERE version >= 5")
        con.execute("CREATE VIEW device_metrics_hourly AS SELECT time, cpu_percent_avg FROM "
                    "health_checks_1hour")
    changes = set_up(pglite_url, {health.name: health}, "Europe/Berlin")
    assert any(c.startswith("replaced continuous aggregate device_metrics_hourly")
               for c in changes), changes
    with psycopg.connect(pglite_url, autocommit=True) as con:
        names = {r[0] for r in con.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates").fetchall()}
        assert set(HOMEPOT_SCHEDULES) <= names
        assert con.execute("SELECT COUNT(*) FROM health_checks").fetchall() == [(0,)]
        con.execute("INSERT INTO health_checks_1s (time, series_id, sample_count, covered_s) "
                    "VALUES (now(), 1, 1, 1)")
        with con.transaction():   # the write's own step (PGlite has no COPY for store.write)
            view_tables.sync(con, health, [np.array([int(time.time())])])
    store = PostgresStore(pglite_url, {health.name: health}, timezone="Europe/Berlin",
                          reader=ReaderRole(as_owner=True))
    try:   # `sunarchive chunks health_checks`: the chunks of the hypertable health_checks,
        store.setup()   # over the same ranges as its 1 s tier's
        own, tier = store.chunks("health_checks"), store.chunks("health_checks_1s")
        assert [(c["range_start"], c["range_end"]) for c in own] == \
               [(c["range_start"], c["range_end"]) for c in tier] != []
        assert {c["chunk"] for c in own}.isdisjoint(c["chunk"] for c in tier)
    finally:
        store.close()


# -- the documents' hypertables: health_checks, mpp_measurement … (view_tables) ---------------
HEALTH = PROFILES["health_checks"]
CHECK_FIELDS = {"cpu_percent": 40.5, "memory_percent": 61.0, "disk_percent": 50.0,
                "transactions": 100.0, "errors": 1.0, "latency_ms": 12.5, "is_healthy": True}


def checks(start_s: int, count: int, step_s: int = 120) -> list[Point]:
    """``count`` checks of devices 123 and 124 (site 1) every ``step_s`` from ``start_s``,
    their CPU rising with time."""
    return [Point("health_checks", {"device_id": str(d), "site_id": "1"},
                  {**CHECK_FIELDS, "cpu_percent": 10.0 + i % 80 + d / 1000}, start_s + i * step_s)
            for i in range(count) for d in (123, 124)]


def table_rows(con: Con) -> list[tuple[Any, ...]]:
    return con.execute('SELECT * FROM health_checks ORDER BY "timestamp", device_id').fetchall()


def derived_rows(con: Con) -> list[tuple[Any, ...]]:
    """What the 1 s tier gives under the plain names (the view of other engines)."""
    return con.execute(f"SELECT * FROM ({plain_views.view_select(HEALTH, POSTGRES)}) AS v "
                       'ORDER BY "timestamp", device_id').fetchall()


def write(con: Con, points: list[Point]) -> None:
    """The points as 1 s rows, then the write's own step (PGlite has no COPY)."""
    con.execute(insert_sql(HEALTH, points).encode())
    with con.transaction():
        view_tables.sync(con, HEALTH, [np.array([p.time_s for p in points])])


def test_view_table_runs_split_far_apart_seconds() -> None:
    assert view_tables.runs([np.array([10, 11, 5000]), np.array([12, 4000]),
                             np.array([], np.int64)]) == [(10, 13), (4000, 5001)]
    assert view_tables.runs([np.array([10, 11, 5000])], gap_s=10) == [(10, 12), (5000, 5001)]
    assert view_tables.runs([np.array([], np.int64)]) == []


def test_health_checks_is_a_hypertable_derived_again_by_every_write(
        pglite_url: str, schema: str) -> None:
    """The hypertable holds the 1 s tier's seconds under the document's columns; a write
    that merges into a second, one that replaces a second away and a fresh one each leave
    it equal to what the 1 s tier gives, and touch nothing else."""
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    start = int(OLD_DAYS[0].timestamp())
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        write(con, checks(start, 30))
        assert len(table_rows(con)) == 60 and table_rows(con) == derived_rows(con)
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'health_checks' AND table_schema = current_schema() ORDER BY ordinal_position")]
        assert columns == ["timestamp", "device_id", "site_id", *CHECK_FIELDS,
                           "response_data"]
        assert con.execute("SELECT data_type FROM information_schema.columns WHERE "
                           "table_name = 'health_checks' AND column_name = 'device_id' AND "
                           "table_schema = current_schema()").fetchall() == [("bigint",)]
        merged, removed = start, start + 120
        con.execute("UPDATE health_checks_1s SET cpu_percent_avg = 99.5 WHERE time = "
                    "to_timestamp(%s) AND device_id = '123'", [merged])
        con.execute("DELETE FROM health_checks_1s WHERE time = to_timestamp(%s) AND "
                    "device_id = '124'", [removed])
        con.execute(insert_sql(HEALTH, checks(start + 7200, 1)).encode())
        assert table_rows(con) != derived_rows(con)   # not derived yet
        with con.transaction():
            view_tables.sync(con, HEALTH, [np.array([start + 7200]),
                                           np.array([merged, removed])])
        assert table_rows(con) == derived_rows(con)
        assert len(table_rows(con)) == 61
        cpu = con.execute("SELECT cpu_percent, response_data -> 'cpu_percent' FROM "
                          "health_checks WHERE device_id = 123 ORDER BY 1 DESC LIMIT 1"
                          ).fetchall()
        assert cpu == [(99.5, 99.5)]


def old_health_checks_view(con: Con) -> None:
    """Make the store look as one made before view_tables: health_checks a view over the
    1 s tier, recorded as sunarchive's."""
    con.execute("DROP TABLE health_checks")
    con.execute("DELETE FROM sunarchive_meta WHERE key = 'view_table:health_checks'")
    sql = plain_views.create_sql(HEALTH, POSTGRES)
    con.execute(sql)
    con.execute("INSERT INTO sunarchive_meta VALUES ('plain_view:health_checks', %s)",
                [plain_views.digest(sql)])


def test_a_store_from_before_gets_the_hypertable_with_the_views_rows(
        pglite_url: str, schema: str) -> None:
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        old_health_checks_view(con)
        con.execute(insert_sql(HEALTH, checks(int(RECENT.timestamp()), 20)).encode())
        before = table_rows(con)   # the view's
    changes = set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    assert "created hypertable health_checks (health_checks_1s with plain field names, " \
           "40 rows)" in changes
    with psycopg.connect(pglite_url, autocommit=True) as con:
        assert len(before) == 40 and table_rows(con) == before
        assert con.execute("SELECT COUNT(*) FROM timescaledb_information.hypertables WHERE "
                           "hypertable_name = 'health_checks' AND hypertable_schema = "
                           "current_schema()").fetchall() == [(1,)]
        assert con.execute("SELECT key FROM sunarchive_meta WHERE key LIKE '%%health_checks'"
                           ).fetchall() == [("view_table:health_checks",)]
    assert set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin") == []


def test_a_users_view_on_the_old_view_stops_the_change_with_one_line(
        pglite_url: str, schema: str) -> None:
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        old_health_checks_view(con)
        con.execute("CREATE VIEW my_devices AS SELECT DISTINCT device_id FROM health_checks")
    with pytest.raises(ConfigError) as failed:
        set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    message = str(failed.value)
    assert message.startswith("cannot make health_checks a hypertable: other objects use "
                              "the view health_checks (") and "my_devices" in message
    assert "\n" not in message and message.endswith("and make them again")
    with psycopg.connect(pglite_url, autocommit=True) as con:   # nothing changed
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE "
                           "table_name = 'health_checks' AND table_schema = current_schema()"
                           ).fetchall() == [("VIEW",)]


def test_retention_cuts_health_checks_with_its_1s_tier(pglite_url: str, schema: str) -> None:
    """The retention job drops the hypertable's old chunks at the 1 s tier's cutoff, and
    only once the 5-minute aggregate has read them, as the 1 s tier's."""
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    tz = ZoneInfo("Europe/Berlin")
    keep: dict[str, float | None] = {"1s": 3.0}
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        old = int(datetime(2026, 6, 3, 10, tzinfo=UTC).timestamp())   # a week before
        write(con, checks(old, 30) + checks(int(RECENT.timestamp()), 30))
        timescale.apply_retention(con, HEALTH, keep, RETENTION_NOW)
        assert len(table_rows(con)) == 120 == len(derived_rows(con))   # not read yet: kept
        timescale.refresh(con, HEALTH, old, int(RECENT.timestamp()) + 7200, tz)
        timescale.apply_retention(con, HEALTH, keep, RETENTION_NOW)
        assert len(table_rows(con)) == 60 and table_rows(con) == derived_rows(con)
        assert min(r[0] for r in table_rows(con)) == RECENT


def test_a_health_checks_table_of_the_users_is_left_alone_and_retention_still_runs(
        pglite_url: str, schema: str) -> None:
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("DROP TABLE health_checks")
        con.execute("DELETE FROM sunarchive_meta WHERE key = 'view_table:health_checks'")
        con.execute("CREATE TABLE health_checks (note TEXT)")
        con.execute("INSERT INTO health_checks VALUES ('mine')")
    changes = set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    assert "left health_checks alone: a relation sunarchive did not make has that name; " \
           "no hypertable health_checks" in changes
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        con.execute(insert_sql(HEALTH, checks(int(RECENT.timestamp()), 5)).encode())
        timescale.refresh(con, HEALTH, int(RECENT.timestamp()), int(RECENT.timestamp()) + 3600,
                          ZoneInfo("Europe/Berlin"))
        timescale.apply_retention(con, HEALTH, {"1s": 0.01}, RETENTION_NOW)   # no error
        assert con.execute("SELECT * FROM health_checks").fetchall() == [("mine",)]


def test_health_checks_compress_and_writes_into_compressed_chunks_stay_in_step(
        pglite_url: str, schema: str) -> None:
    """``sunarchive compress`` compresses the hypertable's old chunks with the 1 s tier's
    (HOMEPOT's document compresses after 7 days); a late check into a compressed second
    still leaves it equal to what the 1 s tier gives."""
    set_up(pglite_url, {HEALTH.name: HEALTH}, "Europe/Berlin")
    start = int(datetime(2026, 6, 3, 10, tzinfo=UTC).timestamp())
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        write(con, checks(start, 30))
        settings = con.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index FROM "
            "timescaledb_information.compression_settings WHERE hypertable_name = "
            "'health_checks' AND hypertable_schema = current_schema() ORDER BY attname"
        ).fetchall()
        assert settings == [("device_id", 1, None), ("timestamp", None, 1)]
    store = PostgresStore(pglite_url, {HEALTH.name: HEALTH}, timezone="Europe/Berlin",
                          reader=ReaderRole(as_owner=True))
    try:
        store.setup()
        done = store.compress(7 * DAY)
        assert [c["compressed"] for c in store.chunks("health_checks")] == [True]
        assert len(done) == 2   # a chunk of health_checks_1s and one of health_checks
    finally:
        store.close()
    with psycopg.connect(pglite_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        before = table_rows(con)
        con.execute("UPDATE health_checks_1s SET cpu_percent_avg = 1.5 WHERE time = "
                    "to_timestamp(%s) AND device_id = '123'", [start])
        with con.transaction():
            view_tables.sync(con, HEALTH, [np.array([start])])
        assert table_rows(con) == derived_rows(con) != before
