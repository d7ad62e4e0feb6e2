"""Every upstream system's own SQL, verbatim, on DuckDB and plain PostgreSQL (issue 18).

Each block of tests/data/upstream-sql/*.sql whose ``-- engines:`` line names the engine runs
unchanged through sunarchive's own user SQL (``Reader.sql``: what ``sunarchive sql`` and
``/api/v1/sql`` run) against data written through a normal path relative to now, must return
rows, and its figures must equal sunarchive's own reads of the same data (``Reader.query``,
``Reader.latest``: the tiers, merged exactly). TimescaleDB runs the same blocks on PGlite in
tests/test_timescale_pglite.py.

Parametrized over (system, engine, block). Hoymiles: the bridge's line protocol through
``sunarchive import``. PS100: ``sunarchive demo`` through the collector and its write hook
(the derived columns ``power_peak``, ``efficiency_percent``, ``conditions_estimate``).

To add a system: give its file a writer in ``WRITERS`` (data through ``sunarchive import``, a
source, line protocol or the demo) and its blocks' checks in ``FIGURES``; blocks that cannot
run yet go in ``NOT_YET`` (strict xfails: a block that starts working must leave the list).
HOMEPOT: its health checks as line protocol through ``sunarchive import``; its
TimescaleDB-only blocks run in tests/test_timescale_pglite.py.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import pytest

import sunarchive
from sunarchive.profiles import load_profiles
from tests.support.cli import cli
from tests.support.homepot_data import DEVICES, HomepotData
from tests.support.pg_server import drop_database, fresh_database
from tests.support.serving import serve, stop
from tests.support.tier_rows import assert_same_rows
from tests.support.upstream_sql import Block, HoymilesData, PS100Demo, blocks

pytestmark = pytest.mark.integration

PROFILES = load_profiles()
TIMESCALE_URL = os.environ.get("SUNARCHIVE_TEST_TIMESCALE_URL")
ENGINES = ("duckdb", "postgres", *(("timescaledb",) if TIMESCALE_URL else ()))
"""A real TimescaleDB runs the blocks shared with PostgreSQL when
SUNARCHIVE_TEST_TIMESCALE_URL names one (its own blocks: tests/test_timescale_pglite.py)."""
PS100 = "ps100_readings"


@dataclass
class Site:
    """A store holding one upstream system's data, and what was written."""

    engine: str
    url: str
    args: list[str]
    data: Any
    folder: Path

    def reader(self) -> Any:
        return sunarchive.open_reader(self.url)

    def sql(self, text: str) -> list[dict[str, Any]]:
        with self.reader() as reader:
            rows: list[dict[str, Any]] = reader.sql(text).to_pylist()
        return rows


def write_hoymiles(site_args: list[str], folder: Path) -> HoymilesData:
    """What the Hoymiles bridge pushes, as its line protocol, through ``sunarchive import``."""
    data = HoymilesData(int(datetime.now(UTC).timestamp()))
    path = folder / "hoymiles.lp"
    path.write_text(data.line_protocol(PROFILES))
    report = json.loads(cli("import", *site_args, str(path), "--precision", "s", "--json")
                        .stdout.strip().splitlines()[-1])
    assert report["rejected"] == 0 and report["imported"] == len(data.points), report
    return data


def write_ps100(site_args: list[str], folder: Path) -> PS100Demo:
    """Half an hour of two simulated panels up to now, through the collector (``sunarchive
    demo``), so the PS100 write hook fills the derived columns; the site is where the sun is
    up now (a site in the dark has no efficiency)."""
    data = PS100Demo(int(time.time()))
    config = folder / "site.yaml"
    config.write_text(data.config_yaml())
    cli("demo", *site_args, *data.demo_options(config))
    return data


def write_homepot(site_args: list[str], folder: Path) -> HomepotData:
    """HOMEPOT's health checks as line protocol, through ``sunarchive import``."""
    data = HomepotData(int(datetime.now(UTC).timestamp()))
    path = folder / "homepot.lp"
    path.write_text(data.line_protocol())
    report = json.loads(cli("import", *site_args, str(path), "--precision", "s", "--json")
                        .stdout.strip().splitlines()[-1])
    assert report["rejected"] == 0 and report["imported"] == len(data.checks), report
    return data


WRITERS: dict[str, Callable[[list[str], Path], Any]] = {"hoymiles": write_hoymiles,
                                                        "ps100": write_ps100,
                                                        "homepot": write_homepot}
NOT_YET: dict[tuple[str, str, str], str] = {}
"""(system, engine, block): why it does not run there yet."""


@pytest.fixture(scope="module")
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Callable[[str, str], Site]]:
    """Each (system, engine) store made once per module, on first use, dropped at its end."""
    made: dict[tuple[str, str], Site] = {}
    databases: list[str] = []

    def get(system: str, engine: str) -> Site:
        if (system, engine) not in made:
            folder = tmp_path_factory.mktemp(f"{system}-{engine}")
            if engine == "duckdb":
                url = f"duckdb:///{folder / 'store.duckdb'}"
                args = ["--db", str(folder / "store.duckdb")]
            else:
                server = TIMESCALE_URL if engine == "timescaledb" else \
                    request.getfixturevalue("pg_server_url")
                url = fresh_database(str(server))
                databases.append(url)
                args = ["--database-url", url]
            made[(system, engine)] = Site(engine, url, args, WRITERS[system](args, folder),
                                          folder)
        return made[(system, engine)]

    yield get
    for url in databases:
        drop_database(url)


@pytest.fixture(params=ENGINES)
def hoymiles(request: pytest.FixtureRequest, stores: Callable[[str, str], Site]) -> Site:
    return stores("hoymiles", request.param)


@pytest.fixture(params=ENGINES)
def ps100(request: pytest.FixtureRequest, stores: Callable[[str, str], Site]) -> Site:
    return stores("ps100", request.param)


def cases() -> list[Any]:
    """(site, block) of every block of a file with a writer, on each engine it names."""
    out = []
    for block in blocks():
        if block.file not in WRITERS:
            continue
        for engine in ENGINES:
            if engine not in block.engines or (engine == "timescaledb"
                                               and "postgres" not in block.engines):
                continue
            why = NOT_YET.get((block.file, engine, block.name))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            out.append(pytest.param(block.file, engine, block, marks=marks,
                                    id=f"{block.file}-{engine}.{block.name}"))
    return out


@pytest.mark.parametrize(("system", "engine", "block"), cases())
def test_block_runs_unchanged_with_sunarchives_figures(
        stores: Callable[[str, str], Site], system: str, engine: str, block: Block) -> None:
    site = stores(system, engine)
    rows = site.sql(block.sql)
    assert rows, f"{block.name} returned no rows"
    FIGURES[(system, block.name)](site, rows)


# -- the TimescaleDB-only blocks on a real TimescaleDB ----------------------------------------
TIMESCALE_ONLY = [b for b in blocks("homepot") if b.engines == ("timescaledb",)]


def _hypertables(site: Site, rows: list[dict[str, Any]]) -> None:
    assert [(r["hypertable_name"], r["num_dimensions"]) for r in rows] == [("health_checks", 1)]


def _chunks(site: Site, rows: list[dict[str, Any]]) -> None:
    """The chunks of health_checks hold every check written (ranges cover each time)."""
    assert {r["hypertable_name"] for r in rows} == {"health_checks"}
    ranges = [(r["range_start"], r["range_end"]) for r in rows]
    for check in site.data.checks:
        at = datetime.fromtimestamp(check.time_s, UTC)
        assert any(lo <= at < hi for lo, hi in ranges), at


def _jobs(site: Site, rows: list[dict[str, Any]]) -> None:
    """HOMEPOT's schedules on its aggregates, and the retention job of health_checks."""
    refresh = {r["hypertable_name"]: r["schedule_interval"] for r in rows
               if r["proc_name"] == "policy_refresh_continuous_aggregate"}
    assert refresh["device_metrics_hourly"] == refresh["site_metrics_hourly"] == \
        timedelta(hours=1)
    assert refresh["device_metrics_daily"] == timedelta(hours=6)
    retention = [r["config"] for r in rows if r["proc_name"] == "sunarchive_retention"]
    relations = {t["relation"] for c in retention for t in c["tiers"]}
    assert {"health_checks_1s", "health_checks"} <= relations


def _job_stats(site: Site, rows: list[dict[str, Any]]) -> None:
    assert {"job_id", "last_run_status", "total_runs"} <= set(rows[0])


TIMESCALE_FIGURES: dict[str, Callable[[Site, list[dict[str, Any]]], None]] = {
    "hypertables": _hypertables, "chunks_of_health_checks": _chunks, "jobs": _jobs,
    "job_stats": _job_stats}


@pytest.mark.parametrize("block", TIMESCALE_ONLY, ids=lambda b: f"homepot-timescaledb.{b.name}")
def test_timescaledb_only_blocks_on_a_real_timescaledb(
        stores: Callable[[str, str], Site], block: Block) -> None:
    """The blocks meant for TimescaleDB alone (its information views, ``CALL
    refresh_continuous_aggregate``) against the checks written by ``sunarchive import``: the
    views through user SQL (what a read token may run), the CALL (it writes) as the
    database's owner, as HOMEPOT's operator runs it. PGlite runs them in CI
    (tests/test_timescale_pglite.py)."""
    if not TIMESCALE_URL:
        pytest.skip("SUNARCHIVE_TEST_TIMESCALE_URL is not set: no TimescaleDB server (CI runs "
                    "these blocks on PGlite, tests/test_timescale_pglite.py)")
    site = stores("homepot", "timescaledb")
    if re.search(r"^CALL ", block.sql, re.MULTILINE):
        with psycopg.connect(site.url, autocommit=True) as con:
            con.execute(block.sql)
            hours = con.execute("SELECT COUNT(*) FROM device_metrics_hourly").fetchall()
        assert hours[0][0] >= 29 * len(DEVICES)   # 30 h of checks of every device
        return
    rows = site.sql(block.sql)
    assert rows, f"{block.name} returned no rows"
    TIMESCALE_FIGURES[block.name](site, rows)


def test_every_timescaledb_only_block_has_its_figures() -> None:
    assert {b.name for b in TIMESCALE_ONLY} == {*TIMESCALE_FIGURES, "refresh_hourly"}


# -- sunarchive's own reads ------------------------------------------------------------------
def _own(site: Site, measurement: str, tier: str, hours: float) -> list[dict[str, Any]]:
    end = datetime.now(UTC) + timedelta(seconds=1)
    with site.reader() as reader:
        rows: list[dict[str, Any]] = reader.query(
            measurement, end - timedelta(hours=hours), end, tier=tier,
            max_points=1_000_000).to_pylist()
    return [r for r in rows if r["sample_count"] > 0]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _points(site: Site, measurement: str, hours: float, fields: dict[str, str],
            tags: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(time, tags..., fields...) of the 1 s tier in the last ``hours``, sorted."""
    return sorted((_utc(r["time"]), *(r[t] for t in tags), *(r[c] for c in fields.values()))
                  for r in _own(site, measurement, "1s", hours))


def _rows(rows: list[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    return sorted((_utc(r[names[0]]), *(r[n] for n in names[1:])) for r in rows)


def _raw(measurement: str, hours: float, tags: tuple[str, ...], fields: dict[str, str],
         descending: bool, limit: int | None = None) -> Callable[[Site, list[dict[str, Any]]],
                                                                  None]:
    """A block selecting raw points: its rows are the 1 s tier's seconds with samples in the
    window (values as stored), in the block's order."""
    def check(site: Site, rows: list[dict[str, Any]]) -> None:
        times = [r["time"] for r in rows]
        assert times == sorted(times, reverse=descending)
        own = _points(site, measurement, hours, fields, tags)
        if limit is not None:
            own = own[-limit:]
        assert _rows(rows, ["time", *tags, *fields]) == own
        written = [p for p in site.data.of(measurement)
                   if p.time_s > site.data.now_s - hours * 3600]
        assert len(rows) == min(len(written), limit or len(written))
    return check


def _hourly_production(site: Site, rows: list[dict[str, Any]]) -> None:
    """MAX - MIN of the day's counter per hour = the 1 h tier's last - first."""
    own = {_utc(r["time"]): r["today_production_last"] - r["today_production_first"]
           for r in _own(site, "dtu", "1hour", 24)}
    assert {_utc(r["hour"]): r["production_wh"] for r in rows} == own
    assert sum(own.values()) > 0


def _lifetime(site: Site, rows: list[dict[str, Any]]) -> None:
    with site.reader() as reader:
        latest = reader.latest("dtu").to_pylist()
    assert {r["dtu_name"]: r["lifetime_production_wh"] for r in rows} == {
        r["dtu_name"]: r["total_production_last"] for r in latest}


def _hourly_power(site: Site, rows: list[dict[str, Any]]) -> None:
    """AVG per hour = the 1 h tier's mean (count-weighted merge of the 1 s rows)."""
    own = {_utc(r["time"]): r["pv_power_avg"] for r in _own(site, "dtu", "1hour", 24 * 7)}
    got = {_utc(r["hour"]): r["avg_power_w"] for r in rows}
    assert got.keys() == own.keys() and len(got) >= 5
    for hour, mean in own.items():
        assert got[hour] == pytest.approx(mean, rel=1e-9)


def _uptime(site: Site, rows: list[dict[str, Any]]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for r in _own(site, "inverter", "1hour", 24):
        counts[r["serial_number"]] += r["sample_count"]
    seconds = _own(site, "inverter", "1s", 24)
    span = {s: max(r["time"] for r in seconds if r["serial_number"] == s)
            - min(r["time"] for r in seconds if r["serial_number"] == s) for s in counts}
    assert {r["serial_number"]: r["measurements"] for r in rows} == counts
    assert {r["serial_number"]: r["uptime"] for r in rows} == span


def _ports(site: Site, rows: list[dict[str, Any]]) -> None:
    """AVG and MAX per port number across inverters = merged 1 h tier rows."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, float("-inf")])
    for r in _own(site, "port", "1hour", 24):
        a = acc[r["port_number"]]
        a[0] += r["pv_power_avg"] * r["pv_power_count"]
        a[1] += r["pv_power_count"]
        a[2] = max(a[2], r["pv_power_max"])
    assert [r["port_number"] for r in rows] == sorted(
        acc, key=lambda p: acc[p][0] / acc[p][1], reverse=True)
    for r in rows:
        total, count, peak = acc[r["port_number"]]
        assert r["avg_power"] == pytest.approx(total / count, rel=1e-9)
        assert r["peak_power"] == peak


def _by(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any],
        value: Callable[[dict[str, Any]], float]) -> dict[Any, float]:
    out: dict[Any, float] = defaultdict(float)
    for row in rows:
        out[key(row)] += value(row)
    return dict(out)


def _ps100_latest(site: Site, rows: list[dict[str, Any]]) -> None:
    """The last hour's seconds of every panel, newest first, values as stored; the write hook
    estimated the conditions of each."""
    assert {r["panel_id"] for r in rows} == site.data.panel_ids
    assert all(r["conditions_estimate"] for r in rows)
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True)
    fields = {name: name for name in ("voltage_avg", "current_avg", "power_avg")}
    assert _rows(rows, ["time", "panel_id", *fields]) == \
        _points(site, PS100, 1, fields, ("panel_id",))


def _ps100_daily(site: Site, rows: list[dict[str, Any]]) -> None:
    """Energy per panel and day = the daily tier's; the peak of the hook's power_peak = the
    daily tier's power_max."""
    daily = _own(site, PS100, "daily", 24 * 8)
    want = _by(daily, lambda r: (r["panel_id"], r["day"]), lambda r: r["energy_wh"] / 1000)
    got = {(r["panel_id"], r["date"]): r["daily_energy_kwh"] for r in rows}
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    peaks = {(r["panel_id"], r["day"]): r["power_max"] for r in daily}
    for row in rows:
        assert row["peak_power"] == pytest.approx(peaks[(row["panel_id"], row["date"])])


def _ps100_trends(site: Site, rows: list[dict[str, Any]]) -> None:
    """Energy per hour across panels = the 1 h tier's; every panel active."""
    hourly = _own(site, PS100, "1hour", 24)
    want = _by(hourly, lambda r: _utc(r["time"]), lambda r: r["energy_wh"] / 1000)
    got = {_utc(r["hour"]): r["hourly_energy_kwh"] for r in rows}
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert {r["active_panels"] for r in rows} == {site.data.panels}


def _ps100_tier(tier: str, hours: float) -> Callable[[Site, list[dict[str, Any]]], None]:
    """``SELECT *`` of a tier view: the rows of sunarchive's own read of the tier."""
    def check(site: Site, rows: list[dict[str, Any]]) -> None:
        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return r["time"], r["panel_id"]
        got = sorted(({**{k: v for k, v in r.items() if k != "series_id"},
                       "time": _utc(r["time"])} for r in rows), key=key)
        want = sorted(({**r, "time": _utc(r["time"])} for r in _own(site, PS100, tier, hours)),
                      key=key)
        assert_same_rows(got, want)
    return check


def _ps100_samples(site: Site, rows: list[dict[str, Any]]) -> None:
    """Samples a second per panel (the demo's 10 Hz, a few lost) = the 1 s tier's. (AVG of
    an integer is NUMERIC on PostgreSQL: a Decimal.)"""
    assert {r["panel_id"] for r in rows} == site.data.panel_ids
    seconds = _own(site, PS100, "1s", 1)
    for row in rows:
        counts = [r["sample_count"] for r in seconds if r["panel_id"] == row["panel_id"]]
        mean = float(row["avg_samples_per_second"])
        assert mean == pytest.approx(sum(counts) / len(counts), rel=1e-12)
        assert (row["min_samples"], row["max_samples"]) == (min(counts), max(counts))
        assert 9.0 <= mean <= 10.0
        assert row["max_samples"] <= 10


DTU_TAGS, INVERTER_TAGS = ("dtu_name",), ("serial_number",)
# -- HOMEPOT (docs/upstream/homepot.md) ------------------------------------------------------
HOMEPOT_MEANS = {"avg_cpu": "cpu_percent", "avg_memory": "memory_percent",
                 "avg_disk": "disk_percent", "avg_latency_ms": "latency_ms"}


def _device_hours(site: Site, rows: list[dict[str, Any]], hours: float) -> None:
    """device_metrics_hourly of device 123 = its series' 1 h tier rows (open hour included),
    read as the document's columns; the window's edge allowed a minute either way."""
    now = datetime.now(UTC)
    own = {_utc(r["time"]): r for r in _own(site, "health_checks", "1hour", hours + 1)
           if r["device_id"] == "123"}
    got = {_utc(r["hour"]): r for r in rows}
    edge = now - timedelta(hours=hours)
    assert set(got) <= set(own) and min(got) >= edge - timedelta(minutes=1)
    assert {h for h in own if h >= edge + timedelta(minutes=1)} <= set(got)
    last = max(c.time_s for c in site.data.of(123))
    assert max(got).timestamp() == last - last % 3600    # the open hour is there
    for hour, r in got.items():
        o = own[hour]
        for name, field in HOMEPOT_MEANS.items():
            if name in r:
                assert r[name] == pytest.approx(o[f"{field}_avg"], rel=1e-9)
        assert r["total_transactions"] == o["transactions_increase"]
        if "max_cpu" in r:
            assert r["device_id"] == 123 and r["site_id"] == 1
            assert (r["max_cpu"], r["max_memory"]) == (o["cpu_percent_max"],
                                                       o["memory_percent_max"])
            assert (r["checks"], r["total_errors"]) == (o["sample_count"],
                                                        o["errors_increase"])
            assert r["unhealthy_checks"] == o["is_healthy_count"] - o["is_healthy_true_count"]
    if "checks" in rows[0]:   # every check written from the first hour on is counted
        cut = min(got)
        assert sum(r["checks"] for r in got.values()) == \
            len([c for c in site.data.of(123) if c.time_s >= cut.timestamp()])


def _device_hourly(site: Site, rows: list[dict[str, Any]]) -> None:
    _device_hours(site, rows, 24)


def _device_hourly_columns(site: Site, rows: list[dict[str, Any]]) -> None:
    assert list(rows[0]) == ["hour", "avg_cpu", "avg_memory", "total_transactions"]
    hours = [r["hour"] for r in rows]
    assert hours == sorted(hours, reverse=True)
    _device_hours(site, rows, 24)


def _merged(own: list[dict[str, Any]], field: str) -> float:
    count = sum(r[f"{field}_count"] for r in own)
    return float(sum(r[f"{field}_avg"] * r[f"{field}_count"] for r in own) / count)


def _site_hourly(site: Site, rows: list[dict[str, Any]]) -> None:
    """Site 1's hours = its devices' 1 h tier rows merged (weighted means, sums)."""
    by_hour: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for r in _own(site, "health_checks", "1hour", 24 * 7):
        if r["site_id"] == "1":
            by_hour[_utc(r["time"])].append(r)
    got = {_utc(r["hour"]): r for r in rows}
    assert set(got) == set(by_hour) and len(got) >= 30
    for hour, r in got.items():
        own = by_hour[hour]
        assert r["device_count"] == len({o["device_id"] for o in own}) == 2
        assert r["avg_cpu"] == pytest.approx(_merged(own, "cpu_percent"), rel=1e-9)
        assert r["total_transactions"] == sum(o["transactions_increase"] for o in own)


def _time_bucket_cpu(site: Site, rows: list[dict[str, Any]]) -> None:
    """AVG(cpu_percent) per hour over every check = all series' 1 h rows merged."""
    by_hour: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for r in _own(site, "health_checks", "1hour", 24 * 7):
        by_hour[_utc(r["time"])].append(r)
    got = {_utc(r["hour"]): r["avg_cpu"] for r in rows}
    assert set(got) == set(by_hour)
    for hour, mean in got.items():
        assert mean == pytest.approx(_merged(by_hour[hour], "cpu_percent"), rel=1e-9)


def _first_last_cpu(site: Site, rows: list[dict[str, Any]]) -> None:
    own = sorted((r["time"], r["cpu_percent_avg"]) for r in
                 _own(site, "health_checks", "1s", 24 * 7) if r["device_id"] == "123")
    assert rows == [{"first_cpu": own[0][1], "last_cpu": own[-1][1]}]
    checks = site.data.of(123)
    assert (own[0][1], own[-1][1]) == (checks[0].fields["cpu_percent"],
                                       checks[-1].fields["cpu_percent"])


def _raw_recent_device(site: Site, rows: list[dict[str, Any]]) -> None:
    """One row per check of device 123 with the document's columns and types; the values
    are the 1 s tier's (counters: the running totals), response_data their JSON object."""
    assert list(rows[0]) == ["timestamp", "device_id", "site_id", "cpu_percent",
                             "memory_percent", "disk_percent", "transactions", "errors",
                             "latency_ms", "is_healthy", "response_data"]
    own = {_utc(r["time"]): r for r in _own(site, "health_checks", "1s", 24 * 7)
           if r["device_id"] == "123"}
    assert sorted(_utc(r["timestamp"]) for r in rows) == sorted(own)
    assert len(rows) == len(site.data.of(123))
    for r in rows:
        o = own[_utc(r["timestamp"])]
        assert (r["device_id"], r["site_id"]) == (123, 1)
        values = {"cpu_percent": o["cpu_percent_avg"], "memory_percent":
                  o["memory_percent_avg"], "disk_percent": o["disk_percent_avg"],
                  "transactions": o["transactions_last"], "errors": o["errors_last"],
                  "latency_ms": o["latency_ms_avg"], "is_healthy": o["is_healthy_any"]}
        assert {k: r[k] for k in values} == values
        data = r["response_data"]
        assert (json.loads(data) if isinstance(data, str) else data) == values


HOMEPOT_FIGURES: dict[str, Callable[[Site, list[dict[str, Any]]], None]] = {
    "device_hourly": _device_hourly,
    "device_hourly_columns": _device_hourly_columns,
    "site_hourly": _site_hourly,
    "time_bucket_cpu": _time_bucket_cpu,
    "first_last_cpu": _first_last_cpu,
    "raw_recent_device": _raw_recent_device,
}


HOYMILES_FIGURES: dict[str, Callable[[Site, list[dict[str, Any]]], None]] = {
    "latest_power": _raw("dtu", 1, DTU_TAGS, {"pv_power": "pv_power_avg"}, True, 100),
    "inverter_temperatures": _raw("inverter", 24, INVERTER_TAGS,
                                  {"temperature": "temperature_avg"}, True),
    "port_production": _raw("port", 6, ("serial_number", "port_number"),
                            {"pv_power": "pv_power_avg",
                             "today_production": "today_production_last"}, True),
    "grafana_current_power": _raw("dtu", 24, DTU_TAGS, {"pv_power": "pv_power_avg"}, False),
    "grafana_daily_production": _hourly_production,
    "grafana_inverter_temperature": _raw("inverter", 6, INVERTER_TAGS,
                                         {"temperature": "temperature_avg"}, False),
    "total_production_by_dtu": _lifetime,
    "average_power_by_hour": _hourly_power,
    "inverter_uptime": _uptime,
    "port_performance_comparison": _ports,
}
PS100_FIGURES: dict[str, Callable[[Site, list[dict[str, Any]]], None]] = {
    "latest_panel_performance": _ps100_latest,
    "daily_energy_production": _ps100_daily,
    "system_performance_trends": _ps100_trends,
    "five_minute_last_24h": _ps100_tier("5min", 24),
    "hourly_last_week": _ps100_tier("1hour", 24 * 7),
    "daily_last_month": _ps100_tier("daily", 24 * 30),
    "sample_counts": _ps100_samples,
}
FIGURES = {**{("hoymiles", name): check for name, check in HOYMILES_FIGURES.items()},
           **{("ps100", name): check for name, check in PS100_FIGURES.items()},
           **{("homepot", name): check for name, check in HOMEPOT_FIGURES.items()}}
"""(system, block): its figures against sunarchive's own reads."""


def test_every_collected_block_has_its_figures() -> None:
    names = {(b.file, b.name) for b in blocks() if b.file in WRITERS
             and set(b.engines) & {"duckdb", "postgres"}}   # TimescaleDB-only ones: PGlite
    assert names == set(FIGURES)
    assert len(blocks("ps100")) == 7 and len(blocks("hoymiles")) == 10
    assert {k for k in NOT_YET if k[0] in ("hoymiles", "ps100", "homepot")} == set()


def test_ps100_blocks_through_the_cli_answer_as_the_reader(ps100: Site) -> None:
    """``sunarchive sql`` answers a PS100 block with the reader's figures."""
    (block,) = [b for b in blocks("ps100") if b.name == "daily_energy_production"]
    out = json.loads(cli("sql", *ps100.args, block.sql, "--format", "json").stdout)
    expected = {(r["panel_id"], r["date"].isoformat()): r["daily_energy_kwh"]
                for r in ps100.sql(block.sql)}
    # a parallel SUM of doubles may add in another order from one run to the next
    assert {(r["panel_id"], r["date"]): r["daily_energy_kwh"] for r in out} == \
        pytest.approx(expected, rel=1e-12)


def test_ps100_columns_in_a_sql_clients_own_connection(stores: Callable[[str, str], Site]
                                                        ) -> None:
    """Grafana connected to PostgreSQL as the reader role sees the document's columns of
    ``ps100_readings_1s`` too (setup made the upstream schema the role's search_path), and
    the table itself has none of them."""
    site = stores("ps100", "postgres")
    with psycopg.connect(site.url, user="sunarchive_reader") as con:
        rows = con.execute("SELECT panel_id, power_peak, efficiency_percent, "
                           "conditions_estimate FROM ps100_readings_1s WHERE "
                           "efficiency_percent IS NOT NULL LIMIT 5").fetchall()
        stored = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'public' AND table_name = 'ps100_readings_1s'").fetchall()}
    assert len(rows) == 5 and all(0 < r[2] < 100 and r[3] for r in rows)
    assert "efficiency_percent" not in stored and "power_max" in stored


# -- the plain relations themselves ------------------------------------------------------------
def test_plain_relations_hold_the_written_points_with_their_types(hoymiles: Site) -> None:
    """A point written is a row read: fields under their names with the bridge's types (int
    fields BIGINT, the flag BOOLEAN), the tags as text, time as an instant."""
    site = hoymiles
    data: HoymilesData = site.data
    last = max(p.time_s for p in data.points)
    for measurement in ("dtu", "inverter", "port"):
        rows = site.sql(f"SELECT * FROM {measurement} WHERE time = "
                        f"TIMESTAMPTZ '{datetime.fromtimestamp(last, UTC).isoformat()}'")
        written = [p for p in data.of(measurement) if p.time_s == last]
        key = PROFILES[measurement].tags
        assert sorted(tuple(r[t] for t in key) for r in rows) == \
            sorted(tuple(p.tags[t] for t in key) for p in written)
        for p in written:
            (row,) = [r for r in rows if all(r[t] == p.tags[t] for t in key)]
            assert row["time"] == datetime.fromtimestamp(last, UTC)
            assert {k: row[k] for k in p.fields} == p.fields
            assert all(type(row[k]) is type(v) for k, v in p.fields.items()), row
        count = site.sql(f"SELECT COUNT(*) AS n FROM {measurement}")[0]["n"]
        assert count == len(data.of(measurement))


def test_blocks_run_through_the_cli_and_the_api_with_a_read_token(hoymiles: Site) -> None:
    """``sunarchive sql`` and ``POST /api/v1/sql`` (read token) answer a block as the reader
    does; the interval of ``inverter_uptime`` comes as seconds on both engines."""
    site = hoymiles
    (block,) = [b for b in blocks("hoymiles") if b.name == "inverter_uptime"]
    out = json.loads(cli("sql", *site.args, block.sql, "--format", "json").stdout)
    expected = {r["serial_number"]: r["uptime"].total_seconds() for r in site.sql(block.sql)}
    assert {r["serial_number"]: r["uptime"] for r in out} == expected
    if site.engine != "duckdb":
        return   # serve on PostgreSQL is the same read_sql; one server is enough here
    db = site.folder / "copy.duckdb"
    db.write_bytes((site.folder / "store.duckdb").read_bytes())
    served = serve(db, env={"SUNARCHIVE_HTTP_READ_TOKENS": '["reader-token"]'})
    try:
        answer = httpx.post(served.url + "/api/v1/sql", json={"sql": block.sql},
                            headers={"Authorization": "Bearer reader-token"}, timeout=30)
        refused = httpx.post(served.url + "/api/v1/sql", json={"sql": block.sql}, timeout=30)
    finally:
        stop(served)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    got = {row[body["columns"].index("serial_number")]: row[body["columns"].index("uptime")]
           for row in body["rows"]}
    assert got == expected and refused.status_code == 401


# -- names: what wins over a plain view -------------------------------------------------------
def test_a_relation_sunarchive_did_not_make_keeps_the_name(tmp_path: Path) -> None:
    """A table ``dtu`` made before sunarchive's setup stays as it is (setup says so); the
    other plain views are made; a user profile replacing ``dtu`` gives the view its fields."""
    db = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE dtu (time TIMESTAMP, mine VARCHAR)")
    con.execute("INSERT INTO dtu VALUES (TIMESTAMP '2026-01-01 00:00:00', 'kept')")
    con.close()
    out = cli("setup", "--db", str(db)).stdout
    assert "left dtu alone: the name is a base table sunarchive did not make" in out
    assert "created view inverter" in out
    again = cli("setup", "--db", str(db)).stdout
    assert "created view" not in again
    rows = json.loads(cli("sql", "--db", str(db), "SELECT * FROM dtu", "--format",
                          "json").stdout)
    assert rows == [{"time": "2026-01-01T00:00:00+00:00", "mine": "kept"}] or \
        rows == [{"time": "2026-01-01T00:00:00", "mine": "kept"}]

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "dtu.yaml").write_text(
        "name: dtu\nview: dtu\ntags: [site]\nfields:\n"
        "  output: {unit: W, kind: power}\n")
    own = tmp_path / "own.duckdb"
    env = {"SUNARCHIVE_PROFILES_DIR": str(profiles)}
    cli("setup", "--db", str(own), env=env)
    columns = json.loads(cli("sql", "--db", str(own), "SELECT * FROM dtu LIMIT 0",
                             "--format", "json", env=env).stdout)
    assert columns == []
    described = json.loads(cli("sql", "--db", str(own), "SELECT column_name FROM "
                               "information_schema.columns WHERE table_name = 'dtu' ORDER BY "
                               "ordinal_position", "--format", "json", env=env).stdout)
    assert [r["column_name"] for r in described] == ["time", "site", "output"]


def test_a_named_rollup_of_that_name_wins(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "meter.yaml").write_text(
        "name: meter\ntags: [site]\nfields:\n  power: {unit: W, kind: power}\n"
        "rollups:\n  port: {tier: 1hour}\n")
    db = tmp_path / "r.duckdb"
    out = cli("setup", "--db", str(db), env={"SUNARCHIVE_PROFILES_DIR": str(profiles)}).stdout
    assert "left port alone: the name is the named rollup of measurement 'meter'" in out
    assert "created view port (meter_1hour per series)" in out


# -- HOMEPOT: chunks, registries ------------------------------------------------------------
def test_chunks_of_health_checks_are_those_of_its_1s_table(
        stores: Callable[[str, str], Site]) -> None:
    """``sunarchive chunks health_checks`` (the document's CLI) lists the partitions of
    ``health_checks_1s`` on plain PostgreSQL; an unknown name is one clear line."""
    site = stores("homepot", "postgres")
    named = json.loads(cli("chunks", *site.args, "health_checks", "--json").stdout)
    table = json.loads(cli("chunks", *site.args, "health_checks_1s", "--json").stdout)
    assert named == table and len(named) >= 1
    wrong = cli("chunks", *site.args, "health_check", check=False)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().splitlines() == [
        "sunarchive: error: unknown table 'health_check'"]


@pytest.mark.parametrize("engine", ENGINES)
def test_devices_and_sites_are_registries_with_integer_ids(
        stores: Callable[[str, str], Site], engine: str) -> None:
    """HOMEPOT's ``devices`` and ``sites`` have integer ids (the health checks'
    ``device_id`` and ``site_id`` join them) and created/retired stamps; the import's first
    check of each device added it and its site."""
    site = stores("homepot", engine)
    columns = [r["column_name"] for r in site.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'devices' "
        "ORDER BY ordinal_position")]
    assert columns == ["id", "name", "site_id", "device_type", "description", "created_at",
                       "retired_at"]
    assert site.sql("SELECT id FROM sites ORDER BY id") == [{"id": 1}, {"id": 2}]
    devices = site.sql("SELECT id, site_id, name, retired_at FROM devices ORDER BY id")
    assert devices == [{"id": d, "site_id": s, "name": None, "retired_at": None}
                       for d, s in DEVICES.items()]
    joined = site.sql("SELECT d.site_id, COUNT(*) AS n FROM health_checks h JOIN devices d "
                      "ON d.id = h.device_id GROUP BY d.site_id ORDER BY d.site_id")
    assert joined == [{"site_id": 1, "n": len(site.data.of(123)) + len(site.data.of(124))},
                      {"site_id": 2, "n": len(site.data.of(200))}]
