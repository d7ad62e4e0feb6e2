"""The TimescaleDB layout in CI, on PGlite (PostgreSQL 17 in WASM with TimescaleDB 2.23).

CI has no TimescaleDB server (``test_timescale.py`` skips there), but it has Node.js, and npm
has PGlite built with TimescaleDB (``tests/pglite_server.py``). What it can show runs here:
``setup``'s schema for every built-in profile (hypertables, hierarchical continuous aggregates,
policies and the retention job as rows), the aggregates against the sums of the 1 s rows after
the code's own refresh, the refresh windows and retention of issue 15 (points 8 and 9) through
explicit ``CALL refresh_continuous_aggregate`` and ``drop_chunks``, and the upstream SQL.

What it cannot: COPY (rows go in with INSERT here, so not through ``PostgresStore.write``),
background workers (policies never run by themselves: the tests run their windows), a second
connection while one is open. Each test works in a schema of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from sunarchive.profiles import load_profiles
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ROLLUP_TIERS, TIER_SOURCE, local_day_start
from sunarchive.storage.postgres import timescale
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.storage.postgres.user_sql import ReaderRole

try:
    from pglite_server import drop_schema, fresh_schema
except ImportError:  # tests/ imported as a package
    from tests.pglite_server import drop_schema, fresh_schema

PROFILES = load_profiles(None)
PS100 = PROFILES["ps100_readings"]
UPSTREAM_SQL = Path(__file__).parent / "data" / "upstream-sql"
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
        chunks = dict(con.execute(
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
    assert retention == [{"measurement": "health_checks", "tiers": [
        {"relation": "health_checks_1s", "keep_days": 90.0, "read_by": ["health_checks_5min"]}]}]
    assert set_up(pglite_url, PROFILES, "Europe/Berlin") == []   # idempotent


def materialized_name(con: Con, view: str) -> str:
    return str(con.execute("SELECT materialization_hypertable_name FROM "
                           "timescaledb_information.continuous_aggregates "
                           "WHERE view_name = %s", [view]).fetchall()[0][0])


def span(text: str) -> timedelta:
    """'6 hours', '1 week' ... as a timedelta."""
    count, unit = text.split()
    return timedelta(**{unit if unit.endswith("s") else unit + "s": int(count)})
