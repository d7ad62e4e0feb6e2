"""SunSpec Modbus TCP: register decoding, discovery at 40000 / 50000, scale factors, float
models, NaN sentinels, outages and reconnects, and one run through the agent into DuckDB.
The devices are pymodbus' own server running in-process on a loopback port."""

from __future__ import annotations

import asyncio
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from sunarchive.model import Event, SampleBatch
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.sources.catalog import SOURCE_TAGS, SourceConfig
from sunarchive.sources.running import PolledSource, SourceContext, SourceError
from sunarchive.sources.sunspec import models
from sunarchive.sources.sunspec.config import SunSpecSettings
from sunarchive.sources.sunspec.models import encode_float32, encode_int16, encode_string
from sunarchive.sources.sunspec.poller import SunSpecPoller
from sunarchive.storage.duckdb.store import DuckDBStore

NOT_IMPL_U16 = 0xFFFF
NOT_IMPL_I16 = 0x8000
NAN_F32 = [0x7FC0, 0x0000]


# -- register images --------------------------------------------------------------------------
def common_model(serial: str, manufacturer: str = "Acme", model: str = "PV-5000") -> list[int]:
    body = (encode_string(manufacturer, 16) + encode_string(model, 16) + encode_string("", 8)
            + encode_string("1.2.3", 8) + encode_string(serial, 16) + [1, 0x8000])
    assert len(body) == 66
    return [1, 66, *body]


def int_inverter_model() -> list[int]:
    """Model 103 with scale factors and some unimplemented values."""
    b = [NOT_IMPL_U16] * 50
    b[0], b[4] = 123, encode_int16(-1)                  # A 12.3
    b[1] = b[2] = b[3] = 41
    b[8], b[11] = 2301, encode_int16(-1)                # PhVphA 230.1
    b[12], b[13] = 2500, 0                              # W 2500
    b[14], b[15] = 5002, encode_int16(-2)               # Hz 50.02
    b[16], b[17] = 26, 2                                # VA 2600
    b[18], b[19] = encode_int16(-150), 0                # VAr -150
    b[20], b[21] = encode_int16(-9850), encode_int16(-2)  # PF -98.5
    b[22], b[23], b[24] = 0x0012, 0xD687, 0             # WH 1234567
    b[25], b[26] = NOT_IMPL_U16, encode_int16(-2)       # DCA unimplemented
    b[27], b[28] = 4000, encode_int16(-1)               # DCV 400.0
    b[29], b[30] = 2600, NOT_IMPL_I16                   # DCW with an unimplemented SF
    b[31], b[35] = NOT_IMPL_I16, encode_int16(-1)       # TmpCab unimplemented
    b[36] = 4                                           # St MPPT
    return [103, 50, *b]


def mppt_model() -> list[int]:
    header = [encode_int16(-2), encode_int16(-1), 0, 0, 0, 0, 2, NOT_IMPL_U16]
    m1 = ([1, *encode_string("String A", 8), 550, 3800, 2090, 0x0009, 0x27C0,
           0, 0, 35, 4, 0, 0])
    m2 = ([2, *encode_string("String B", 8), NOT_IMPL_U16, 3700, NOT_IMPL_U16, 0, 0,
           0, 0, NOT_IMPL_I16, 7, 0, 0])
    body = header + m1 + m2
    assert len(body) == 48
    return [160, 48, *body]


def float_inverter_model() -> list[int]:
    values = [10.5, 10.5, math.nan, math.nan, math.nan, math.nan, math.nan, 231.5, math.nan,
              math.nan, 2400.0, 49.98, 2410.0, math.nan, 99.0, 5.0e6, 6.25, 410.0, 2500.0,
              41.5, math.nan, math.nan, math.nan]
    body: list[int] = []
    for v in values:
        body += NAN_F32 if math.isnan(v) else encode_float32(v)
    body += [8, NOT_IMPL_U16]                   # St standby, StVnd
    body += [0] * (60 - len(body))
    assert len(body) == 60
    return [113, 60, *body]


def image(*model_lists: list[int]) -> list[int]:
    regs = list(models.SUNS_MARKER)
    for m in model_lists:
        regs += m
    return [*regs, 0xFFFF, 0]


DEVICE_103 = image(common_model("SN103-0001"), int_inverter_model(), mppt_model())
DEVICE_113 = image(common_model("FL-113", "Floaty", "F1"), float_inverter_model())


# -- in-process Modbus server ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModbusServer:
    """pymodbus' TCP server in a thread with its own event loop; restartable on one port."""

    def __init__(self, base: int, registers: list[int], port: int | None = None,
                 unit_id: int = 1) -> None:
        self.base, self.registers, self.unit_id = base, registers, unit_id
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ModbusServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def begin() -> None:
                device = SimDevice(self.unit_id, simdata=[SimData(
                    self.base, values=self.registers, datatype=DataType.REGISTERS)])
                self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
                await self._server.serve_forever(background=True)

            try:
                loop.run_until_complete(begin())
            except BaseException as exc:  # reported to the test thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the Modbus server did not start"
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return
        stopping = server.shutdown()  # type: ignore[no-untyped-call]
        asyncio.run_coroutine_threadsafe(stopping, loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._server = None


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


def _wait(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_outage_reports_offline_then_online(device_103: ModbusServer) -> None:
    events: list[Event] = []
    source = _settings(device_103.port).build(SourceContext(events=events.append))
    assert isinstance(source, PolledSource)
    batches: list[SampleBatch] = []

    class Sink:
        def put(self, batch: SampleBatch) -> None:
            batches.append(batch)

    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(Sink(), stop), daemon=True)
    thread.start()
    try:
        assert _wait(lambda: len(batches) >= 2)
        device_103.stop()
        assert _wait(lambda: any(e.kind == "source_offline" for e in events))
        assert source.status.errors >= 2 and source.status.state == "offline"
        before = len(batches)
        device_103.start()
        assert _wait(lambda: any(e.kind == "source_online" for e in events))
        assert _wait(lambda: len(batches) > before)
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
    assert _wait(lambda: status.samples >= 9)   # 3 polls × (1 inverter + 2 modules)
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
