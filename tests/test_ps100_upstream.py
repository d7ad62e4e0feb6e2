"""PS100's registry and the document's columns of ``ps100_readings_1s`` (issue 18 point 2):
the figures of a second against pvlib computed here, the registry edited through the CLI,
bad input refused, and the table itself untouched (the columns are a view's, for user SQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli

pytestmark = pytest.mark.integration

START = "2026-06-21T10:00:00+00:00"   # noon in Berlin: the sun is up


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ps100") / "p.duckdb"
    cli("demo", "--db", str(path), "--panels", "2", "--speed", "0", "--duration", "300",
        "--start", START, "--no-console", "--no-http")
    return path


def sql(db: Path, text: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(
        cli("sql", text, "--db", str(db), "--format", "json").stdout)
    return rows


def test_efficiency_is_dc_power_over_clear_sky_poa_times_area(db: Path) -> None:
    import pandas as pd
    import pvlib

    rows = sql(db, "SELECT time, panel_id, power_avg, power_max, power_peak, "
                   "efficiency_percent, irradiance_w_m2, irradiance_source, expected_power_w, "
                   "temperature_avg, conditions_estimate FROM ps100_readings_1s "
                   "WHERE panel_id = 'panel_1' ORDER BY time LIMIT 300")
    assert len(rows) == 300
    times = pd.DatetimeIndex([pd.Timestamp(str(r["time"]), tz="UTC") for r in rows])
    site = pvlib.location.Location(52.52, 13.405, tz="UTC")
    sol = site.get_solarposition(times)
    cs = site.get_clearsky(times, model="ineichen", solar_position=sol)
    poa = pvlib.irradiance.get_total_irradiance(
        35.0, 180.0, sol["apparent_zenith"], sol["azimuth"], cs["dni"], cs["ghi"], cs["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(times), model="haydavies",
        albedo=0.2)["poa_global"]
    for row, want in zip(rows, poa, strict=True):
        irr = float(row["irradiance_w_m2"])  # type: ignore[arg-type]
        assert row["irradiance_source"] == "clearsky"
        assert irr == pytest.approx(float(want), rel=2e-3)   # a minute grid, interpolated
        power = float(row["power_avg"])  # type: ignore[arg-type]
        assert row["efficiency_percent"] == pytest.approx(power / (irr * 0.771) * 100,
                                                          abs=2e-3)
        assert row["power_peak"] == row["power_max"]
        temp = float(row["temperature_avg"])  # type: ignore[arg-type]
        expected = 100 * irr / 1000 * (1 - 0.0044 * (temp - 25))
        assert row["expected_power_w"] == pytest.approx(expected, abs=0.01)
        assert isinstance(row["conditions_estimate"], str)


def test_system_view_sums_the_panels(db: Path) -> None:
    [one] = sql(db, "SELECT SUM(energy_wh) AS e, COUNT(*) AS n FROM ps100_system_1s")
    [two] = sql(db, "SELECT SUM(energy_wh) AS e, COUNT(DISTINCT time) AS n "
                    "FROM ps100_readings_1s")
    assert one == pytest.approx(two)
    assert {r["active_panels"] for r in sql(db, "SELECT active_panels FROM ps100_system_1s")
            } == {2}


def test_bad_registry_input_is_one_line_and_exit_2(db: Path) -> None:
    for args, words in ((["nope", "area_m2=1"], "unknown panel 'nope'"),
                        (["panel_1", "area_m2=-1"], "area_m2: Input should be greater"),
                        (["panel_1", "colour=red"], "unknown column 'colour'"),
                        (["panel_1", "tilt_deg=steep"], "'tilt_deg=steep'")):
        result = cli("panels", "set", *args, "--db", str(db), check=False)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert words in result.stderr


def test_the_table_stores_no_derived_column(db: Path) -> None:
    """The writer's table has only the profile's statistics: the document's columns are read
    through the upstream schema's view (a write costs what it did before)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        stored = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = 'ps100_readings_1s'").fetchall()}
        seen = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'sunarchive_upstream' AND table_name = 'ps100_readings_1s'").fetchall()}
    assert stored < seen
    assert seen - stored == {"power_peak", "efficiency_percent", "conditions_estimate",
                             "alerts", "irradiance_w_m2", "irradiance_source",
                             "expected_power_w"}


def test_registry_edit_changes_the_figures(db: Path) -> None:
    listed = json.loads(cli("panels", "list", "--db", str(db), "--json").stdout)
    assert [p["panel_id"] for p in listed] == ["panel_1", "panel_2"]
    assert {p["origin"] for p in listed} == {"auto"}
    before = sql(db, "SELECT AVG(efficiency_percent) AS e FROM ps100_readings_1s "
                     "WHERE panel_id = 'panel_2'")[0]["e"]
    cli("panels", "set", "panel_2", "area_m2=1.542", "installed_on=2025-06-10",
        "--db", str(db))
    after = sql(db, "SELECT AVG(efficiency_percent) AS e FROM ps100_readings_1s "
                    "WHERE panel_id = 'panel_2'")[0]["e"]
    assert after == pytest.approx(float(before) / 2, rel=1e-4)  # type: ignore[arg-type]
    [row] = sql(db, "SELECT area_m2, installed_on, origin FROM ps100_panels "
                    "WHERE panel_id = 'panel_2'")
    assert row == {"area_m2": 1.542, "installed_on": "2025-06-10", "origin": "edited"}
    assert len(sql(db, "SELECT * FROM ps100_panels")) == 2   # the store still opens
