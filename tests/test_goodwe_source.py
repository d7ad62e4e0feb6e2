"""The GoodWe source against a fake ET inverter on UDP 8899 of a private loopback address
(tests/support/goodwe_fake.py) answering the `goodwe` library's requests with recorded responses:
family discovery, the mapping into energy_data / energy_detail, missed polls that leave a
gap (no zeros, no offline event before `offline_after_failures`), and `sunarchive run`."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import goodwe  # type: ignore[import-untyped]
import pytest
from pydantic import TypeAdapter

from sunarchive.model import Event, SampleBatch
from sunarchive.profiles import load_profiles
from sunarchive.sources.catalog import SourceConfig
from sunarchive.sources.goodwe.config import GoodWeSettings
from sunarchive.sources.goodwe.mapping import VARIABLE_MAP
from sunarchive.sources.goodwe.poller import GoodWePoller
from sunarchive.sources.running import PolledSource, SourceContext
from tests.support.cli import clean_env
from tests.support.goodwe_fake import (
    DATA_FILE,
    EXPECTED,
    SERIAL,
    FakeGoodWe,
    discovery_request,
    modbus_read_request,
    recorded_pairs,
)
from tests.support.sinks import ListSink
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PROFILES = load_profiles()
RUNTIME = modbus_read_request(35100, 0x7D)
UNITS = {"C": "°C"}          # goodwe writes degrees Celsius as "C"

ENERGY_DATA = {"pv_power": 5560.0, "grid_power": 1850.0, "battery_power": -2510.0,
               "consumption": 1200.0, "battery_soc": 64.0, "battery_temp": 27.5}


@pytest.fixture
def fake() -> Iterator[FakeGoodWe]:
    inverter = FakeGoodWe()
    yield inverter
    inverter.stop()


def settings(fake: FakeGoodWe, **kw: Any) -> GoodWeSettings:
    return GoodWeSettings(**({"name": "house", "host": fake.host, "request_timeout_s": 0.2,
                              "retries": 1, "timeout_s": 2.0} | kw))


def values(batch: SampleBatch) -> dict[str, float]:
    assert len(batch) == 1
    return {name: float(v[0]) for name, v in batch.fields.items()}


# -- mapping ------------------------------------------------------------------------------------
def test_variable_map_units_match_the_library_and_the_profiles() -> None:
    sensors = {s.id_: s for s in goodwe.ET("127.0.0.1", 8899)._sensors
               + goodwe.ET("127.0.0.1", 8899)._sensors_battery}
    for sensor_id, target in VARIABLE_MAP.items():
        assert sensor_id in sensors, sensor_id
        assert UNITS.get(sensors[sensor_id].unit, sensors[sensor_id].unit) == target.unit, \
            sensor_id
        assert PROFILES[target.measurement].field(target.field).unit == target.unit, sensor_id
    assert {t.field for t in VARIABLE_MAP.values() if t.measurement == "energy_data"} \
        == set(ENERGY_DATA)


def test_recorded_responses_are_the_documented_construction() -> None:
    lines = [line for line in DATA_FILE.read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"{q.hex()} {a.hex()}" for q, a in recorded_pairs()]


def test_settings_parse_through_the_catalog() -> None:
    parsed = TypeAdapter(SourceConfig).validate_python(
        {"type": "goodwe", "name": "house", "host": "192.0.2.7"})
    assert isinstance(parsed, GoodWeSettings)
    assert (parsed.port, parsed.family, parsed.poll_interval_s) == (8899, "auto", 10.0)


# -- against the fake inverter ----------------------------------------------------------------
def test_discovers_the_family_and_maps_runtime_data(fake: FakeGoodWe) -> None:
    poller = GoodWePoller(settings(fake, location="garage"))
    poller.connect(2.0)
    try:
        assert (poller.family, poller.serial_number) == ("ET", SERIAL)
        assert fake.requests[0] == discovery_request()      # the aa55 probe came first
        batches = {b.measurement: b for b in poller.poll(2.0)}
    finally:
        poller.close()
    data = batches["energy_data"]
    assert data.tag_sets == [(SERIAL, "goodwe", "garage")]
    assert abs(data.time_ns[0] - time.time_ns()) < 5e9
    assert values(data) == pytest.approx(ENERGY_DATA)
    detail = values(batches["energy_detail"])
    for sensor_id, target in VARIABLE_MAP.items():
        if target.measurement == "energy_detail" and sensor_id in EXPECTED:
            assert detail[target.field] == pytest.approx(EXPECTED[sensor_id]), sensor_id
    # a 2-string ET: strings 3 and 4 are not reported, so they stay missing (not zero)
    assert not {"pv3_voltage", "pv3_power", "pv4_current"} & set(detail)
    assert detail["pv_energy_total"] == 12345.6 and detail["battery_current"] == -6.1


def test_a_configured_family_skips_discovery(fake: FakeGoodWe) -> None:
    poller = GoodWePoller(settings(fake, family="ET", device_id="gw1"))
    poller.connect(2.0)
    try:
        batches = poller.poll(2.0)
    finally:
        poller.close()
    assert fake.count(discovery_request()) == 0
    assert batches[0].tag_sets == [("gw1", "goodwe", "")]


def test_no_answer_is_a_transient_error(fake: FakeGoodWe) -> None:
    from sunarchive.sources.running import SourceError

    fake.silent = True
    poller = GoodWePoller(settings(fake, family="ET"))
    with pytest.raises(SourceError, match="connect") as caught:
        poller.connect(2.0)
    poller.close()
    assert caught.value.transient


def test_missed_polls_leave_a_gap_and_offline_only_after_the_limit(fake: FakeGoodWe) -> None:
    events: list[Event] = []
    config = settings(fake, poll_interval_s=0.25, backoff_min_s=0.4, backoff_max_s=0.4,
                      offline_after_failures=3)
    source = config.build(SourceContext("UTC", PROFILES, events.append))
    assert isinstance(source, PolledSource)
    sink, stop = ListSink(), threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()

    def outage(polls: int, until_state: str = "connected") -> tuple[int, int]:
        """Silence the fake for ``polls`` failed polls and until the source's state is
        ``until_state`` (a failed poll is counted just before the state changes);
        (batches before, errors after)."""
        before = len(sink.of("energy_data"))
        errors = source.status.errors
        fake.silent = True
        wait_until(lambda: source.status.errors == errors + polls, f"{polls} failed polls")
        wait_until(lambda: source.status.state == until_state, until_state)
        fake.silent = False           # answered again before the next attempt (backoff 0.4 s)
        return before, source.status.errors

    try:
        wait_until(lambda: len(sink.of("energy_data")) >= 2, "two polls")
        before, errors = outage(2)
        assert source.status.state == "connected" and not events
        wait_until(lambda: len(sink.of("energy_data")) >= before + 2, "polls after the gap")
        assert source.status.errors == errors and not events
        short_gap = sink.of("energy_data")[before - 1:before + 1]

        before, _ = outage(3, until_state="offline")
        wait_until(lambda: source.status.state == "connected", "online again")
        wait_until(lambda: len(sink.of("energy_data")) >= before + 1, "a poll after it")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [e.kind for e in events] == ["source_offline", "source_online"]
    assert (source.status.last_error or "").startswith(("connect: ", "runtime data: "))
    # every sample is a full, true reading: no zeros and no NaN rows for the missed polls
    for batch in sink.of("energy_data"):
        assert values(batch) == pytest.approx(ENERGY_DATA)
    times = [int(b.time_ns[0]) for b in sink.of("energy_data")]
    assert times == sorted(times)
    gap_s = (short_gap[1].time_ns[0] - short_gap[0].time_ns[0]) / 1e9
    assert gap_s > 2 * 0.2 + 0.25       # two polls' worth of time without a sample
    assert len(sink.of("energy_detail")) == len(sink.of("energy_data"))


# -- end to end ---------------------------------------------------------------------------------
def test_sunarchive_run_stores_goodwe_readings(fake: FakeGoodWe, tmp_path: Path) -> None:
    config = tmp_path / "sunarchive.yaml"
    config.write_text(
        "sources:\n"
        f"  - {{type: goodwe, name: house, host: {fake.host}, poll_interval_s: 0.5,\n"
        "     request_timeout_s: 0.3, retries: 1, location: roof}\n")
    db = tmp_path / "store.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "run", "--config", str(config), "--db", str(db),
         "--no-console", "--no-http"],
        cwd=tempfile.gettempdir(), env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: fake.count(RUNTIME) >= 5 or process.poll() is not None,
                   "five polls", 60)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["samples_in"] >= 8, summary
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        data = con.execute("SELECT device_id, data_source, location, sum(pv_power_count), "
                           "min(pv_power_avg), max(pv_power_avg), avg(grid_power_avg), "
                           "avg(battery_power_avg), avg(battery_soc_avg) "
                           "FROM energy_data_1s GROUP BY ALL").fetchall()
        detail = con.execute("SELECT max(pv_energy_total_last), max(grid_import_today_last), "
                             "avg(grid_frequency_avg) FROM energy_detail_1s").fetchall()
    finally:
        con.close()
    assert len(data) == 1
    device, source, location, samples, pv_min, pv_max, grid, battery, soc = data[0]
    assert (device, source, location) == (SERIAL, "goodwe", "roof")
    assert samples >= 4 and pv_min == pv_max == 5560.0
    assert (grid, battery, soc) == (1850.0, -2510.0, 64.0)
    total, imported, hz = detail[0]
    assert math.isclose(total, 12345.6) and math.isclose(imported, 1.2)
    assert math.isclose(hz, 50.01)


def test_the_sample_config_in_the_docs_loads(tmp_path: Path) -> None:
    from sunarchive.settings import load_settings

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sources" / "goodwe.md").read_text()
    (tmp_path / "c.yaml").write_text(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    settings = load_settings(config_file=tmp_path / "c.yaml", env={}, dotenv_file=None)
    source = settings.sources[0]
    assert isinstance(source, GoodWeSettings)
    assert (source.host, source.port, source.family, source.location) == (
        "192.168.1.60", 8899, "auto", "garage")
