"""SunSpec Modbus TCP: register decoding, discovery at 40000 / 50000, scale factors, float
models, NaN sentinels, outages and reconnects, and one run through the agent into DuckDB.
The devices are pymodbus' own server running in-process on a loopback port."""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sunarchive.model import Event, SampleBatch
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.sources.catalog import SOURCE_TAGS, SourceConfig
from sunarchive.sources.running import PolledSource, SourceContext, SourceError
from sunarchive.sources.sunspec import models
from sunarchive.sources.sunspec.config import SunSpecSettings
from sunarchive.sources.sunspec.models import encode_float32, encode_string
from sunarchive.sources.sunspec.poller import SunSpecPoller
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.ports import free_port
from tests.support.sinks import ListSink
from tests.support.sunspec_fake import (
    DEVICE_103,
    DEVICE_113,
    NAN_F32,
    ModbusServer,
    common_model,
    image,
    mppt_model,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def device_103() -> Iterator[ModbusServer]:
    server = ModbusServer(40000, DEVICE_103).start()
    yield server
    server.stop()


@pytest.fixture
def device_113() -> Iterator[ModbusServer]:
    server = ModbusServer(50000, DEVICE_113).start()
    yield server
    server.stop()


def by_name(batches: list[SampleBatch]) -> dict[str, SampleBatch]:
    return {b.measurement: b for b in batches}


# -- pure decoding ------------------------------------------------------------------------------
def test_sentinels_become_nan_and_scale_factors_are_powers_of_ten() -> None:
    assert math.isnan(models.uint16(0xFFFF)) and models.uint16(7) == 7
    assert math.isnan(models.int16(0x8000)) and models.int16(0xFFFE) == -2
    assert math.isnan(models.acc32(0, 0)) and math.isnan(models.acc32(0xFFFF, 0xFFFF))
    assert models.acc32(1, 2) == 65538
    assert math.isnan(models.float32(*NAN_F32))
    assert models.float32(*encode_float32(1.5)) == 1.5
    assert models.scaled(123, -1) == pytest.approx(12.3)
    assert models.scaled(26, 2) == 2600
    assert math.isnan(models.scaled(5, models.sunssf(0x8000)))
    assert models.string(encode_string("SN-1", 8)) == "SN-1"


def test_model_walk_and_common_model() -> None:
    regs = DEVICE_103
    assert models.is_marker(regs)
    refs = []
    address = 2
    while True:
        ref, address = models.next_model(address, regs[address:address + 2])
        if ref is None:
            break
        refs.append(ref)
    assert [(r.model_id, r.length) for r in refs] == [(1, 66), (103, 50), (160, 48)]
    ident = models.decode_common(regs[refs[0].address:refs[0].address + 66])
    assert (ident.manufacturer, ident.model, ident.serial, ident.version) == \
        ("Acme", "PV-5000", "SN103-0001", "1.2.3")


def test_mppt_declared_count_limits_modules() -> None:
    body = mppt_model()[2:]
    body[6] = 1
    assert [m.module_id for m in models.decode_mppt(body)] == ["1"]


# -- against the in-process server ----------------------------------------------------------------
def test_int_model_103_and_mppt_160_at_40000(device_103: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_103.port)
    poller.connect(2.0)
    try:
        assert poller.base == 40000
        assert [r.model_id for r in poller.models] == [1, 103, 160]
        assert poller.identity is not None and poller.identity.manufacturer == "Acme"
        batches = by_name(poller.poll(2.0))
    finally:
        poller.close()
    inv = batches["sunspec_inverter"]
    assert inv.tag_sets == [("SN103-0001",)] and len(inv) == 1
    f = {k: float(v[0]) for k, v in inv.fields.items()}
    assert f["ac_current"] == pytest.approx(12.3)
    assert f["ac_voltage"] == pytest.approx(230.1)
    assert f["ac_power"] == 2500.0
    assert f["ac_frequency"] == pytest.approx(50.02)
    assert f["apparent_power"] == 2600.0
    assert f["reactive_power"] == -150.0
    assert f["power_factor"] == pytest.approx(-98.5)
    assert f["energy_total"] == 1234567.0
    assert f["dc_voltage"] == pytest.approx(400.0)
    assert f["operating_state"] == 4.0
    for missing in ("dc_current", "dc_power", "cabinet_temperature"):
        assert math.isnan(f[missing]), missing          # unimplemented: NaN, never zero
    assert abs(time.time_ns() - int(inv.time_ns[0])) < 10 * 10**9

    mppt = batches["sunspec_mppt"]
    assert mppt.tag_sets == [("SN103-0001", "1"), ("SN103-0001", "2")]
    assert list(mppt.tag_index) == [0, 1]
    assert mppt.fields["dc_current"][0] == pytest.approx(5.5)
    assert mppt.fields["dc_voltage"].tolist() == pytest.approx([380.0, 370.0])
    assert mppt.fields["dc_power"][0] == 2090.0
    assert mppt.fields["energy_total"][0] == 600000.0
    assert mppt.fields["temperature"][0] == 35.0
    assert mppt.fields["operating_state"].tolist() == [4.0, 7.0]
    for name in ("dc_current", "dc_power", "energy_total", "temperature"):
        assert np.isnan(mppt.fields[name][1]), name


def test_float_model_113_found_by_probing_50000(device_113: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_113.port)
    poller.connect(2.0)
    try:
        assert poller.base == 50000
        batches = by_name(poller.poll(2.0))
    finally:
        poller.close()
    assert set(batches) == {"sunspec_inverter"}         # no model 160 on this device
    inv = batches["sunspec_inverter"]
    assert inv.tag_sets == [("FL-113",)]
    f = {k: float(v[0]) for k, v in inv.fields.items()}
    assert f["ac_current"] == 10.5 and f["ac_voltage"] == 231.5
    assert f["ac_power"] == 2400.0 and f["ac_frequency"] == pytest.approx(49.98, rel=1e-6)
    assert f["energy_total"] == 5.0e6 and f["dc_current"] == 6.25
    assert f["cabinet_temperature"] == 41.5 and f["operating_state"] == 8.0
    assert math.isnan(f["reactive_power"])              # float NaN stays NaN


def test_configured_base_address_is_used(device_113: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_113.port, base_address=50000)
    poller.connect(2.0)
    assert poller.base == 50000
    poller.close()


def test_device_without_marker_is_a_permanent_error() -> None:
    server = ModbusServer(40000, [1, 2, 3, 4]).start()
    try:
        poller = SunSpecPoller("127.0.0.1", server.port)
        with pytest.raises(SourceError, match="not a SunSpec device") as info:
            poller.connect(2.0)
        assert info.value.transient is False
        poller.close()
    finally:
        server.stop()


def test_unreachable_device_is_transient() -> None:
    poller = SunSpecPoller("127.0.0.1", free_port())
    with pytest.raises(SourceError) as info:
        poller.connect(0.5)
    assert info.value.transient is True


def test_wrong_unit_id_is_a_transient_modbus_exception(device_103: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_103.port, unit_id=1)
    poller.connect(2.0)
    poller.unit_id = 9          # the device stops answering for this unit
    try:
        with pytest.raises(SourceError) as info:
            poller.poll(1.0)
        assert info.value.transient is True
    finally:
        poller.close()


def test_dropped_idle_connection_is_reconnected_within_the_poll(device_103: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_103.port)
    poller.connect(2.0)
    try:
        assert poller.poll(2.0)
        device_103.stop()                                # the device drops every connection
        device_103.start()
        batches = by_name(poller.poll(2.0))              # no error: reconnected and read
        assert batches["sunspec_inverter"].fields["ac_power"][0] == 2500.0
        assert poller.reconnects == 1
    finally:
        poller.close()


# -- settings --------------------------------------------------------------------------------------
def test_settings_defaults_and_catalog() -> None:
    s = SunSpecSettings(name="roof", host="10.0.0.7")
    assert (s.port, s.unit_id, s.base_address, s.poll_interval_s) == (502, 1, None, 5.0)
    assert "sunspec" in SOURCE_TAGS
    parsed = TypeAdapter(SourceConfig).validate_python(
        {"type": "sunspec", "name": "roof", "host": "h", "base_address": 40000})
    assert isinstance(parsed, SunSpecSettings) and parsed.base_address == 40000
    with pytest.raises(ValidationError):
        SunSpecSettings.model_validate({"name": "x", "host": "h", "prot": 1})
    source = s.build(SourceContext())
    assert isinstance(source, PolledSource) and source.status.kind == "sunspec"



def test_the_sample_config_in_the_docs_loads_and_builds(tmp_path: Path) -> None:
    from sunarchive.settings import load_settings

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sources" / "sunspec.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    (tmp_path / "c.yaml").write_text(block)
    settings = load_settings(config_file=tmp_path / "c.yaml", env={}, dotenv_file=None)
    (source,) = settings.sources
    assert isinstance(source, SunSpecSettings)
    assert (source.name, source.host, source.port, source.unit_id, source.base_address) == (
        "roof-inverter", "192.168.1.50", 502, 1, None)
    assert (source.poll_interval_s, source.timeout_s, source.backoff_min_s,
            source.backoff_max_s, source.offline_after_failures) == (5, 5, 1, 60, 3)
    defaults = SunSpecSettings(name="x", host="h")
    for key in ("port", "unit_id", "poll_interval_s"):   # the sample's "default …" comments
        assert getattr(defaults, key) == getattr(source, key), key
    built = source.build(SourceContext())
    assert isinstance(built, PolledSource) and built.status.kind == "sunspec"

# -- through the shared wrapper ------------------------------------------------------------------
def _settings(port: int, **kw: float) -> SunSpecSettings:
    base: dict[str, object] = {
        "name": "inv", "host": "127.0.0.1", "port": port, "poll_interval_s": 0.05,
        "timeout_s": 0.5, "backoff_min_s": 0.02, "backoff_max_s": 0.05,
        "offline_after_failures": 2}
    return SunSpecSettings.model_validate(base | kw)


def test_outage_reports_offline_then_online(device_103: ModbusServer) -> None:
    events: list[Event] = []
    source = _settings(device_103.port).build(SourceContext(events=events.append))
    assert isinstance(source, PolledSource)
    sink = ListSink()
    batches = sink.batches

    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(batches) >= 2, "two batches")
        device_103.stop()
        wait_until(lambda: any(e.kind == "source_offline" for e in events), "offline")
        assert source.status.errors >= 2 and source.status.state == "offline"
        before = len(batches)
        device_103.start()
        wait_until(lambda: any(e.kind == "source_online" for e in events), "online")
        wait_until(lambda: len(batches) > before, "a batch after the restart")
    finally:
        stop.set()
        thread.join(10)
    kinds = [e.kind for e in events]
    assert kinds.count("source_offline") == 1 and kinds.count("source_online") == 1
    assert source.status.snapshot()["reconnects"] == 1


def test_end_to_end_into_duckdb(tmp_path: Path, device_103: ModbusServer) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb", load_profiles())
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.1, commit_interval_s=0.05)
    source = _settings(device_103.port).build(SourceContext(events=agent.post_event))
    agent.add_source(source)
    agent.start()
    status = agent.source_status["inv"]
    wait_until(lambda: status.samples >= 9, "3 polls")   # × (1 inverter + 2 modules)
    time.sleep(1.2)                             # let a second close
    agent.stop()
    inv = store.sql("SELECT serial, ac_power_avg, ac_current_avg, dc_current_avg "
                    "FROM sunspec_inverter_1s").table.to_pylist()
    assert inv and {r["serial"] for r in inv} == {"SN103-0001"}
    assert all(r["ac_power_avg"] == 2500.0 for r in inv)
    assert all(r["ac_current_avg"] == pytest.approx(12.3) for r in inv)
    assert all(r["dc_current_avg"] is None for r in inv)     # missing stays NULL, not 0
    mppt = store.sql("SELECT module, dc_voltage_avg FROM sunspec_mppt_1s "
                     "ORDER BY module").table.to_pylist()
    assert {r["module"] for r in mppt} == {"1", "2"}
    assert {r["module"]: r["dc_voltage_avg"] for r in mppt} == {"1": 380.0, "2": 370.0}
    store.close()


def test_truncated_inverter_model_is_a_permanent_error() -> None:
    server = ModbusServer(0, image(common_model("S1"), [103, 10, *([0] * 10)])).start()
    try:
        poller = SunSpecPoller("127.0.0.1", server.port)
        poller.connect(2.0)
        assert poller.base == 0                          # probed 40000, then found at 0
        with pytest.raises(SourceError, match="register map") as info:
            poller.poll(2.0)
        assert info.value.transient is False
        poller.close()
    finally:
        server.stop()


def test_illegal_address_answer_is_a_transient_modbus_exception(device_103: ModbusServer) -> None:
    poller = SunSpecPoller("127.0.0.1", device_103.port)
    poller.connect(2.0)
    try:
        inverter = next(r for r in poller.models if r.model_id == 103)
        poller.models = [models.ModelRef(103, 60000, inverter.length)]   # nothing mapped there
        with pytest.raises(SourceError, match="Modbus exception reading 50 registers at "
                                              "60000") as info:
            poller.poll(1.0)
        assert info.value.transient is True
    finally:
        poller.close()


def test_device_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as listener:          # accepts connections, never sends a byte
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        poller = SunSpecPoller("127.0.0.1", port)
        started = time.monotonic()
        with pytest.raises(SourceError) as info:
            poller.connect(0.5)
        poller.close()
    assert info.value.transient is True
    assert time.monotonic() - started < 10
