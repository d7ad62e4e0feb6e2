"""TimescaleDB layout against a real TimescaleDB (``SUNARCHIVE_TEST_TIMESCALE_URL``).

Hypertables with the profile's chunk interval, hierarchical continuous aggregates with
real-time aggregation and refresh policies, compression, backfill into compressed chunks,
retention ordering, background jobs succeeding, and the CLI showing all of it. Without a
TimescaleDB server every test here is skipped, saying why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from sunarchive.model import SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.storage.postgres import timescale
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.upstream.homepot import schema as homepot_schema
from tests.support.cli import cli

pytestmark = pytest.mark.integration

PROFILES = load_profiles(None)
PS100 = "ps100_readings"
TAGS: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}


@pytest.fixture
def store(timescale_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(timescale_url, PROFILES, timezone="Europe/Berlin")
    opened.setup()
    for sid, tags in TAGS.items():
        opened.add_series(SeriesKey(PS100, tags), sid)
    yield opened
    opened.close()


def rows(start_s: int, seconds: int, power_w: float = 90.0) -> StatsRows:
    times = np.repeat(np.arange(start_s, start_s + seconds, dtype=np.int64), 2)
    n = len(times)
    noise = np.random.default_rng(start_s).normal(0, 0.5, n).round(2)
    return StatsRows(PS100, times, np.tile(np.array([1, 2], np.int32), seconds), {
        "voltage_avg": 40.0 + noise, "voltage_min": 39.0 + noise, "voltage_max": 41.0 + noise,
        "voltage_stddev": np.full(n, 0.5), "voltage_count": np.full(n, 10.0),
        "power_avg": power_w + noise, "power_min": np.full(n, power_w - 5),
        "power_max": np.full(n, power_w + 5), "power_stddev": np.full(n, 1.0),
        "power_count": np.full(n, 10.0), "energy_wh": np.full(n, power_w / 3600),
        "sample_count": np.full(n, 10.0), "covered_s": np.ones(n)})


def one(store: PostgresStore, sql: str) -> list[tuple[object, ...]]:
    return store.sql(sql).rows()


def test_layout_hypertables_aggregates_policies(store: PostgresStore) -> None:
    assert store.layout == "timescaledb"
    intervals = {str(name): str(interval) for name, interval in one(
        store, "SELECT hypertable_name, time_interval::TEXT FROM "
               "timescaledb_information.dimensions")}
    assert intervals["ps100_readings_1s"] == "1 day"
    assert intervals["health_checks_1s"] == "7 days"
    aggs = {r[0]: r for r in one(store, "SELECT view_name, materialized_only, hypertable_name "
                                        "FROM timescaledb_information.continuous_aggregates")}
    for tier in ("5min", "1hour", "daily"):
        assert aggs[f"ps100_readings_{tier}"][1] is False   # real-time aggregation on
    # hierarchical: 1hour and daily read the 5-minute aggregate, not the raw table
    five_mat = one(store, "SELECT materialization_hypertable_name FROM "
                          "timescaledb_information.continuous_aggregates "
                          "WHERE view_name = 'ps100_readings_5min'")[0][0]
    assert aggs["ps100_readings_1hour"][2] == five_mat
    assert aggs["ps100_readings_daily"][2] == five_mat
    assert aggs["ps100_readings_5min"][2] == "ps100_readings_1s"
    jobs = one(store, "SELECT proc_name, hypertable_name, config::TEXT FROM "
                      "timescaledb_information.jobs WHERE job_id >= 1000")
    procs = [j[0] for j in jobs]
    # three tiers of every profile, and HOMEPOT's aggregates (device/site metrics)
    assert procs.count("policy_refresh_continuous_aggregate") == \
        3 * len(PROFILES) + len(homepot_schema.aggregate_names())
    kept = {str(p.view) for p in PROFILES.values() if p.view_hypertable}   # health_checks …
    compressed = {j[1] for j in jobs if j[0] == "policy_compression"}
    assert compressed == {p.table("1s") for p in PROFILES.values()} | kept
    retention = [json.loads(str(j[2])) for j in jobs if j[0] == "sunarchive_retention"]
    assert [r["measurement"] for r in retention] == ["health_checks"]
    assert retention[0]["tiers"][0] == {"relation": "health_checks_1s", "keep_days": 90.0,
                                        "read_by": ["health_checks_5min"],
                                        "policy_reach_s": 6 * 3600 + 300}
    assert store.setup() == []   # idempotent


def test_daily_aggregate_buckets_by_local_day(store: PostgresStore) -> None:
    # 23:30 UTC on 20 June is 01:30 on 21 June in Berlin
    start = int(datetime(2026, 6, 20, 23, 30, tzinfo=UTC).timestamp())
    store.write(rows(start, 600), StatsRows.empty(PS100), TAGS)
    daily = one(store, "SELECT time, day, SUM(energy_wh) FROM ps100_readings_daily "
                       "GROUP BY time, day")
    assert len(daily) == 1
    bucket, day, energy = daily[0]
    assert str(day) == "2026-06-21"
    assert bucket.replace(tzinfo=UTC) == datetime(2026, 6, 20, 22, tzinfo=UTC)  # type: ignore[attr-defined]
    assert float(energy) == pytest.approx(2 * 600 * 90 / 3600)  # type: ignore[arg-type]


def test_reads_split_at_the_watermark_equal_the_real_time_view(store: PostgresStore) -> None:
    """``query_tier`` takes buckets below an aggregate's watermark from its materialized
    hypertable and aggregates the rest itself; every tier equals TimescaleDB's own real-time
    view before any refresh, with part of the range refreshed, and with all of it."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) \
        - timedelta(days=20)
    start = int(day.timestamp()) + 9 * 3600
    store.write(rows(start, 2 * 3600), StatsRows.empty(PS100), TAGS)
    lo, hi = int(day.timestamp()) - 86400, int(day.timestamp()) + 2 * 86400

    def same_as_view() -> list[int | None]:
        for tier in ("5min", "1hour", "daily"):
            ours = store.query_tier(PS100, tier, lo, hi, {}, None)
            view = store.sql(f"SELECT * FROM ps100_readings_{tier} WHERE time >= "
                             f"to_timestamp({lo}) AND time < to_timestamp({hi}) "
                             "ORDER BY time, panel_id").table
            assert ours.num_rows == view.num_rows > 0, tier
            for name in ours.column_names:
                got, want = ours.column(name).to_pylist(), view.column(name).to_pylist()
                if name in ("time", "day", "panel_id"):
                    assert got == want, (tier, name)
                else:
                    assert np.allclose(np.array(got, float), np.array(want, float),
                                       rtol=1e-9, equal_nan=True), (tier, name)
        return [store._materialized(PROFILES[PS100], t)[1] for t in ("5min", "1hour")]

    assert same_as_view() == [None, None]                        # all of it real-time
    store.refresh(PS100, start, start + 3600)                    # the first hour only
    watermark_5min, _ = same_as_view()
    assert watermark_5min is not None and start < watermark_5min < start + 2 * 3600
    store.refresh(PS100, start, start + 2 * 3600)
    assert same_as_view()[0] == start + 2 * 3600


def test_backfill_into_compressed_chunks_refreshes_aggregates(store: PostgresStore) -> None:
    day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) \
        - timedelta(days=10)
    start = int(day.timestamp())
    store.write(rows(start, 3600), StatsRows.empty(PS100), TAGS)
    store.rollup(PS100, None)                    # refreshes the written window
    compressed = store.compress(7 * 86400)
    assert compressed, "the 10-day-old chunk was not compressed"
    chunks = store.chunks("ps100_readings_1s")
    assert any(c["compressed"] for c in chunks)
    before = one(store, f"SELECT SUM(energy_wh) FROM ps100_readings_1hour "
                        f"WHERE time = '{day.isoformat()}'")[0][0]
    # late data for an old, compressed second: merged (DELETE + INSERT in the chunk) …
    late = rows(start + 60, 1, power_w=900.0)
    assert store.write(StatsRows.empty(PS100), late, TAGS)
    store.rollup(PS100, None)                    # … and the aggregates are refreshed
    merged = one(store, f"SELECT sample_count, power_max FROM ps100_readings_1s WHERE "
                        f"time = '{datetime.fromtimestamp(start + 60, UTC).isoformat()}' "
                        f"AND series_id = 1")
    assert merged == [(20, 905.0)]
    after = one(store, f"SELECT SUM(energy_wh), MAX(power_max) FROM ps100_readings_1hour "
                       f"WHERE time = '{day.isoformat()}'")[0]
    assert float(after[0]) == pytest.approx(float(before) + 2 * 900 / 3600)  # type: ignore[arg-type]
    assert after[1] == 905.0
    status = store.status()["timescaledb"]
    ps = next(h for h in status["hypertables"] if h["hypertable"] == "ps100_readings_1s")
    assert ps["compressed_chunks"] >= 1 and ps["before_bytes"] > 0 and ps["after_bytes"] > 0


def test_background_jobs_succeed(store: PostgresStore, timescale_url: str) -> None:
    start = int((datetime.now(UTC) - timedelta(hours=2)).timestamp())
    store.write(rows(start, 1800), StatsRows.empty(PS100), TAGS)
    with psycopg.connect(timescale_url, autocommit=True) as con:
        job_ids = [r[0] for r in con.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE job_id >= 1000 AND "
            "(hypertable_name LIKE 'ps100%%' OR proc_name = 'sunarchive_retention')"
            ).fetchall()]
        assert len(job_ids) == 5   # three refresh policies, compression, retention
        asked = con.execute("SELECT now()").fetchone()
        assert asked is not None
        for job_id in job_ids:
            con.execute("SELECT alter_job(%s, next_start => now())", [job_id])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            stats = con.execute("SELECT job_id, last_run_status, total_runs, total_failures "
                                "FROM timescaledb_information.job_stats WHERE job_id = ANY(%s)"
                                " AND job_status <> 'Running' AND last_run_started_at >= %s",
                                [job_ids, asked[0]]).fetchall()
            if len(stats) == len(job_ids) and all(s[2] and s[1] for s in stats):
                break
            time.sleep(1)
    assert {s[1] for s in stats} == {"Success"}, stats
    assert all(s[3] == 0 for s in stats), stats
    materialized = one(store, "SELECT COUNT(*) FROM _timescaledb_internal."
                              + '"' + str(one(store, "SELECT materialization_hypertable_name "
                                  "FROM timescaledb_information.continuous_aggregates WHERE "
                                  "view_name = 'ps100_readings_5min'")[0][0]) + '"')[0][0]
    assert int(str(materialized)) > 0   # the 5-minute policy materialized the recent rows


def test_retention_job_never_drops_unmaterialized_raw_data(store: PostgresStore) -> None:
    health = PostgresStore(store.url, PROFILES, timezone="Europe/Berlin")
    health.setup()
    key = SeriesKey("health_checks", ("dev1", "site1"))
    health.add_series(key, 7)
    old = int((datetime.now(UTC) - timedelta(days=120)).timestamp())
    n = 600
    cols = {c.name: np.full(n, 1.0) for c in PROFILES["health_checks"].stats_columns()}

    def batch(start_s: int) -> StatsRows:
        return StatsRows("health_checks", np.arange(start_s, start_s + n, dtype=np.int64),
                         np.full(n, 7, np.int32), cols)

    # two batches, both older than the 90-day retention, two weekly chunks apart
    health.write(batch(old), StatsRows.empty("health_checks"), {7: key.tags})
    health.write(batch(old + 14 * 86400), StatsRows.empty("health_checks"), {7: key.tags})
    count = "SELECT COUNT(*) FROM health_checks_1s"
    health.apply_retention(datetime.now(UTC))      # old, but never materialized: kept
    assert one(health, count)[0][0] == 2 * n
    health.rollup("health_checks", None)          # refresh materializes them …
    with psycopg.connect(health.url) as con:
        chunks = con.execute("SELECT EXTRACT(EPOCH FROM range_start)::BIGINT, "
                             "EXTRACT(EPOCH FROM range_end)::BIGINT FROM "
                             "timescaledb_information.chunks WHERE hypertable_name = "
                             "'health_checks_1s' AND hypertable_schema = current_schema()"
                             ).fetchall()
    health.apply_retention(datetime.now(UTC))
    # … so the chunks wholly behind the aggregate's watermark go; the one holding the
    # watermark stays until the aggregate has moved past it (a refresh policy running in
    # the background may have moved it to now: then both go)
    with psycopg.connect(health.url) as con:
        [(_, watermark)] = con.execute(timescale.MATERIALIZATION_SQL,
                                       ["health_checks_5min"]).fetchall()
    assert int(str(watermark)) >= old + 14 * 86400 + n   # both batches are materialized
    cutoff = min(int(str(watermark)), int(time.time()) - 90 * 86400)
    written = np.concatenate([np.arange(old, old + n), np.arange(old + 14 * 86400,
                                                                 old + 14 * 86400 + n)])
    kept = sum(int(((written >= lo) & (written < hi)).sum()) for lo, hi in chunks
               if hi > cutoff)
    assert len(chunks) > 0 and one(health, count)[0][0] == kept
    five = one(health, "SELECT SUM(sample_count) FROM health_checks_5min")[0][0]
    assert int(str(five)) == 2 * n                # the rollups keep what the raw rows said
    health.close()


def test_cli_shows_the_machinery(timescale_url: str, tmp_path: Path) -> None:
    common = ["--database-url", timescale_url]
    cli("demo", *common, "--panels", "2", "--speed", "0", "--duration", "600", "--start",
        "2026-06-21T10:00:00+02:00", "--no-console", cwd=tmp_path)
    info = json.loads(cli("status", *common, "--json", cwd=tmp_path).stdout)
    ts = info["timescaledb"]
    assert ts["extension"].startswith("timescaledb 2.")
    assert any(h["hypertable"] == "ps100_readings_1s" and h["chunks"] >= 1
               for h in ts["hypertables"])
    procs = {j["proc"] for j in ts["jobs"]}
    assert procs >= {"policy_refresh_continuous_aggregate", "policy_compression"}
    text = cli("status", *common, cwd=tmp_path).stdout
    assert "background jobs" in text and "hypertables" in text
    out = cli("compress", *common, "--older-than", "1d", cwd=tmp_path).stdout
    assert "compressed" in out
    chunks = json.loads(cli("chunks", "ps100_readings_1s", *common, "--json",
                            cwd=tmp_path).stdout)
    assert chunks and all(c["compressed"] for c in chunks)   # June is long past
    # repair: a dropped policy comes back with create-aggregates
    with psycopg.connect(timescale_url, autocommit=True) as con:
        con.execute("SELECT remove_continuous_aggregate_policy('ps100_readings_1hour')")
    repaired = cli("create-aggregates", *common, cwd=tmp_path).stdout
    assert "refresh policy on ps100_readings_1hour" in repaired
    refreshed = cli("refresh", *common, "--measurement", PS100, "--start",
                    "2026-06-21T00:00:00Z", "--end", "2026-06-22T00:00:00Z", cwd=tmp_path)
    assert "rollups refreshed" in refreshed.stdout


ON_GRID = ("SELECT COUNT(*) FILTER (WHERE voltage_avg * 1024 <> round(voltage_avg * 1024)), "
           "COUNT(*) FILTER (WHERE voltage_avg <> round(voltage_avg::NUMERIC, 3)), COUNT(*) "
           "FROM ps100_readings_1s WHERE voltage_avg IS NOT NULL")
"""Rows off the binary grid (1/1024 V), rows off the decimal grid (mV), rows."""


@pytest.mark.parametrize("grid", ["binary", "decimal"])
def test_collector_stores_statistics_on_the_configured_grid(timescale_url: str, tmp_path: Path,
                                                            grid: str) -> None:
    env = {} if grid == "binary" else {"SUNARCHIVE_TIMESCALEDB_VALUE_GRID": "decimal"}
    cli("demo", "--database-url", timescale_url, "--panels", "2", "--speed", "0",
        "--duration", "120", "--start", "2026-06-21T10:00:00+02:00", "--no-console",
        cwd=tmp_path, env=env)
    with psycopg.connect(timescale_url) as con:
        row = con.execute(ON_GRID).fetchone()
    assert row is not None
    off_binary, off_decimal, total = (int(v) for v in row)
    assert total >= 2 * 100
    if grid == "binary":   # the default on TimescaleDB: Gorilla keeps only the changing bits
        assert off_binary == 0 and off_decimal > total // 2
    else:
        assert off_decimal == 0 and off_binary > total // 2


def test_health_checks_hypertable_follows_every_import(timescale_url: str,
                                                       tmp_path: Path) -> None:
    """HOMEPOT's ``health_checks`` is a hypertable (storage/postgres/view_tables.py) equal to
    what the 1 s tier gives after each write through ``sunarchive import`` (COPY and the
    writer's batches): the first import, the same file again, and checks that arrive late
    into seconds already stored (merged there)."""
    from sunarchive.rollup import POSTGRES
    from sunarchive.storage.plain_views import view_select
    from tests.support.homepot_data import HomepotData

    health = PROFILES["health_checks"]
    order = ' ORDER BY "timestamp", device_id'

    def in_step(con: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
        table = con.execute("SELECT * FROM health_checks" + order).fetchall()
        derived = con.execute(f"SELECT * FROM ({view_select(health, POSTGRES)}) AS v"
                              + order).fetchall()
        assert table == derived
        return table

    data = HomepotData(int(time.time()), hours=4)
    path = tmp_path / "checks.lp"
    path.write_text(data.line_protocol())
    cli("import", "--database-url", timescale_url, str(path), "--precision", "s")
    with psycopg.connect(timescale_url, autocommit=True) as con:
        first = in_step(con)
        assert len(first) == len(data.checks)
        assert con.execute("SELECT COUNT(*) FROM timescaledb_information.chunks WHERE "
                           "hypertable_name = 'health_checks'").fetchall()[0][0] >= 1
    cli("import", "--database-url", timescale_url, str(path), "--precision", "s")
    late = data.of(123)[0]
    path.write_text(f"health_checks,device_id=123,site_id={late.site_id} cpu_percent=1.5 "
                    f"{late.time_s}\n")
    cli("import", "--database-url", timescale_url, str(path), "--precision", "s")
    with psycopg.connect(timescale_url, autocommit=True) as con:
        last = in_step(con)
        assert len(last) == len(first) and last != first   # the late check merged in
        cpu = con.execute("SELECT cpu_percent FROM health_checks WHERE device_id = 123 AND "
                          '"timestamp" = to_timestamp(%s)', [late.time_s]).fetchall()
        assert cpu == [(pytest.approx((late.fields["cpu_percent"] + 1.5) / 2),)]
