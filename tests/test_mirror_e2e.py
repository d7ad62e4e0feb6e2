"""The InfluxDB mirror end to end: a real InfluxDB 1.x through the v1 API (read back with its
/query API), and `sunarchive demo` with INFLUXDB_ENABLED=true through an outage."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sunarchive.profiles import load_profiles
from sunarchive.sinks.buffer import DiskBuffer
from sunarchive.sinks.config import InfluxSettings
from sunarchive.sinks.influxdb import Mirror
from tests.support.cli import clean_env
from tests.support.influx_fake import FakeInflux3
from tests.support.influxdb1_server import Influx1, available, throwaway_influxdb1
from tests.support.mirror_batches import T0, hoymiles_batches

pytestmark = pytest.mark.integration

DEMO_START = "2026-06-21T10:00:00+02:00"


@pytest.fixture(scope="module")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx1]:
    if not available():
        pytest.skip("influxd (Debian package influxdb) is not installed; `make system-deps`")
    with throwaway_influxdb1(tmp_path_factory.mktemp("influxd")) as server:
        yield server


def test_v1_api_names_and_types_in_real_influxdb(influxd: Influx1, tmp_path: Path) -> None:
    influxd.create_database("hoymiles")
    settings = InfluxSettings(enabled=True, host=influxd.url, database="hoymiles",
                              write_api="v1", token="ignored-without-auth", precision="s",
                              flush_interval_s=0.05)
    mirror = Mirror(settings, load_profiles(), DiskBuffer(tmp_path / "buf", 2**30))
    mirror.start()
    for batch in hoymiles_batches():
        mirror.offer_raw(batch)
    assert mirror.flush(30)
    mirror.close()
    assert mirror.status()["points_sent"] == 3
    keys = {s["name"]: dict(s["values"]) for s in influxd.query("hoymiles", "SHOW FIELD KEYS")}
    assert keys["dtu"] == {"pv_power": "float", "today_production": "integer",
                           "total_production": "integer", "alarm_flag": "boolean"}
    assert keys["inverter"]["operating_status"] == "integer"
    assert keys["inverter"]["grid_voltage"] == "float"
    assert keys["port"]["total_production"] == "integer"
    tags = {s["name"]: {v[0] for v in s["values"]}
            for s in influxd.query("hoymiles", "SHOW TAG KEYS")}
    assert tags == {"dtu": {"dtu_name", "dtu_serial"}, "inverter": {"serial_number", "dtu_name"},
                    "port": {"serial_number", "port_number", "dtu_name"}}
    (dtu,) = influxd.query("hoymiles", "SELECT * FROM dtu")
    row = dict(zip(dtu["columns"], dtu["values"][0], strict=True))
    assert row == {"time": T0, "alarm_flag": True, "dtu_name": "Dach DTU",
                   "dtu_serial": "DTU123", "pv_power": 812.4, "today_production": 1234,
                   "total_production": 9876543}


def demo(db: Path, env: dict[str, str], seconds: int, speed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "demo", "--db", str(db), "--panels", "2",
         "--speed", speed, "--duration", str(seconds), "--start", DEMO_START, "--no-http",
         "--no-console"], cwd=tempfile.gettempdir(), env=clean_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _mirror_failures(live: Path) -> int:
    """Failed mirror requests so far, from a running demo's live file (0 before it exists)."""
    try:
        mirror = json.loads(live.read_text(encoding="utf-8")).get("mirror") or {}
    except (OSError, ValueError):
        return 0
    return int(mirror.get("failed_requests", 0))


def finish(process: subprocess.Popen[str]) -> tuple[dict[str, object], str]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    return json.loads(out.strip().splitlines()[-1]), err


def test_demo_into_real_influxdb(influxd: Influx1, tmp_path: Path) -> None:
    influxd.create_database("demo")
    token_file = tmp_path / "token"
    token_file.write_text("very-secret-token\n")
    summary, err = finish(demo(tmp_path / "demo.duckdb", {
        "INFLUXDB_ENABLED": "true", "INFLUXDB_HOST": influxd.url, "INFLUXDB_DATABASE": "demo",
        "INFLUXDB_TOKEN_FILE": str(token_file), "SUNARCHIVE_INFLUXDB__WRITE_API": "v1"},
        120, "0"))
    assert f"InfluxDB writer initialized: {influxd.url}/demo" in err
    assert "very-secret-token" not in err
    mirror = summary["influxdb"]
    assert isinstance(mirror, dict)
    assert mirror["pending"] == 0 and mirror["points_rejected"] == 0
    assert mirror["points_sent"] == summary["samples_in"]
    keys = {s["name"]: dict(s["values"]) for s in influxd.query("demo", "SHOW FIELD KEYS")}
    assert keys == {"ps100_readings": {"voltage": "float", "current": "float",
                                       "power": "float", "temperature": "float"}}
    counts = influxd.query("demo", "SELECT count(voltage) FROM ps100_readings "
                                   "GROUP BY panel_id")
    assert {s["tags"]["panel_id"] for s in counts} == {"panel_1", "panel_2"}
    assert sum(s["values"][0][1] for s in counts) == summary["samples_in"]


def test_demo_through_an_outage_loses_nothing(tmp_path: Path) -> None:
    """The endpoint is down for the first part of the run, then up: every point arrives
    exactly once, in order per series."""
    fake = FakeInflux3().start()
    fake.stop()  # keep its port; the server is away when the demo starts
    process = demo(tmp_path / "outage.duckdb", {
        "INFLUXDB_ENABLED": "true", "INFLUXDB_HOST": fake.url, "INFLUXDB_TOKEN": fake.token,
        "SUNARCHIVE_INFLUXDB__RETRY_MIN_S": "0.1", "SUNARCHIVE_INFLUXDB__RETRY_MAX_S": "0.5",
        "SUNARCHIVE_INFLUXDB__QUEUE_MAX_POINTS": "500",
        # a stop waits for the mirror on state (delivered), not on a time a loaded machine
        # can miss; the bound only keeps a broken run from hanging the suite
        "SUNARCHIVE_INFLUXDB__STOP_TIMEOUT_S": "240"}, 240, "40")
    live = tmp_path / "outage.duckdb.live.json"   # written once collection runs
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline \
            and _mirror_failures(live) < 1:       # the outage has hit a write
        time.sleep(0.05)
    fake.start()
    try:
        summary, _ = finish(process)
    finally:
        fake.stop()
    mirror = summary["influxdb"]
    assert isinstance(mirror, dict)
    assert mirror["failed_requests"] >= 1 and mirror["pending"] == 0
    series = fake.series("ps100_readings", "panel_id")
    assert set(series) == {"panel_1", "panel_2"}
    for times in series.values():
        assert times == sorted(times) and len(set(times)) == len(times)
    assert len(fake.points) == summary["samples_in"]
