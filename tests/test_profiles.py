"""Profiles: shipped names and columns, validation errors naming file and field, user
profiles from a directory, and a profile that gains a field keeps its data."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from sunarchive.model import ConfigError, FieldKind, SeriesKey
from sunarchive.profiles import load_profiles
from sunarchive.reducer import Reducer
from sunarchive.storage.duckdb.store import DuckDBStore

pytestmark = pytest.mark.engine

PS100_COLUMNS = [
    "time", "panel_id", "voltage_avg", "voltage_min", "voltage_max", "voltage_stddev",
    "current_avg", "current_min", "current_max", "current_stddev", "power_avg", "power_min",
    "power_max", "energy_wh", "temperature_avg", "temperature_min", "temperature_max",
    "sample_count",
]

SHIPPED = {
    "ps100_readings": (("panel_id",), {"voltage": "gauge", "current": "gauge",
                                        "power": "power", "temperature": "gauge"}),
    "dtu": (("dtu_name", "dtu_serial"), {"pv_power": "power", "today_production": "counter",
                                         "total_production": "counter", "alarm_flag": "flag"}),
    "inverter": (("serial_number", "dtu_name"), {
        "grid_voltage": "gauge", "grid_frequency": "gauge", "temperature": "gauge",
        "operating_status": "state", "alarm_code": "state", "alarm_count": "gauge",
        "link_status": "state"}),
    "port": (("serial_number", "port_number", "dtu_name"), {
        "pv_voltage": "gauge", "pv_current": "gauge", "pv_power": "power",
        "today_production": "counter", "total_production": "counter"}),
    "mpp_measurement": (("device_id", "board", "channel"), {"voltage": "gauge",
                                                            "current": "gauge",
                                                            "power": "power"}),
    "temperature_measurement": (("device_id", "board", "channel"), {"temperature": "gauge"}),
    "irradiance_measurement": (("device_id", "board", "channel"), {"irradiance": "gauge"}),
    "energy_data": (("device_id", "data_source", "location"), {
        "battery_soc": "gauge", "battery_temp": "gauge", "battery_power": "power",
        "pv_power": "power", "grid_power": "power", "consumption": "power", "price": "gauge"}),
    "weather_data": (("location", "source"), {"temperature": "gauge", "humidity": "gauge",
                                              "irradiance": "gauge", "wind_speed": "gauge"}),
    "system_metrics": (("component", "status"), {"cpu_usage": "gauge",
                                                 "memory_usage": "gauge",
                                                 "response_time": "gauge"}),
    "health_checks": (("device_id", "site_id"), {
        "cpu_percent": "gauge", "memory_percent": "gauge", "disk_percent": "gauge",
        "transactions": "counter", "errors": "counter", "latency_ms": "gauge",
        "is_healthy": "flag"}),
}


def test_shipped_profiles_have_upstream_names() -> None:
    profiles = load_profiles()
    assert set(SHIPPED) <= set(profiles)
    for name, (tags, fields) in SHIPPED.items():
        profile = profiles[name]
        assert profile.tags == tags, name
        assert {f.name: f.kind.value for f in profile.fields} == fields, name
    assert profiles["irradiance_measurement"].field("irradiance").unit == "W/m²"
    assert profiles["health_checks"].chunk_interval == "1 week"


def test_ps100_table_has_upstream_columns(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "p.duckdb", load_profiles())
    store.setup()
    columns = store.columns_of("ps100_readings_1s")
    store.close()
    for column in PS100_COLUMNS:
        assert column in columns


@pytest.mark.parametrize(("text", "key", "why"), [
    ("name: Bad-Name\nfields: {a: {kind: gauge}}", "name", "not a valid name"),
    ("name: x\nfields: {a: {kind: wattage}}", "fields.a.kind", "'wattage' is not one of"),
    ("name: x\nfields: {a: {kind: gauge, unti: V}}", "fields.a.unti", "unknown key"),
    ("name: x\nfields: {}", "fields", "non-empty"),
    ("name: x\ntags: [time]\nfields: {a: {kind: gauge}}", "tags", "reserved"),
    ("name: x\nfields: {a: {kind: gauge, energy_column: e}}", "fields.a.energy_column",
     "only a 'power' field"),
    ("name: x\nfields: {a: {kind: counter, max_rate_per_s: -1}}", "fields.a.max_rate_per_s",
     "positive"),
    ("name: x\nfields: [a, b", "", "not valid YAML"),
    ("name: x\ntags: [d]\ntag_types: {e: int}\nfields: {a: {kind: gauge}}", "tag_types.e",
     "is not a tag of this profile"),
    ("name: x\ntags: [d]\ntag_types: {d: float}\nfields: {a: {kind: gauge}}", "tag_types.d",
     "'float' is not one of text, int"),
    ("name: x\nview: x\nview_time: Time\nfields: {a: {kind: gauge}}", "view_time",
     "not a valid name"),
    ("name: x\nview: y\nview_hypertable: 'yes'\nfields: {a: {kind: gauge}}",
     "view_hypertable", "must be true or false"),
    ("name: x\nview_hypertable: true\nfields: {a: {kind: gauge}}", "view_hypertable",
     "needs a `view`"),
])
def test_bad_profile_names_file_and_field(tmp_path: Path, text: str, key: str,
                                          why: str) -> None:
    (tmp_path / "mine.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_profiles(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "mine.yaml") in message
    assert f": {key}:" in message or not key
    assert why in message


def test_user_profile_directory_adds_measurements(tmp_path: Path) -> None:
    (tmp_path / "battery.yaml").write_text(
        "name: home_battery\ntags: [pack]\nfields:\n"
        "  soc: {unit: '%', kind: gauge}\n  power: {unit: W, kind: power}\n")
    profiles = load_profiles(tmp_path)
    assert profiles["home_battery"].field("power").kind is FieldKind.POWER
    assert "ps100_readings" in profiles
    with pytest.raises(ConfigError, match="does not exist"):
        load_profiles(tmp_path / "missing")


def test_profile_gaining_a_field_adds_a_column_and_keeps_rows(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    v2 = tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    (v1 / "rig.yaml").write_text("name: rig\ntags: [id]\nfields:\n  a: {kind: gauge}\n")
    (v2 / "rig.yaml").write_text("name: rig\ntags: [id]\nfields:\n  a: {kind: gauge}\n"
                                 "  b: {kind: power}\n")
    db = tmp_path / "grow.duckdb"
    store = DuckDBStore(db, load_profiles(v1))
    store.setup()
    store.add_series(SeriesKey("rig", ("r1",)), 1)
    reducer = Reducer(store.profiles["rig"], lateness_s=0)
    t = 1_750_000_000 * 10**9 + np.arange(20) * 10**8
    reducer.add(np.ones(20, np.int32), t, {"a": np.arange(20.0)})
    result = reducer.flush()
    store.write(result.fresh, result.merge, {1: ("r1",)})
    store.close()

    store = DuckDBStore(db, load_profiles(v2))
    changes = store.setup()
    assert "added column rig_1s.b_avg" in changes
    assert "added column rig_1s.b_energy_wh" in changes
    store.close()
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT a_count, a_avg, b_avg FROM rig_1s ORDER BY time").fetchall()
    assert rows == [(10, 4.5, None), (10, 14.5, None)]
