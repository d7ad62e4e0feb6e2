"""Rollups readable in SQL with today in them (issue 18, point 7), on DuckDB and plain
PostgreSQL as on TimescaleDB: every ``<m>_5min``, ``<m>_1hour`` and ``<m>_daily`` answers the
open buckets too, exactly as the program's own reads (``query_tier``) do; and times in SQL
behave the same on both engines (``time AT TIME ZONE`` on a rollup, user SQL in UTC whatever
the machine's zone).

Data comes the collector's way: simulated PS100 panels through the reducer into
``store.write``, with ``store.rollup`` after each one-minute commit, relative to now: a few
minutes of yesterday (a closed day) and the last 90 minutes up to the current second (closed
and open 5-minute buckets, this hour, today).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest

from sunarchive.app import simulator_config
from sunarchive.model import NS_PER_S, SeriesKey, StatsRows
from sunarchive.pipeline.agent import SeriesRegistry
from sunarchive.profiles import load_profiles
from sunarchive.profiles.loader import parse_profile
from sunarchive.reducer import Reducer
from sunarchive.rollup import ROLLUP_TIERS, tier_floor
from sunarchive.settings import load_settings
from sunarchive.sources.simulator import PanelSimulator
from sunarchive.storage.open import SqlStore, StoreOptions, open_store
from sunarchive.storage.tiered import tier_columns
from tests.support.cli import cli
from tests.support.pg_server import drop_database, fresh_database
from tests.support.stats_rows import stats_rows as _rows
from tests.support.tier_rows import assert_same_rows

pytestmark = pytest.mark.integration

PS100 = "ps100_readings"
ZONE = "Europe/Berlin"
TZ = ZoneInfo(ZONE)
RECENT_S = 5400


def _open(url: str) -> SqlStore:
    return open_store(url, StoreOptions(profiles={PS100: load_profiles()[PS100]},
                                        timezone=ZONE))


def collect(store: SqlStore, start_s: int, end_s: int) -> None:
    """Two simulated panels over [start_s, end_s) through the reducer, one commit and one
    rollup per minute, as the collector's writer does."""
    settings = load_settings(config_file=None, env={}, dotenv_file=None,
                             overrides={"simulator": {"panels": 2, "sample_rate_hz": 10.0}})
    simulator = PanelSimulator(simulator_config(settings.simulator))
    registry = SeriesRegistry(store)
    reducer = Reducer(store.profiles[PS100], settings.lateness_s)
    for lo in range(start_s, end_s, 60):
        hi = min(lo + 60, end_s)
        batch = simulator.generate(lo * NS_PER_S, hi * NS_PER_S)
        reducer.add(registry.ids_for(batch), batch.time_ns, batch.fields)
        result = reducer.flush() if hi == end_s else reducer.close()
        registry.save_new()
        store.write(result.fresh, result.merge, registry.tags)
        store.rollup(PS100, reducer.closed_until_s)


def _local_noon(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=TZ).timestamp())


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def filled(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, int]]:
    """A store holding yesterday's noon minutes and the last 90 minutes; the newest second."""
    if request.param == "postgres":
        url = fresh_database(request.getfixturevalue("pg_server_url"))
    else:
        url = f"duckdb:///{tmp_path_factory.mktemp('duckdb') / 'store.duckdb'}"
    store = _open(url)
    now = int(time.time())
    yesterday = datetime.fromtimestamp(now, TZ).date() - timedelta(days=1)
    collect(store, _local_noon(yesterday), _local_noon(yesterday) + 600)
    collect(store, now - RECENT_S, now)
    newest = store.last_time_s(PS100)
    assert newest is not None
    yield store, newest
    store.close()
    if request.param == "postgres":
        drop_database(url)


def _epochs(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with ``time`` as UTC epoch seconds (the views say TIMESTAMPTZ on both engines;
    the program reads DuckDB's UTC TIMESTAMPs naive)."""
    rows = table.to_pylist()
    for row in rows:
        t = row["time"]
        row["time"] = int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp())
    return rows


def _range(newest: int) -> tuple[int, int]:
    """Local days from the day before yesterday to tomorrow, in UTC epoch s."""
    lo = tier_floor("daily", newest - 3 * 86400, TZ)
    return lo, tier_floor("daily", newest + 2 * 86400, TZ)


@pytest.mark.parametrize("tier", ROLLUP_TIERS)
def test_each_tier_view_holds_every_bucket_the_programs_reads_give(
        filled: tuple[SqlStore, int], tier: str) -> None:
    store, newest = filled
    view = store.read_sql(f"SELECT * FROM {PS100}_{tier} ORDER BY time, panel_id").table
    own = store.query_tier(PS100, tier, *_range(newest), {}, None)
    assert view.column_names == [c for c, _ in tier_columns(store.profiles[PS100], tier)]
    assert_same_rows(_epochs(view.drop(["series_id"])), _epochs(own))


def test_the_views_answer_the_open_buckets(filled: tuple[SqlStore, int]) -> None:
    store, newest = filled
    horizons = {tier: store.horizon(PS100, tier) for tier in ROLLUP_TIERS}
    newest_bucket = {}
    for tier in ROLLUP_TIERS:
        rows = _epochs(store.read_sql(f"SELECT time, panel_id FROM {PS100}_{tier}").table)
        newest_bucket[tier] = max(r["time"] for r in rows)
        assert newest_bucket[tier] == tier_floor(tier, newest, TZ), tier
        horizon = horizons[tier]
        assert horizon is not None and newest_bucket[tier] >= horizon, \
            f"{tier}: its newest bucket is not an open one"
    today = datetime.fromtimestamp(newest, TZ).date()
    days = store.read_sql(f"SELECT DISTINCT day FROM {PS100}_daily ORDER BY day").rows()
    assert [d for (d,) in days] == [today - timedelta(days=1), today]


def test_daily_energy_in_sql_is_the_sum_of_the_seconds(filled: tuple[SqlStore, int]) -> None:
    store, newest = filled
    day_start = tier_floor("daily", newest, TZ)
    stamp = datetime.fromtimestamp(day_start, UTC).strftime("%Y-%m-%d %H:%M:%S")
    seconds = store.read_sql(f"SELECT SUM(energy_wh) AS e FROM {PS100}_1s WHERE time >= "
                             f"TIMESTAMP '{stamp}'").rows()[0][0]
    today = store.read_sql(f"SELECT SUM(energy_wh) AS e FROM {PS100}_daily WHERE day = "
                           f"DATE '{datetime.fromtimestamp(newest, TZ).date()}'").rows()[0][0]
    assert today == pytest.approx(seconds, rel=1e-9, abs=1e-9)


def test_time_at_time_zone_gives_local_time_on_every_engine(
        filled: tuple[SqlStore, int]) -> None:
    """A daily bucket starts at the site's local midnight: ``time AT TIME ZONE`` shows
    00:00 of its ``day`` on both engines; an hourly bucket shows its local hour."""
    store, newest = filled
    days = store.read_sql(f"SELECT day, time AT TIME ZONE '{ZONE}' AS local "
                          f"FROM {PS100}_daily").rows()
    assert days and all(local == datetime(d.year, d.month, d.day) for d, local in days)
    hours = store.read_sql(f"SELECT time, EXTRACT(hour FROM time AT TIME ZONE '{ZONE}') AS h "
                           f"FROM {PS100}_1hour").rows()
    assert hours and all(int(h) == t.astimezone(TZ).hour for t, h in hours)
    seconds = store.read_sql(f"SELECT time, CAST(time AS TIMESTAMPTZ) AT TIME ZONE '{ZONE}' "
                             f"AS local FROM {PS100}_1s ORDER BY time DESC LIMIT 3").rows()
    for t, local in seconds:   # the 1 s tier: the portable spelling of the docs
        aware = t if t.tzinfo else t.replace(tzinfo=UTC)
        assert local == aware.astimezone(TZ).replace(tzinfo=None)
    local_days = store.read_sql(
        f"SELECT CAST(CAST(time AS TIMESTAMPTZ) AT TIME ZONE '{ZONE}' AS DATE) AS d, "
        f"COUNT(*) AS n FROM {PS100}_1s GROUP BY 1 ORDER BY 1").rows()
    today = datetime.fromtimestamp(newest, TZ).date()
    assert [d for d, _ in local_days] == [today - timedelta(days=1), today]


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_an_open_dst_day_is_bucketed_by_the_local_midnight(
        engine: str, day: date, hours: int, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    """The open part of the daily view finds the local day in SQL (the engine's zone
    database); on a 23- or 25-hour day it starts where the program's day starts."""
    begin = int(datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp())
    end = begin + hours * 3600
    url = (f"duckdb:///{tmp_path / 'dst.duckdb'}" if engine == "duckdb"
           else str(request.getfixturevalue("pg_url")))
    store = _open(url)
    try:
        collect(store, begin - 600, begin + 600)     # the day before closes
        collect(store, end - 1200, end - 1)          # this one stays open
        assert store.horizon(PS100, "daily") == begin
        view = _epochs(store.read_sql(f"SELECT * FROM {PS100}_daily ORDER BY time, "
                                      "panel_id").table.drop(["series_id"]))
        assert [(r["time"], r["day"]) for r in view][-2:] == [(begin, day)] * 2
        assert_same_rows(view, _epochs(store.query_tier(PS100, "daily", begin - 86400,
                                                         end + 86400, {}, None)))
    finally:
        store.close()


def test_duckdb_views_read_only_the_1s_rows_after_the_horizon(tmp_path: Path) -> None:
    """The horizons are read inside the views, and DuckDB still skips the 1 s row groups
    before them: a view read touches the open part's rows, not the whole history."""
    db = tmp_path / "long.duckdb"
    store = _open(f"duckdb:///{db}")
    for i in (1, 2):
        store.add_series(SeriesKey(PS100, (f"panel_{i}",)), i)
    start = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
    seconds = 3 * 86400   # 518 400 rows: about four of DuckDB's row groups (122 880 rows)
    store.write(_rows(PS100, start, seconds, 2), StatsRows.empty(PS100),
                {i: (f"panel_{i}",) for i in (1, 2)})
    store.rollup(PS100, start + seconds - 600)   # the last ten minutes stay open
    store.close()
    with duckdb.connect(str(db), read_only=True) as con:
        for tier in ROLLUP_TIERS:
            plan = con.execute(f"EXPLAIN (ANALYZE, FORMAT json) SELECT * FROM {PS100}_{tier}"
                               ).fetchall()[0][1]
            scanned = json.loads(plan)["query"]["total_rows_scanned"]
            assert scanned <= 130_000, f"{tier}: {scanned} rows scanned"


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_profile_that_grows_gets_its_views_replaced(engine: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """A new field adds columns at the end of the views; a new tag moves columns, which
    PostgreSQL only allows by dropping the view (and the named rollups on it, made again)."""
    url = (f"duckdb:///{tmp_path / 'grow.duckdb'}" if engine == "duckdb"
           else str(request.getfixturevalue("pg_url")))
    rollups = {"rig_hourly": {"tier": "1hour"}}
    versions = [
        {"name": "rig", "tags": ["id"], "fields": {"a": {"kind": "gauge"}}, "rollups": rollups},
        {"name": "rig", "tags": ["id"], "fields": {"a": {"kind": "gauge"},
                                                   "b": {"kind": "gauge"}}, "rollups": rollups},
        {"name": "rig", "tags": ["id", "site"], "fields": {"a": {"kind": "gauge"},
                                                           "b": {"kind": "gauge"}},
         "rollups": rollups},
    ]
    for number, document in enumerate(versions):
        profile = parse_profile(document, f"rig v{number + 1}")
        store = open_store(url, StoreOptions(profiles={"rig": profile}, timezone=ZONE))
        try:
            for tier in ROLLUP_TIERS:
                got = store.read_sql(f"SELECT * FROM rig_{tier}").table.column_names
                assert got == [c for c, _ in tier_columns(profile, tier)], (number, tier)
            hourly = store.read_sql("SELECT * FROM rig_hourly").table.column_names
            assert hourly == [c for c, _ in tier_columns(profile, "1hour")], number
        finally:
            store.close()


def test_time_literals_mean_the_same_instant_on_every_engine(
        filled: tuple[SqlStore, int]) -> None:
    """A literal with an offset is that instant; one without is UTC (the session zone)."""
    store, newest = filled
    since = tier_floor("1hour", newest, TZ) - 1800
    with_offset = datetime.fromtimestamp(since, TZ).strftime("%Y-%m-%d %H:%M:%S%z")
    in_utc = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%S")
    for tier in ("1s", "5min"):
        table = store.read_sql(f"SELECT time FROM {PS100}_{tier}").table
        expected = sum(1 for r in _epochs(table) if r["time"] >= since)
        for literal in (f"TIMESTAMPTZ '{with_offset}'", f"TIMESTAMP '{in_utc}'"):
            counted = store.read_sql(f"SELECT COUNT(*) FROM {PS100}_{tier} WHERE time >= "
                                     f"{literal}").rows()[0][0]
            assert counted == expected > 0, (tier, literal)


def test_duckdb_user_sql_runs_in_utc_whatever_the_machine_zone(tmp_path: Path) -> None:
    """``NOW()`` windows over the UTC TIMESTAMPs of a DuckDB store count the right rows on a
    machine (or container) whose zone is not UTC. The data leaves an hour out, so a window
    shifted by a zone's offset (−4 h, +5:30 h) counts other rows."""
    db = tmp_path / "store.duckdb"
    store = _open(f"duckdb:///{db}")
    now = int(time.time())
    collect(store, now - 3 * 3600, now - 2 * 3600)
    collect(store, now - 1800, now - 60)
    recent = store.read_sql(f"SELECT COUNT(*) FROM {PS100}_1s WHERE time >= TIMESTAMP "
                            f"'{datetime.fromtimestamp(now - 1800, UTC):%Y-%m-%d %H:%M:%S}'"
                            ).rows()[0][0]
    store.close()
    for zone in ("America/New_York", "Asia/Kolkata"):
        out = cli("sql", f"SELECT COUNT(*) AS n FROM {PS100}_1s WHERE time > NOW() - "
                  "INTERVAL '1 hour'", "--db", str(db), "--format", "csv",
                  env={"TZ": zone}).stdout.split()
        assert out == ["n", str(recent)], zone
        daily = cli("sql", f"SELECT day, time AT TIME ZONE '{ZONE}' AS local FROM "
                    f"{PS100}_daily", "--db", str(db), "--format", "json",
                    env={"TZ": zone}).stdout
        assert "T00:00:00" in daily, zone
    with duckdb.connect(str(db), read_only=True) as other:   # another client, another zone
        other.execute("SET TimeZone = 'America/New_York'")
        rows = other.execute(f"SELECT day, time AT TIME ZONE '{ZONE}' FROM {PS100}_daily"
                             ).fetchall()
    assert rows and all(local == datetime(d.year, d.month, d.day) for d, local in rows)
