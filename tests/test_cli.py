"""The CLI end to end, in subprocesses, against a real DuckDB file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import DEMO_PANELS, DEMO_SECONDS, cli

pytestmark = pytest.mark.integration

UPSTREAM_DAILY = """
SELECT panel_id, DATE(time) AS date, SUM(energy_wh) / 1000.0 AS daily_energy_kwh,
       AVG(power_avg) AS avg_power, MAX(power_max) AS peak_power
FROM ps100_readings_1s GROUP BY panel_id, DATE(time) ORDER BY date DESC, panel_id;
"""
UPSTREAM_HOURLY = """
SELECT DATE_TRUNC('hour', time) AS hour, COUNT(DISTINCT panel_id) AS active_panels,
       SUM(power_avg) AS total_system_power, SUM(energy_wh) / 1000.0 AS hourly_energy_kwh
FROM ps100_readings_1s GROUP BY 1 ORDER BY hour DESC;
"""


def test_status_json_lists_every_tier(demo_db: Path) -> None:
    info = json.loads(cli("status", "--db", str(demo_db), "--json").stdout)
    assert info["engine"] == "duckdb"
    assert info["file_bytes"] > 0
    tables = {t["table"]: t for t in info["tables"]}
    one_s = tables["ps100_readings_1s"]
    assert one_s["rows"] == DEMO_PANELS * DEMO_SECONDS
    assert 0 < one_s["bytes_per_row"] <= 60
    assert tables["ps100_readings_5min"]["rows"] == DEMO_PANELS * DEMO_SECONDS // 300
    assert tables["ps100_readings_1hour"]["rows"] == DEMO_PANELS * DEMO_SECONDS // 3600


def test_upstream_daily_energy_query_runs_unchanged(demo_db: Path) -> None:
    rows = json.loads(cli("sql", UPSTREAM_DAILY, "--db", str(demo_db), "--format", "json").stdout)
    assert len(rows) == DEMO_PANELS
    for row in rows:
        assert row["date"] == "2026-06-21"
        # two morning hours of a 100 W panel: a few tens of Wh, never more than 0.2 kWh
        assert 0.01 < row["daily_energy_kwh"] < 0.2
        assert 0 < row["avg_power"] < row["peak_power"] <= 100


def test_upstream_hourly_query_runs_unchanged(demo_db: Path) -> None:
    rows = json.loads(cli("sql", UPSTREAM_HOURLY, "--db", str(demo_db), "--format", "json").stdout)
    assert [r["hour"] for r in rows] == ["2026-06-21T08:00:00", "2026-06-21T07:00:00"]
    for row in rows:
        assert row["active_panels"] == DEMO_PANELS
        assert 0.005 < row["hourly_energy_kwh"] < 0.4


def test_query_auto_picks_coarsest_tier_with_enough_points(demo_db: Path) -> None:
    common = ["--db", str(demo_db), "--start", "2026-06-21T07:00:00Z",
              "--end", "2026-06-21T09:00:00Z", "--format", "json", "--fields", "power"]
    rows = json.loads(cli("query", "ps100_readings", *common, "--max-points", "20").stdout)
    # 2 h / 5 min = 24 buckets ≥ 20 → 5min tier, 4 panels each
    assert len(rows) == 24 * DEMO_PANELS
    assert set(rows[0]) == {"time", "panel_id", "sample_count", "power_avg", "power_min",
                            "power_max", "power_stddev", "power_count", "energy_wh"}
    rows = json.loads(cli("query", "ps100_readings", *common, "--max-points", "2").stdout)
    assert len(rows) == 2 * DEMO_PANELS  # 1hour tier
    assert rows[0]["time"] == "2026-06-21T07:00:00+00:00"


def test_query_tiers_agree_on_energy(demo_db: Path) -> None:
    totals = {}
    for tier in ("1s", "5min", "1hour", "daily"):
        out = cli("query", "ps100_readings", "--db", str(demo_db), "--tier", tier,
                  "--start", "2026-06-20T00:00:00+02:00", "--end", "2026-06-22T00:00:00+02:00",
                  "--fields", "energy_wh", "--tag", "panel_id=panel_1", "--format", "csv").stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        assert {r["panel_id"] for r in rows} == {"panel_1"}
        totals[tier] = sum(float(r["energy_wh"]) for r in rows)
    assert totals["1s"] > 1.0
    for tier, total in totals.items():
        assert abs(total - totals["1s"]) < 1e-6, (tier, totals)


def test_query_rejects_naive_time_and_unknown_names(demo_db: Path) -> None:
    db = ["--db", str(demo_db)]
    naive = cli("query", "ps100_readings", *db, "--start", "2026-06-21T07:00:00", check=False)
    assert naive.returncode == 2 and "no time zone offset" in naive.stderr
    unknown = cli("query", "nope", *db, check=False)
    assert unknown.returncode == 2 and "unknown measurement 'nope'" in unknown.stderr
    field = cli("query", "ps100_readings", *db, "--fields", "volts", check=False)
    assert field.returncode == 2 and "field 'volts'" in field.stderr
    tag = cli("query", "ps100_readings", *db, "--tag", "panel=1", check=False)
    assert tag.returncode == 2 and "tag 'panel'" in tag.stderr


def test_sql_is_read_only(demo_db: Path) -> None:
    result = cli("sql", "DELETE FROM ps100_readings_1s", "--db", str(demo_db), check=False)
    assert result.returncode != 0
    count = json.loads(cli("sql", "SELECT COUNT(*) AS n FROM ps100_readings_1s", "--db",
                           str(demo_db), "--format", "json").stdout)
    assert count == [{"n": DEMO_PANELS * DEMO_SECONDS}]


def test_setup_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = cli("setup", "--db", str(db)).stdout
    assert "created table ps100_readings_1s" in first
    second = cli("setup", "--db", str(db)).stdout
    assert "(0 changes)" in second


def test_help_explains_commands() -> None:
    out = cli("--help").stdout
    for command in ("demo", "run", "monitor", "status", "query", "sql", "setup"):
        assert command in out
    assert "--speed" in cli("demo", "--help").stdout


CLI_PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sunarchive" / "cli"


@pytest.mark.parametrize("module", sorted(p.stem for p in CLI_PACKAGE.glob("*.py")))
def test_each_cli_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """No import cycle needs another module imported first (``cli`` ↔ ``maintenance`` did)."""
    name = "sunarchive.cli" if module == "__init__" else f"sunarchive.cli.{module}"
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, timeout=120)


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("simulator:\n  panels: 0\n")
    result = cli("status", "--config", str(config), "--db", str(tmp_path / "x.duckdb"),
                 check=False)
    assert result.returncode == 2
    assert str(config) in result.stderr and "simulator.panels" in result.stderr


def test_demo_starts_in_daylight_when_the_site_is_dark() -> None:
    from datetime import UTC, datetime

    from sunarchive.app import daylight_start

    berlin = 13.405
    noon = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)  # ≈ 11:54 solar time in Berlin
    assert daylight_start(noon, berlin) == noon
    night = datetime(2026, 6, 21, 1, 30, tzinfo=UTC)  # ≈ 02:24 solar
    start = daylight_start(night, berlin)
    assert start < night
    solar_hour = (start.hour + start.minute / 60 + start.second / 3600 + berlin / 15) % 24
    assert abs(solar_hour - 10.0) < 1 / 60


def _half_created(db: Path) -> None:
    """A DuckDB file with a table of its own but none of sunarchive's."""
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE other (a INTEGER)")
    con.close()


@pytest.mark.parametrize(("make", "expected"), [
    (lambda db: db.write_bytes(b""), "not a DuckDB database file"),
    (lambda db: db.write_bytes(b"\x00garbage" * 600), "not a DuckDB database file"),
    (_half_created, "not a sunarchive store (table sunarchive_"),
])
def test_status_on_a_file_that_is_no_store(tmp_path: Path, make: Callable[[Path], object],
                                           expected: str) -> None:
    db = tmp_path / "broken.duckdb"
    make(db)
    result = cli("status", "--db", str(db), check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(db) in lines[0] and expected in lines[0], lines[0]


@pytest.mark.parametrize(("content", "expected"), [
    (b"timezone: \"\xff\xfe\"\n", "not UTF-8 text: byte 0xff at position 11"),
    (b"influxdb:\n  host: \"http://\"\n", "influxdb.host: 'http://' has no host name"),
    (b"lateness_s: .inf\n", "lateness_s: Input should be a finite number"),
])
def test_bad_config_is_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    result = cli("status", "--config", str(config), "--db", str(tmp_path / "x.duckdb"),
                 check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and expected in lines[0], result.stderr


@pytest.mark.parametrize("flags", [["--start", "-24h"], ["--start", "-30d", "--end", "now"]])
def test_relative_times_as_the_readme_writes_them(demo_db: Path, flags: list[str]) -> None:
    """`--start -24h` (a value that looks like a flag) works as the README shows it."""
    result = cli("query", "ps100_readings", "--db", str(demo_db), "--tier", "daily", *flags,
                 "--format", "json", check=False)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_refresh_with_a_relative_start(demo_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(demo_db.read_bytes())
    result = cli("refresh", "--db", str(copy), "--start", "-7d", check=False)
    assert result.returncode == 0, result.stderr
