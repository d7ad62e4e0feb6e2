"""The ina2xx source against a fake I2C bus that models INA226 / INA219 registers
(tests/support/ina_fake.py): calibration values, decoding (incl. negative currents), the refusal of
an INA219 for a panel above 26 V, a 10 Hz run with drift-free deadlines, a chip that loses
its calibration or is unplugged, and through the agent into a real DuckDB store."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sunarchive.model import ConfigError, Event
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.settings import load_settings
from sunarchive.sources.catalog import SourceConfig
from sunarchive.sources.ina2xx import chip
from sunarchive.sources.ina2xx.config import Ina2xxSettings, PanelSettings
from sunarchive.sources.ina2xx.driver import InaSensor
from sunarchive.sources.ina2xx.reader import Ina2xxSource
from sunarchive.sources.running import SourceContext
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.ina_fake import FakeBus, FakeIna
from tests.support.sinks import ListSink
from tests.support.waiting import wait_until

pytestmark = pytest.mark.engine

PROFILES = load_profiles()
PANEL_226 = {"panel_id": "roof1", "address": 0x40, "chip": "ina226", "shunt_ohm": 0.01,
             "max_current_a": 4.0, "voc_v": 33.6}
PANEL_219 = {"panel_id": "lab1", "address": 0x41, "chip": "ina219", "shunt_ohm": 0.1,
             "max_current_a": 3.2, "voc_v": 22.0}


def make_settings(*panels: dict[str, Any], **kw: Any) -> Ina2xxSettings:
    return Ina2xxSettings(**({"name": "panels", "panels": list(panels)} | kw))


@contextmanager
def running(settings: Ina2xxSettings, bus: FakeBus,
            events: list[Event] | None = None) -> Iterator[tuple[Ina2xxSource, ListSink]]:
    context = SourceContext("UTC", PROFILES, (events if events is not None else []).append)
    source = Ina2xxSource(settings, context, bus.open)
    sink, stop = ListSink(), threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()
    try:
        yield source, sink
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive() and source.status.state == "stopped"


# -- register maths -------------------------------------------------------------------------
def test_calibration_values() -> None:
    ina226 = PanelSettings(**PANEL_226).calibration()
    # current_LSB = 4 A / 32768 = 122.07 µA; cal = 0.00512 / (122.07e-6 × 0.01) = 4194.3
    assert (ina226.cal, ina226.config) == (4194, 0x4527)
    assert ina226.current_lsb_a == pytest.approx(0.00512 / (4194 * 0.01))
    assert ina226.current_lsb_a == pytest.approx(4.0 / 32768, rel=1e-4)
    assert ina226.power_lsb_w == pytest.approx(25 * ina226.current_lsb_a)
    small = chip.calibrate("ina226", 0.1, 0.8, 20.0, "x")
    assert small.cal == 2097                               # 0.00512 / (24.41e-6 × 0.1)
    ina219 = PanelSettings(**PANEL_219).calibration()
    # 0.04096 / (97.66e-6 × 0.1) = 4194.3; 3.2 A × 0.1 Ω = 320 mV → PGA /8, 32 V range
    assert (ina219.cal, ina219.config) == (4194, 0x3E67)
    assert ina219.power_lsb_w == pytest.approx(20 * ina219.current_lsb_a)
    low = chip.calibrate("ina219", 0.1, 0.4, 20.0, "x")
    assert (low.cal, low.config) == (33554, 0x2667)       # bit 0 cleared; 40 mV → PGA /1


def test_decoding_registers() -> None:
    cal = PanelSettings(**PANEL_226).calibration()
    assert chip.swap16(0x3412) == 0x1234
    assert chip.bus_voltage_v(cal, 18720) == pytest.approx(23.4)          # × 1.25 mV
    assert chip.current_a(cal, 0x0064) == pytest.approx(100 * cal.current_lsb_a)
    assert chip.current_a(cal, 0xFF9C) == pytest.approx(-100 * cal.current_lsb_a)
    assert chip.current_a(cal, 0x8000) == pytest.approx(-32768 * cal.current_lsb_a)
    assert chip.power_w(cal, 1000, 0xFF9C) == pytest.approx(-1000 * cal.power_lsb_w)
    ina219 = PanelSettings(**PANEL_219).calibration()
    raw = (4550 << 3) | 0b10                                                # 18.2 V, CNVR
    assert chip.bus_voltage_v(ina219, raw) == pytest.approx(18.2)
    assert not chip.overflow(ina219, raw) and chip.overflow(ina219, raw | 1)


@pytest.mark.parametrize("panel, true_v, true_a", [
    (PANEL_226, 23.4, 3.5), (PANEL_226, 30.1, -1.25), (PANEL_219, 18.2, 2.9),
    (PANEL_219, 12.0, -0.75)])
def test_driver_against_the_register_model(panel: dict[str, Any], true_v: float,
                                           true_a: float) -> None:
    fake = FakeIna(panel["chip"], panel["shunt_ohm"], true_v, true_a)
    bus = FakeBus({panel["address"]: fake})
    cal = PanelSettings(**panel).calibration()
    sensor = InaSensor(bus, panel["address"], cal, panel["panel_id"])
    sensor.setup()
    assert (fake.config, fake.cal) == (cal.config, cal.cal)
    assert fake.writes[0] == (0, 0x8000)                   # reset first
    reading = sensor.read()
    bus_lsb = 1.25e-3 if panel["chip"] == "ina226" else 4e-3
    assert reading.voltage_v == pytest.approx(true_v, abs=bus_lsb)
    assert reading.current_a == pytest.approx(true_a, abs=2 * cal.current_lsb_a)
    assert math.copysign(1, reading.power_w) == math.copysign(1, true_a)
    assert reading.power_w == pytest.approx(true_v * true_a, abs=2 * cal.power_lsb_w)


def test_a_chip_that_is_not_an_ina226_is_refused() -> None:
    bus = FakeBus({0x40: FakeIna("ina219", 0.1)})
    sensor = InaSensor(bus, 0x40, PanelSettings(**PANEL_226).calibration(), "roof1")
    with pytest.raises(Exception, match="not an INA226") as caught:
        sensor.setup()
    assert not getattr(caught.value, "transient", True)


# -- configuration ----------------------------------------------------------------------------
def test_an_ina219_is_refused_for_a_33_v_panel(tmp_path: Path) -> None:
    too_high = PANEL_219 | {"voc_v": 33.6, "panel_id": "south"}
    with pytest.raises(ConfigError, match=r"panel 'south' \(INA219\).*33.6 V exceeds.*26 V"):
        chip.calibrate("ina219", 0.1, 3.2, 33.6, "south")
    with pytest.raises(ValidationError, match="panel 'south'"):
        make_settings(PANEL_226, too_high)
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  - type: ina2xx\n    name: panels\n    panels:\n"
                      "      - {panel_id: south, address: 0x41, chip: ina219, shunt_ohm: 0.1,\n"
                      "         max_current_a: 3.2, voc_v: 33.6}\n")
    where = r"c\.yaml: sources\[0\]\.panels\[0\]: panel 'south'"
    with pytest.raises(ConfigError, match=where + ".*use an INA226"):
        load_settings(config, env={}, dotenv_file=None)
    assert make_settings(PANEL_219 | {"voc_v": 26.0}).panels[0].voc_v == 26.0


@pytest.mark.parametrize("change, message", [
    ({"chip": "ina226", "voc_v": 40.0}, "40 V exceeds the chip's 36 V"),
    ({"shunt_ohm": 0.1, "max_current_a": 4.0}, "400 mV, more than the 81.92 mV"),
    ({"shunt_ohm": 0.0001, "max_current_a": 0.01}, "calibration .* outside"),
])
def test_other_panels_a_chip_cannot_measure(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(PANEL_226 | change)


def test_settings_parse_through_the_catalog_and_need_distinct_panels() -> None:
    parsed = TypeAdapter(SourceConfig).validate_python(
        {"type": "ina2xx", "name": "panels", "bus": 1, "panels": [PANEL_226, PANEL_219]})
    assert isinstance(parsed, Ina2xxSettings) and parsed.sample_rate_hz == 10.0
    with pytest.raises(ValidationError, match="share the address 0x40"):
        make_settings(PANEL_226, PANEL_219 | {"address": 0x40})


# -- running ------------------------------------------------------------------------------------
def two_panels() -> FakeBus:
    return FakeBus({0x40: FakeIna("ina226", 0.01, 23.4, 3.5),
                    0x41: FakeIna("ina219", 0.1, 18.2, -0.75)})


def test_ten_hz_for_two_seconds() -> None:
    bus = two_panels()
    start = time.monotonic()
    with running(make_settings(PANEL_226, PANEL_219), bus) as (source, sink):
        wait_until(lambda: len(sink.batches) >= 2, "two batches")
        time.sleep(max(0.0, 2.05 - (time.monotonic() - start)))
    assert source.status.errors == 0 and source.skipped_rounds <= 2   # a loaded CI host
    assert 2 <= len(sink.batches) <= 3 and all(b.measurement == "ps100_readings"
                                               for b in sink.batches)
    for panel, (volts, amps) in {"roof1": (23.4, 3.5), "lab1": (18.2, -0.75)}.items():
        got = sink.samples(panel)
        assert 18 <= len(got["time_ns"]) <= 22, panel
        steps = np.diff(got["time_ns"]) / 1e9
        assert np.median(steps) == pytest.approx(0.1, abs=0.01)
        span = (got["time_ns"][-1] - got["time_ns"][0]) / 1e9
        assert span == pytest.approx(0.1 * (len(steps)), abs=0.03)     # no drift
        assert np.allclose(got["voltage"], volts, atol=4e-3)
        assert np.allclose(got["current"], amps, atol=3e-4)
        assert np.allclose(got["power"], volts * amps, atol=0.02)
    assert source.status.samples == 0    # counted by the agent, not here


def test_a_power_cycled_chip_is_calibrated_again_and_never_reads_zero() -> None:
    bus = two_panels()
    with running(make_settings(PANEL_226, PANEL_219, batch_interval_s=0.2), bus) as (
            source, sink):
        wait_until(lambda: len(sink.samples("roof1")["time_ns"]) >= 3, "samples")
        with bus.lock:
            bus.chips[0x40].power_cycle()
        wait_until(lambda: source.status.errors == 1, "the calibration loss reported")
        count = len(sink.samples("roof1")["time_ns"])
        wait_until(lambda: len(sink.samples("roof1")["time_ns"]) >= count + 3, "more samples")
    got = sink.samples("roof1")
    assert "lost its calibration" in (source.status.last_error or "")
    assert bus.chips[0x40].cal == 4194
    assert np.count_nonzero(np.isnan(got["current"])) == 1       # that one reading: missing
    assert np.all(np.nan_to_num(got["current"], nan=3.5) > 3.49)   # never a zero
    assert np.allclose(got["voltage"], 23.4, atol=2e-3)


def test_unplugged_panels_leave_gaps_then_offline_and_back() -> None:
    bus, events = two_panels(), list[Event]()
    settings = make_settings(PANEL_226, PANEL_219, batch_interval_s=0.2,
                             offline_after_failures=5, backoff_min_s=0.2, backoff_max_s=0.2)
    with running(settings, bus, events) as (source, sink):
        wait_until(lambda: len(sink.samples("lab1")["time_ns"]) >= 3, "samples")
        bus.unplugged.add(0x41)
        wait_until(lambda: source.status.errors == 1, "the unplugged panel reported")
        before = len(sink.samples("roof1")["time_ns"])
        wait_until(lambda: len(sink.samples("roof1")["time_ns"]) >= before + 5, "roof1 goes on")
        assert source.status.errors == 1 and not events    # reported once per streak
        bus.unplugged.add(0x40)
        wait_until(lambda: source.status.state == "offline", "offline")
        bus.unplugged.clear()
        wait_until(lambda: source.status.state == "connected", "online again")
        lab = len(sink.samples("lab1")["time_ns"])
        wait_until(lambda: len(sink.samples("lab1")["time_ns"]) >= lab + 3, "lab1 back")
    assert [e.kind for e in events] == ["source_offline", "source_online"]
    assert bus.opened >= 2 and bus.closed >= 1
    for panel in ("roof1", "lab1"):
        got = sink.samples(panel)
        assert not np.isnan(got["current"]).any() and (np.abs(got["current"]) > 0.7).all()


def test_a_missing_bus_device_is_offline_not_a_crash() -> None:
    settings = make_settings(PANEL_226, bus=250, backoff_min_s=0.1, backoff_max_s=0.1)
    events: list[Event] = []
    source = settings.build(SourceContext("UTC", PROFILES, events.append))
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(ListSink(), stop), daemon=True)
    thread.start()
    status = source.status  # type: ignore[attr-defined]
    wait_until(lambda: status.errors >= 2, "two attempts to open /dev/i2c-250")
    stop.set()
    thread.join(5)
    assert "bus 250" in status.last_error and [e.kind for e in events] == ["source_offline"]


def test_agent_stores_ten_hz_readings_in_duckdb(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb", PROFILES)
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.3, commit_interval_s=0.05)
    bus = two_panels()
    source = Ina2xxSource(make_settings(PANEL_226, PANEL_219, batch_interval_s=0.5),
                          SourceContext("UTC", store.profiles, agent.post_event), bus.open)
    agent.add_source(source)
    agent.start()
    try:
        wait_until(lambda: source.status.samples >= 50, "5 s of two panels", 15)
    finally:
        agent.stop()
    result = store.sql("SELECT panel_id, sum(sample_count) AS n, max(sample_count) AS most, "
                       "avg(voltage_avg) AS v, avg(current_avg) AS i, avg(power_avg) AS p "
                       "FROM ps100_readings_1s GROUP BY ALL ORDER BY 1").table.to_pylist()
    store.close()
    assert [r["panel_id"] for r in result] == ["lab1", "roof1"]
    for row, (volts, amps) in zip(result, [(18.2, -0.75), (23.4, 3.5)], strict=True):
        assert row["n"] >= 25 and row["most"] <= 11
        assert row["v"] == pytest.approx(volts, abs=4e-3)
        assert row["i"] == pytest.approx(amps, abs=3e-4)
        assert row["p"] == pytest.approx(volts * amps, abs=0.02)


def test_the_sample_config_in_the_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "sources" / "ina2xx.md").read_text()
    (tmp_path / "c.yaml").write_text(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    settings = load_settings(config_file=tmp_path / "c.yaml", env={}, dotenv_file=None)
    source = settings.sources[0]
    assert isinstance(source, Ina2xxSettings)
    assert [(p.panel_id, p.address, p.chip) for p in source.panels] == [
        ("roof1", 0x40, "ina226"), ("lab1", 0x41, "ina219")]
