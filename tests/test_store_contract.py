"""The storage contract, run against every engine: DuckDB and a real plain PostgreSQL.

The same scenarios go through the same reducer into each engine; every tier must equal the
naive reference (and so the engines equal each other). PostgreSQL runs on a throwaway server
started for the session (or ``SUNARCHIVE_TEST_PG_URL``), a fresh database per store.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from sunarchive.model import Event, SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.profiles.spec import NamedRollup, Profile
from sunarchive.storage import capabilities
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.pg_server import drop_database, fresh_database
from tests.support.reference import (
    NS,
    EngineStore,
    Harness,
    RawSample,
    differences,
    reference_rows,
    same_value,
)
from tests.support.scenarios import (
    LATENESS_S,
    ZONES,
    Scenario,
    feed,
    make_profile,
    scenario_samples,
    scenarios,
    utc,
)
from tests.support.stats_rows import stats_rows

pytestmark = pytest.mark.engine

ENGINES = ["duckdb", "postgres", "timescaledb"]
TIMESCALE_ENV = "SUNARCHIVE_TEST_TIMESCALE_URL"
Opener = Callable[..., EngineStore]


class Stores:
    """Opens stores of one engine (fresh file or fresh database each) and closes them all."""

    def __init__(self, engine: str, folder: Path, pg_server_url: str | None) -> None:
        """``pg_server_url``: the PostgreSQL (or TimescaleDB) server for those engines."""
        self.engine, self.folder, self.pg_server_url = engine, folder, pg_server_url
        self.opened: list[EngineStore] = []
        self.databases: list[str] = []

    def open(self, profiles: dict[str, Profile], zone: str = "UTC",
             retention: dict[str, float | None] | None = None) -> EngineStore:
        store: EngineStore
        if self.engine == "duckdb":
            path = self.folder / f"s{len(self.opened)}.duckdb"
            store = DuckDBStore(path, profiles, timezone=zone, retention_days=retention)
        else:
            assert self.pg_server_url is not None
            url = fresh_database(self.pg_server_url)
            self.databases.append(url)
            store = PostgresStore(url, profiles, timezone=zone, retention_days=retention)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()
        for url in self.databases:
            drop_database(url)


def server_for(engine: str, request: pytest.FixtureRequest) -> str | None:
    if engine == "postgres":
        return str(request.getfixturevalue("pg_server_url"))
    if engine == "timescaledb":
        url = os.environ.get(TIMESCALE_ENV)
        if not url:
            pytest.skip(f"{TIMESCALE_ENV} is not set: no TimescaleDB server to run the "
                        "contract against (TimescaleDB is in no package registry CI reaches)")
        return url
    return None


@pytest.fixture(params=ENGINES)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    opened = Stores(request.param, tmp_path, server_for(request.param, request))
    yield opened
    opened.close()


# -- every tier equals the reference on every engine -------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sc=scenarios)
def test_every_tier_matches_reference(engine: str, sc: Scenario,
                                      tmp_path_factory: pytest.TempPathFactory,
                                      request: pytest.FixtureRequest) -> None:
    opened = Stores(engine, tmp_path_factory.mktemp(engine), server_for(engine, request))
    profile = make_profile(sc.max_gap_s)
    samples = scenario_samples(sc)
    harness = Harness(profile, opened.folder, zones=ZONES, series=range(len(sc.modes)),
                      lateness_s=LATENESS_S,
                      open_store=lambda p, zone: opened.open({p.name: p}, zone))
    try:
        feed(harness, samples, sc)
        assert differences(reference_rows(profile, samples, "1s"), harness.rows("1s")) == []
        for zone in ZONES:
            for tier in ("5min", "1hour", "daily"):
                want = reference_rows(profile, samples, tier, zone)
                assert differences(want, harness.rows(tier, zone)) == [], (engine, tier, zone)
    finally:
        opened.close()


def test_late_samples_merge_and_rollups_refresh(stores: Stores) -> None:
    """A sample later than the allowance is merged into its stored second; the materialized
    5-minute, hourly and daily rows are recomputed from the merged rows."""
    profile = make_profile(5.0)
    base = utc(2026, 5, 4, 12, 0) * NS - 20 * NS
    rng = random.Random(11)

    def sample(t: int, volts: float) -> RawSample:
        return RawSample(0, t, {"volts": volts, "watts": 100.0, "today": None,
                                "lifetime": None, "mode": None, "alarm": None})

    on_time = [sample(base + k * NS // 10, round(rng.uniform(220, 240), 2)) for k in range(300)]
    harness = Harness(profile, stores.folder, lateness_s=LATENESS_S,
                      open_store=lambda p, zone: stores.open({p.name: p}, zone))
    for second in range(30):
        harness.add(on_time[second * 10:(second + 1) * 10])
        harness.close()
    late = [sample(base + 5 * NS + 33_000_000, 999.0), sample(base + 12 * NS + 7_000_000, 1.5)]
    harness.add(late)
    assert harness.close().too_late_samples == 2
    harness.close(final=True)
    every = on_time + late
    got = harness.rows("1s")
    assert got[(0, base // NS + 5)]["volts_max"] == 999.0
    assert got[(0, base // NS + 5)]["sample_count"] == 11
    for tier in ("5min", "1hour", "daily"):
        want = reference_rows(profile, every, tier)
        cols = {c for row in want.values() for c in row if c.startswith("volts_")}
        trimmed = {k: {c: v for c, v in r.items() if c in cols} for k, r in want.items()}
        assert differences(trimmed, harness.rows(tier)) == [], tier


def test_a_corrected_point_replaces_its_seconds_and_rollups(stores: Stores) -> None:
    """A point written again with other values after its second was stored replaces it: the
    seconds it touches are recomputed and every tier equals that of the corrected stream."""
    profile = make_profile(5.0)
    base = utc(2026, 5, 4, 12, 0) * NS - 20 * NS
    rng = random.Random(12)

    def sample(t: int, volts: float, watts: float) -> RawSample:
        return RawSample(0, t, {"volts": volts, "watts": watts, "today": None,
                                "lifetime": None, "mode": None, "alarm": None})

    stream = [sample(base + k * NS // 10, round(rng.uniform(220, 240), 2),
                     round(rng.uniform(90, 110), 2)) for k in range(300)]
    harness = Harness(profile, stores.folder, lateness_s=LATENESS_S,
                      open_store=lambda p, zone: stores.open({p.name: p}, zone))
    for second in range(30):
        harness.add(stream[second * 10:(second + 1) * 10])
        harness.close()
    corrected = [sample(stream[k].time_ns, 999.0, 500.0) for k in (53, 54, 120)]
    harness.add(corrected)
    result = harness.close()
    assert (result.too_late_samples, result.duplicates) == (0, 3)
    harness.close(final=True)
    final = {s.time_ns: s for s in stream} | {s.time_ns: s for s in corrected}
    every = [final[t] for t in sorted(final)]
    assert harness.rows("1s")[(0, base // NS + 5)]["sample_count"] == 10
    for tier in ("1s", "5min", "1hour", "daily"):
        assert differences(reference_rows(profile, every, tier), harness.rows(tier)) == [], tier


# -- series, events, batches, schema -----------------------------------------------------------
PS100 = "ps100_readings"


def _ps100_store(stores: Stores, **kwargs: object) -> EngineStore:
    profiles = {PS100: load_profiles(None)[PS100]}
    store = stores.open(profiles, **kwargs)  # type: ignore[arg-type]
    store.setup()
    for i in (1, 2):
        store.add_series(SeriesKey(PS100, (f"panel_{i}",)), i)
    return store


def test_setup_is_idempotent(stores: Stores) -> None:
    store = stores.open({PS100: load_profiles(None)[PS100]})
    first = store.setup()
    assert any("ps100_readings_1s" in change for change in first)
    again = store.setup()
    assert [c for c in again if "partition" not in c] == []


def test_series_and_events_round_trip(stores: Stores) -> None:
    store = _ps100_store(stores)
    store.add_series(SeriesKey(PS100, ("panel_1",)), 1)  # again: no error, no duplicate
    assert store.load_series() == {SeriesKey(PS100, ("panel_1",)): 1,
                                   SeriesKey(PS100, ("panel_2",)): 2}
    store.write_events([Event(1_780_000_000.25, "gap", PS100, "no data for 12 s", 2,
                              1_780_000_012.25)])
    events = list(store.event_rows())
    assert len(events) == 1 and events[0]["kind"] == "gap" and events[0]["series_id"] == 2
    assert events[0]["time"].replace(tzinfo=UTC).timestamp() == pytest.approx(1_780_000_000.25)


def test_text_states_get_stable_codes(stores: Stores) -> None:
    store = _ps100_store(stores)
    assert store.state_codes("ha", "state", ["on", "off", "on"]) == {"off": 0, "on": 1}
    assert store.state_codes("ha", "state", ["unavailable", "on"]) == {"unavailable": 2,
                                                                         "on": 1}
    assert store.state_codes("ha", "mode", ["heat"]) == {"heat": 0}
    assert store.state_labels() == {"ha": {"state": {0: "off", 1: "on", 2: "unavailable"},
                                           "mode": {0: "heat"}}}


def test_a_replayed_batch_is_written_once(stores: Stores) -> None:
    store = _ps100_store(stores)
    tags: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}
    start = 1_780_000_000
    empty = StatsRows.empty(PS100)
    assert store.write(stats_rows(PS100, start, 10, 2), empty, tags, batch_id=1)
    assert not store.write(stats_rows(PS100, start, 10, 2), empty, tags, batch_id=1)
    assert store.write(stats_rows(PS100, start + 10, 5, 2), empty, tags, batch_id=2)
    assert store.last_batch(PS100) == 2
    count = store.sql("SELECT COUNT(*) AS n FROM ps100_readings_1s").rows()[0][0]
    assert count == 30


def test_newest_second_follows_writes_and_merges(stores: Stores) -> None:
    """``last_time_s`` is the newest stored second: new rows move it, a merge of late rows
    into older seconds does not, and it equals ``MAX(time)`` of the 1 s table."""
    store = _ps100_store(stores)
    tags: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}
    start = 1_780_000_000
    empty = StatsRows.empty(PS100)
    assert store.last_time_s(PS100) is None
    store.write(stats_rows(PS100, start, 10, 2), empty, tags, batch_id=1)
    assert store.last_time_s(PS100) == start + 9
    store.write(stats_rows(PS100, start + 100, 1, 1), stats_rows(PS100, start + 3, 1, 1), tags,
                batch_id=2)
    newest = store.sql("SELECT MAX(time) AS t FROM ps100_readings_1s").rows()[0][0]
    assert store.last_time_s(PS100) == start + 100 == int(newest.replace(tzinfo=UTC)
                                                           .timestamp())
    store.write(empty, stats_rows(PS100, start + 5, 1, 2), tags, batch_id=3)
    assert store.last_time_s(PS100) == start + 100


def test_latest_rows_are_the_newest_of_each_series_in_the_window(stores: Stores) -> None:
    store = _ps100_store(stores)
    store.add_series(SeriesKey(PS100, ("panel_3",)), 3)
    tags: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",), 3: ("panel_3",)}
    start = 1_780_000_000
    empty = StatsRows.empty(PS100)
    store.write(stats_rows(PS100, start, 1, 3), empty, tags, batch_id=1)   # panel_3's only row
    store.write(stats_rows(PS100, start + 1000, 20, 2), empty, tags, batch_id=2)
    newer = stats_rows(PS100, start + 1030, 1, 1)
    newer.columns["power_avg"][:] = 77.0
    store.write(newer, empty, tags, batch_id=3)
    got = store.latest_rows(PS100, window_s=600).to_pylist()
    assert [r["panel_id"] for r in got] == ["panel_1", "panel_2"]   # panel_3: too old
    stamps = [int(r["time"].replace(tzinfo=UTC).timestamp()) for r in got]
    assert stamps == [start + 1030, start + 1019]
    assert got[0]["power_avg"] == 77.0 and got[1]["power_avg"] == 90.0
    assert "series_id" not in got[0]
    assert [r["panel_id"] for r in store.latest_rows(PS100, window_s=10).to_pylist()] == \
        ["panel_1"]


def test_latest_rows_find_a_series_quiet_for_longer_than_the_probe(stores: Stores) -> None:
    """A series whose newest row is older than the last seconds looked at first (but in the
    window) is still found: the probe widens to the window."""
    store = _ps100_store(stores)
    tags: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}
    for series_id, values in tags.items():
        store.add_series(SeriesKey(PS100, values), series_id)
    start, empty = 1_780_000_000, StatsRows.empty(PS100)
    store.write(stats_rows(PS100, start, 5, 2), empty, tags, batch_id=1)    # panel_2 then quiet
    store.write(stats_rows(PS100, start + 300, 5, 1), empty, tags, batch_id=2)
    got = store.latest_rows(PS100, window_s=600).to_pylist()
    assert [(r["panel_id"], int(r["time"].replace(tzinfo=UTC).timestamp())) for r in got] == \
        [("panel_1", start + 304), ("panel_2", start + 4)]
    assert [r["panel_id"] for r in store.latest_rows(PS100, window_s=100).to_pylist()] == \
        ["panel_1"]


def test_retention_keeps_what_rollups_still_need(stores: Stores) -> None:
    store = _ps100_store(stores, retention={"1s": 1.0, "5min": None, "1hour": None,
                                            "daily": None})
    tags: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}
    now = datetime(2026, 6, 21, 12, tzinfo=UTC)
    old = int(datetime(2026, 6, 18, 12, tzinfo=UTC).timestamp())
    later = int(datetime(2026, 6, 19, 13, tzinfo=UTC).timestamp())
    store.write(stats_rows(PS100, old, 600, 2), StatsRows.empty(PS100), tags)
    # nothing rolled up yet: the 1 s rows feed 5-minute buckets not materialized → kept
    store.apply_retention(now)
    assert store.sql("SELECT COUNT(*) FROM ps100_readings_1s").rows()[0][0] == 1200
    store.write(stats_rows(PS100, later, 60, 2), StatsRows.empty(PS100), tags)
    store.rollup(PS100, later)   # complete up to the 19th 13:00
    # rolled up past the 18th: its rows go (PostgreSQL and TimescaleDB drop whole day
    # partitions/chunks; the 19th is inside the retention period and stays)
    store.apply_retention(now)
    assert store.sql("SELECT COUNT(*) FROM ps100_readings_1s").rows()[0][0] == 120
    five = store.sql("SELECT SUM(energy_wh) AS e, COUNT(*) AS n FROM ps100_readings_5min "
                     "WHERE time < '2026-06-19 00:00:00'")
    energy, rows = five.rows()[0]
    assert rows == 4 and math.isclose(energy, 1200 * 0.025, rel_tol=1e-9)


UPSTREAM = [
    """SELECT panel_id, DATE(time) AS date, SUM(energy_wh) / 1000.0 AS daily_energy_kwh,
       AVG(power_avg) AS avg_power, MAX(power_max) AS peak_power
FROM ps100_readings_1s GROUP BY panel_id, DATE(time) ORDER BY date DESC, panel_id;""",
    """SELECT DATE_TRUNC('hour', time) AS hour, COUNT(DISTINCT panel_id) AS active_panels,
       SUM(power_avg) AS total_system_power, SUM(energy_wh) / 1000.0 AS hourly_energy_kwh
FROM ps100_readings_1s GROUP BY 1 ORDER BY hour DESC;""",
    "SELECT * FROM ps100_readings_5min WHERE time > NOW() - INTERVAL '24 hours';",
    "SELECT * FROM ps100_readings_daily WHERE time > NOW() - INTERVAL '30 days';",
    """SELECT panel_id, AVG(sample_count) AS avg_samples_per_second, MIN(sample_count),
MAX(sample_count) FROM ps100_readings_1s WHERE time > NOW() - INTERVAL '1 hour'
GROUP BY panel_id;""",
]


def test_upstream_queries_run_unchanged(stores: Stores) -> None:
    store = _ps100_store(stores)
    now = int(datetime.now(UTC).timestamp())
    start = now - now % 300 - 1800
    store.write(stats_rows(PS100, start, 1800, 2), StatsRows.empty(PS100),
                {1: ("panel_1",), 2: ("panel_2",)})
    store.rollup(PS100, start + 1800)
    daily, hourly, five, days, per_panel = (store.sql(q) for q in UPSTREAM)
    assert sum(r[2] for r in daily.rows()) == pytest.approx(2 * 1800 * 0.025 / 1000)
    assert {r[1] for r in hourly.rows()} == {2}
    assert len(five.rows()) == 2 * 6
    assert {"time", "panel_id", "energy_wh", "power_avg"} <= set(five.columns)
    assert {"time", "day", "panel_id", "energy_wh"} <= set(days.columns)
    assert sorted((r[0], float(r[1])) for r in per_panel.rows()) == [("panel_1", 10.0),
                                                                     ("panel_2", 10.0)]


NAMED_ROLLUPS = (NamedRollup("device_hourly", "1hour"), NamedRollup("device_daily", "daily"),
                 NamedRollup("site_hourly", "1hour", ("site_id",)))
"""Named rollups (profile key ``rollups``) the tests give health_checks: the ones its
profile had before HOMEPOT's columns (docs/upstream/homepot.md), under other names."""


def _health_store(stores: Stores, devices: dict[int, tuple[str, ...]]) -> EngineStore:
    """A store with the health_checks profile (and :data:`NAMED_ROLLUPS`) and ``devices``
    (id: device_id, site_id)."""
    profile = dataclasses.replace(load_profiles(None)["health_checks"], rollups=NAMED_ROLLUPS)
    store = stores.open({profile.name: profile})
    store.setup()
    for sid, tags in devices.items():
        store.add_series(SeriesKey(profile.name, tags), sid)
    return store


def test_named_and_group_by_tag_rollups(stores: Stores) -> None:
    """Named rollups device_hourly/_daily (per device) and site_hourly (all devices of a
    site merged: pooled mean and stddev, summed counts and increases)."""
    devices: dict[int, tuple[str, ...]] = {1: ("dev_a", "site_1"), 2: ("dev_b", "site_1"),
                                           3: ("dev_c", "site_2")}
    store = _health_store(stores, devices)
    profile = store.profiles["health_checks"]
    start = int(datetime(2026, 6, 20, 10, tzinfo=UTC).timestamp())
    seconds = 3600
    times = np.repeat(np.arange(start, start + seconds, dtype=np.int64), 3)
    ids = np.tile(np.array([1, 2, 3], np.int32), seconds)
    rng = np.random.default_rng(3)
    n = len(times)
    cols: dict[str, np.ndarray] = {c.name: np.full(n, np.nan)
                                   for c in profile.stats_columns()}
    cpu = (ids * 10.0 + rng.normal(0, 1, n)).round(2)
    cols.update(cpu_percent_avg=cpu, cpu_percent_min=cpu - 1, cpu_percent_max=cpu + 1,
                cpu_percent_stddev=np.full(n, 0.5), cpu_percent_count=np.full(n, 2.0),
                transactions_increase=np.full(n, 3.0), transactions_count=np.full(n, 1.0),
                sample_count=np.full(n, 2.0), covered_s=np.ones(n))
    store.write(StatsRows(profile.name, times, ids, cols), StatsRows.empty(profile.name),
                devices)
    store.rollup(profile.name, start + 2 * 86400)
    device = {r[0]: r[1:] for r in store.sql(
        "SELECT device_id, cpu_percent_avg, cpu_percent_count, transactions_increase "
        "FROM device_hourly").rows()}
    assert set(device) == {"dev_a", "dev_b", "dev_c"}
    assert device["dev_a"][0] == pytest.approx(cpu[ids == 1].mean(), rel=1e-9)
    sites = {r[0]: r[1:] for r in store.sql(
        "SELECT site_id, cpu_percent_avg, cpu_percent_stddev, cpu_percent_count, "
        "transactions_increase, sample_count FROM site_hourly").rows()}
    assert set(sites) == {"site_1", "site_2"}
    one_site = cpu[ids <= 2]
    pooled_var = 0.25 + one_site.var()       # within-second 0.5² plus spread of the means
    avg, std, count, increase, samples = sites["site_1"]
    assert avg == pytest.approx(one_site.mean(), rel=1e-9)
    assert std == pytest.approx(math.sqrt(pooled_var), rel=1e-6)
    assert (count, increase, samples) == (2 * 2 * seconds, 2 * 3.0 * seconds, 2 * 2 * seconds)
    daily = store.sql("SELECT COUNT(*) FROM device_daily").rows()[0][0]
    assert daily == 3


def test_meta_records_are_replaced_and_found_by_prefix(stores: Stores) -> None:
    store = _ps100_store(stores)
    many = {f"import:{i:04d}:ps100_readings": "2026-01-01T00:00:00" for i in range(1200)}
    store.put_meta(many)
    store.put_meta({"import:0007:ps100_readings": "2026-02-02T00:00:00",
                    "import_x": "not an import record"})
    found = store.meta_values("import:")
    assert len(found) == 1200
    assert found["import:0007:ps100_readings"] == "2026-02-02T00:00:00"
    assert store.meta_values("import_") == {"import_x": "not an import record"}


def test_tag_filtered_1s_reads_select_the_matching_series(stores: Stores) -> None:
    """A 1 s read filtered by tags returns exactly the rows of the series with those tag
    values (looked up as series ids, which the 1 s tier is indexed by), none for no match."""
    devices: dict[int, tuple[str, ...]] = {1: ("dev_a", "site_1"), 2: ("dev_b", "site_1"),
                                           3: ("dev_a", "site_2")}
    store = _health_store(stores, devices)
    profile = store.profiles["health_checks"]
    start = int(datetime(2026, 6, 20, 10, tzinfo=UTC).timestamp())
    seconds = 60
    times = np.repeat(np.arange(start, start + seconds, dtype=np.int64), 3)
    ids = np.tile(np.array([1, 2, 3], np.int32), seconds)
    cols: dict[str, np.ndarray] = {c.name: np.full(len(times), np.nan)
                                   for c in profile.stats_columns()}
    cols.update(cpu_percent_avg=ids * 10.0, cpu_percent_count=np.ones(len(times)),
                sample_count=np.ones(len(times)), covered_s=np.ones(len(times)))
    store.write(StatsRows(profile.name, times, ids, cols), StatsRows.empty(profile.name),
                devices)

    def read(where: dict[str, str]) -> list[tuple[str, str, float]]:
        table = store.query_tier(profile.name, "1s", start, start + seconds, where,
                                 ["cpu_percent_avg"])
        return sorted({(r["device_id"], r["site_id"], r["cpu_percent_avg"])
                       for r in table.to_pylist()})

    assert read({"device_id": "dev_a"}) == [("dev_a", "site_1", 10.0), ("dev_a", "site_2", 30.0)]
    assert read({"device_id": "dev_a", "site_id": "site_2"}) == [("dev_a", "site_2", 30.0)]
    assert read({"site_id": "site_1"}) == [("dev_a", "site_1", 10.0), ("dev_b", "site_1", 20.0)]
    assert read({"device_id": "dev_z"}) == []
    every = store.query_tier(profile.name, "1s", start, start + seconds,
                             {"site_id": "site_1"}, ["cpu_percent_avg"])
    assert every.num_rows == 2 * seconds


def test_a_read_of_some_columns_equals_those_columns_of_a_read_of_all(stores: Stores) -> None:
    """A tier read computes only the columns asked for (and what they merge from): every
    statistics column read alone, and each field's columns together, equal the same columns
    of a read of every column, over materialized buckets and open ones (never rolled up)."""
    profile = make_profile(5.0)
    base = utc(2026, 5, 4, 11, 50)
    rng = random.Random(13)
    harness = Harness(profile, stores.folder, series=range(2), lateness_s=LATENESS_S,
                      open_store=lambda p, zone: stores.open({p.name: p}, zone))
    for second in range(0, 1500, 10):   # 25 minutes across an hour boundary, at 1 Hz
        harness.add(RawSample(sid, (base + second + k) * NS + sid * 1000, {
            "volts": round(rng.uniform(220, 240), 2), "watts": round(rng.uniform(0, 500), 1),
            "today": float(second + k), "lifetime": float(9000 + second + k),
            "mode": float(second // 300 % 3), "alarm": float(second // 600 % 2)})
            for sid in (0, 1) for k in range(10))
        harness.close()
    store = harness.stores["UTC"]
    if capabilities.continuous_aggregates(store) is None:   # rollups the program maintains
        horizon = store.horizon(profile.name, "5min")
        assert horizon is not None and base < horizon < base + 1500   # some still open
    lo, hi = base - 86400, base + 86400
    for tier in ("1s", "5min", "1hour", "daily"):
        full = store.query_tier(profile.name, tier, lo, hi, {}, None).to_pylist()
        assert full, tier
        for spec in profile.fields:
            names = [c.name for c in spec.columns()]
            for wanted in [names, *([n] for n in names)]:
                part = store.query_tier(profile.name, tier, lo, hi, {}, wanted).to_pylist()
                assert len(part) == len(full), (tier, wanted)
                for got, want in zip(part, full, strict=True):
                    assert got["time"] == want["time"] and got["site"] == want["site"]
                    assert set(got) == {"time", "site", *(["day"] if tier == "daily" else []),
                                        *wanted}
                    assert all(same_value(want[n], got[n]) for n in wanted), (tier, wanted, got)


def test_a_read_of_no_named_columns_reads_them_all(stores: Stores) -> None:
    """An empty list of columns reads every column, as None does (the narrowing applies only
    to a read that names some)."""
    profile = make_profile(5.0)
    base = utc(2026, 5, 4, 11, 50)
    harness = Harness(profile, stores.folder, lateness_s=LATENESS_S,
                      open_store=lambda p, zone: stores.open({p.name: p}, zone))
    harness.add(RawSample(0, (base + k) * NS, {"volts": 230.0, "watts": 100.0, "today": None,
                                              "lifetime": None, "mode": None, "alarm": None})
                for k in range(600))
    harness.close()
    store = harness.stores["UTC"]
    every = store.query_tier(profile.name, "5min", base - 3600, base + 3600, {}, None)
    assert every.num_rows > 0
    assert store.query_tier(profile.name, "5min", base - 3600, base + 3600, {}, []) \
        .column_names == every.column_names
