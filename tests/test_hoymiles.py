"""Hoymiles DTU (``hoymiles-wifi``): scaling of ``RealDataNew`` into the dtu/inverter/port
profiles, the safe poll interval, encrypted and multi-page DTUs, a silent DTU going offline
without zero rows, and a ``sunarchive run --config`` process storing into DuckDB. The DTU is
an in-process fake on a loopback port answering with the library's own protobuf messages."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from hoymiles_wifi.protobuf import RealDataNew_pb2  # type: ignore[import-untyped]
from pydantic import TypeAdapter, ValidationError

from sunarchive.model import Event, SampleBatch
from sunarchive.profiles import load_profiles
from sunarchive.sources.catalog import SOURCE_TAGS, SourceConfig
from sunarchive.sources.hoymiles.config import MIN_POLL_INTERVAL_S, HoymilesSettings
from sunarchive.sources.hoymiles.mapping import real_data_batches
from sunarchive.sources.hoymiles.poller import HoymilesPoller
from sunarchive.sources.running import PolledSource, SourceContext, SourceError
from tests.support.cli import clean_env
from tests.support.hoymiles_fake import DTU_SERIAL, INVERTERS, FakeDTU, real_data
from tests.support.ports import free_port
from tests.support.sinks import ListSink
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

T = 1_781_000_000 * 10**9
SERIAL_1, SERIAL_2 = "116180012345", "112180054321"


@pytest.fixture
def dtu() -> Iterator[FakeDTU]:
    fake = FakeDTU().start()
    yield fake
    fake.stop()


def _message(pages: int = 1) -> Any:
    msg = RealDataNew_pb2.RealDataNewReqDTO()
    for page in range(pages):
        msg.MergeFrom(RealDataNew_pb2.RealDataNewReqDTO.FromString(
            real_data(INVERTERS, page, pages)))
    return msg


def _by_tags(batch: SampleBatch) -> dict[tuple[str, ...], dict[str, float]]:
    return {tags: {k: float(v[batch.tag_index.tolist().index(i)])
                   for k, v in batch.fields.items()}
            for i, tags in enumerate(batch.tag_sets)}


def _assert_reading(batches: list[SampleBatch], dtu_name: str = "roof") -> None:
    """The fake's known values, scaled: 0.1 V, 0.01 Hz, 0.1 °C, 0.01 A, 0.1 W, Wh."""
    by = {b.measurement: b for b in batches}
    assert list(by) == ["dtu", "inverter", "port"]
    profiles = load_profiles()
    for b in batches:   # every field is a profile field, every tag tuple in profile order
        assert set(b.fields) <= {f.name for f in profiles[b.measurement].fields}
        assert all(len(t) == len(profiles[b.measurement].tags) for t in b.tag_sets)
    assert _by_tags(by["dtu"]) == {(dtu_name, DTU_SERIAL): {
        "pv_power": 1234.5, "today_production": 9012.0, "alarm_flag": 1.0,
        "total_production": 1234567.0 + 1200001 + 1300000 + 1111111 + 456789 + 456000}}
    assert _by_tags(by["inverter"]) == {
        (SERIAL_1, dtu_name): {"grid_voltage": 230.1, "grid_frequency": 49.98,
                               "temperature": 31.2, "alarm_count": 0.0, "link_status": 1.0,
                               "operating_status": 1.0, "alarm_code": 0.0},
        (SERIAL_2, dtu_name): {"grid_voltage": 231.5, "grid_frequency": 50.01,
                               "temperature": 28.7, "alarm_count": 2.0, "link_status": 1.0,
                               "operating_status": 1.0, "alarm_code": 141.0}}
    ports = _by_tags(by["port"])
    assert len(ports) == 6
    assert ports[(SERIAL_1, "1", dtu_name)] == {
        "pv_voltage": 34.2, "pv_current": 6.12, "pv_power": 209.3,
        "today_production": 1510.0, "total_production": 1234567.0}
    assert ports[(SERIAL_2, "2", dtu_name)] == {
        "pv_voltage": 30.5, "pv_current": 4.66, "pv_power": 142.1,
        "today_production": 720.0, "total_production": 456000.0}
    assert {k[:2] for k in ports} == {(SERIAL_1, "1"), (SERIAL_1, "2"), (SERIAL_1, "3"),
                                      (SERIAL_1, "4"), (SERIAL_2, "1"), (SERIAL_2, "2")}


# -- mapping (pure) ------------------------------------------------------------------------------
def test_real_data_is_scaled_into_the_profiles() -> None:
    batches = real_data_batches(_message(), "roof", T)
    _assert_reading(batches)
    assert all((b.time_ns == T).all() for b in batches)


def test_unheard_inverter_gets_nan_and_an_empty_answer_no_rows() -> None:
    msg = _message()
    msg.sgs_data[1].voltage = 0
    msg.sgs_data[1].frequency = 0
    inv = _by_tags(real_data_batches(msg, "roof", T)[1])[(SERIAL_2, "roof")]
    assert all(math.isnan(inv[k]) for k in ("grid_voltage", "grid_frequency", "temperature"))
    assert inv["alarm_count"] == 2.0
    assert real_data_batches(RealDataNew_pb2.RealDataNewReqDTO(dtu_power=0), "roof", T) == []
    only_dtu = RealDataNew_pb2.RealDataNewReqDTO(device_serial_number="", dtu_power=10)
    only_dtu.pv_data.add(serial_number=1, port_number=1, voltage=300)
    totals = _by_tags(real_data_batches(only_dtu, "roof", T, dtu_serial="fallback")[0])
    assert math.isnan(totals[("roof", "fallback")]["alarm_flag"])   # no inverter data


def test_operating_status_and_alarm_code_come_from_power_and_port_errors() -> None:
    """Producing (active power > 0) is status 1, else 0; the alarm code is the first non-zero
    error code of the inverter's ports (0 without one, NaN without any port data)."""
    msg = _message()
    msg.sgs_data[0].active_power = 0                       # dusk: reachable, not producing
    for pv in msg.pv_data:
        if pv.serial_number == INVERTERS[0].serial and pv.port_number in (2, 4):
            pv.error_code = 205 if pv.port_number == 2 else 300
    inv = _by_tags(real_data_batches(msg, "roof", T)[1])
    assert inv[(SERIAL_1, "roof")]["operating_status"] == 0.0
    assert inv[(SERIAL_1, "roof")]["alarm_code"] == 205.0   # port 2 before port 4
    assert inv[(SERIAL_2, "roof")]["operating_status"] == 1.0
    assert inv[(SERIAL_2, "roof")]["alarm_code"] == 141.0
    no_ports = _message()
    del no_ports.pv_data[:]
    alone = _by_tags(real_data_batches(no_ports, "roof", T)[1])[(SERIAL_2, "roof")]
    assert alone["operating_status"] == 1.0 and math.isnan(alone["alarm_code"])


# -- settings ------------------------------------------------------------------------------------
def test_settings_defaults_safe_interval_and_catalog() -> None:
    s = HoymilesSettings(name="roof", host="10.0.0.9")
    assert (s.port, s.poll_interval_s, s.force_poll_interval) == (10081, 35.0, False)
    assert MIN_POLL_INTERVAL_S == 35.0 and s.tag_dtu_name == "roof"
    with pytest.raises(ValidationError) as info:
        HoymilesSettings(name="roof", host="h", poll_interval_s=10)
    message = str(info.value)
    assert "poll_interval_s: 10 s is faster than the DTU's safe minimum of 35 s" in message
    assert "force_poll_interval: true" in message
    forced = HoymilesSettings(name="roof", host="h", poll_interval_s=10, backoff_min_s=1,
                              force_poll_interval=True)
    assert forced.poll_interval_s == 10
    assert "hoymiles" in SOURCE_TAGS
    parsed = TypeAdapter(SourceConfig).validate_python(
        {"type": "hoymiles", "name": "roof", "host": "h", "dtu_name": "Dach"})
    assert isinstance(parsed, HoymilesSettings) and parsed.tag_dtu_name == "Dach"
    with pytest.raises(ValidationError, match="poll_interval_s"):
        TypeAdapter(SourceConfig).validate_python(
            {"type": "hoymiles", "name": "roof", "host": "h", "poll_interval_s": 5})
    source = s.build(SourceContext())
    assert isinstance(source, PolledSource) and source.status.kind == "hoymiles"


# -- the poller against the fake DTU -------------------------------------------------------------
def test_poller_reads_the_fake_dtu(dtu: FakeDTU) -> None:
    poller = HoymilesPoller("127.0.0.1", dtu.port, "roof")
    try:
        poller.connect(2.0)
        assert (poller.dtu_serial, poller.encrypted) == (DTU_SERIAL, False)
        _assert_reading(poller.poll(2.0))
    finally:
        poller.close()
    assert [(r.command, r.encrypted, r.cp) for r in dtu.requests] == [
        (0xA301, False, None), (0xA311, False, 0)]
    assert dtu.errors == []


def test_encrypted_dtu_answering_in_two_pages() -> None:
    fake = FakeDTU(pages=2, enc_rand=bytes(range(100, 116))).start()
    poller = HoymilesPoller("127.0.0.1", fake.port, "roof")
    try:
        poller.connect(2.0)
        assert poller.encrypted
        _assert_reading(poller.poll(2.0))   # both pages merged: 2 inverters, 6 ports
    finally:
        poller.close()
        fake.stop()
    assert [(r.command, r.encrypted, r.cp) for r in fake.requests] == [
        (0xA301, False, None), (0xA311, True, 0), (0xA311, True, 1)]
    assert fake.errors == []


def test_refused_and_garbled_answers_are_transient_errors(dtu: FakeDTU) -> None:
    poller = HoymilesPoller("127.0.0.1", free_port(), "roof")
    with pytest.raises(SourceError, match="did not answer the app information") as info:
        poller.connect(1.0)
    assert info.value.transient
    poller.close()
    dtu.mode = "garbage"
    poller = HoymilesPoller("127.0.0.1", dtu.port, "roof")
    with pytest.raises(SourceError, match="unreadable app information answer") as info:
        poller.connect(1.0)
    assert info.value.transient
    poller.close()


# -- through the shared wrapper ------------------------------------------------------------------
def _settings(port: int, **kw: object) -> HoymilesSettings:
    base: dict[str, object] = {
        "name": "roof", "host": "127.0.0.1", "port": port, "poll_interval_s": 0.1,
        "force_poll_interval": True, "timeout_s": 0.5, "backoff_min_s": 0.05,
        "backoff_max_s": 0.1, "offline_after_failures": 2}
    return HoymilesSettings.model_validate(base | kw)


def test_silent_dtu_goes_offline_without_zero_rows(dtu: FakeDTU) -> None:
    events: list[Event] = []
    source = _settings(dtu.port).build(SourceContext(events=events.append))
    assert isinstance(source, PolledSource)
    sink = ListSink()
    batches = sink.batches

    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(batches) >= 3, "one poll")   # dtu, inverter, port
        dtu.silence(True)
        wait_until(lambda: any(e.kind == "source_offline" for e in events), "offline")
        assert source.status.state == "offline" and source.status.errors >= 2
        assert "did not answer" in (source.status.last_error or "")
        during = len(batches)
        time.sleep(1.0)
        assert len(batches) == during                    # nothing is written while silent
        dtu.silence(False)
        wait_until(lambda: any(e.kind == "source_online" for e in events), "online")
        wait_until(lambda: len(batches) > during, "a batch after the silence")
    finally:
        stop.set()
        thread.join(15)
    assert [e.kind for e in events] == ["source_offline", "source_online"]
    assert all(e.measurement == "dtu" for e in events)
    for i in range(0, len(batches) - len(batches) % 3, 3):   # every poll: the full reading
        _assert_reading(batches[i:i + 3])


# -- end to end: `sunarchive run --config` into DuckDB --------------------------------------------
def _source_state(url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(f"{url}/api/v1/sources", timeout=2)
    except httpx.HTTPError:
        return {}
    entries = [s for s in answer.json() if s["name"] == "roof"] if answer.is_success else []
    return entries[0] if entries else {}


def test_sunarchive_run_stores_the_dtu(tmp_path: Path, dtu: FakeDTU) -> None:
    http_port = free_port()
    config = tmp_path / "sunarchive.yaml"
    config.write_text(
        "sources:\n"
        f"  - {{type: hoymiles, name: roof, dtu_name: Dach, host: 127.0.0.1, port: {dtu.port},\n"
        "     poll_interval_s: 1, force_poll_interval: true, timeout_s: 2}\n")
    db = tmp_path / "store.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "run", "--config", str(config), "--db", str(db),
         "--no-console", "--http-port", str(http_port)],
        cwd=tempfile.gettempdir(), env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: _source_state(url).get("samples", 0) >= 18,
                   "two polls (9 rows each) counted", timeout_s=90)
        state = _source_state(url)
        time.sleep(1.5)                                  # let the last second close
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert state["type"] == "hoymiles" and state["state"] == "connected"
    assert json.loads(out.strip().splitlines()[-1])["samples_in"] >= 18
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        dtus = con.execute("SELECT DISTINCT dtu_name, dtu_serial, pv_power_avg, "
                           "today_production_last, alarm_flag_any FROM dtu_1s "
                           "WHERE sample_count > 0").fetchall()
        invs = con.execute("SELECT DISTINCT serial_number, grid_voltage_avg, "
                           "grid_frequency_avg, temperature_avg FROM inverter_1s "
                           "WHERE sample_count > 0 ORDER BY 1").fetchall()
        statuses = con.execute("SELECT DISTINCT serial_number, operating_status, alarm_code, "
                               "alarm_count FROM inverter ORDER BY 1").fetchall()
        ports = con.execute("SELECT serial_number, port_number, avg(pv_current_avg), "
                            "max(total_production_last) FROM port_1s WHERE sample_count > 0 "
                            "GROUP BY ALL "
                            "ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    assert dtus == [("Dach", DTU_SERIAL, 1234.5, 9012, True)]
    assert [(s, v, f, t) for s, v, f, t in invs] == [
        (SERIAL_2, 231.5, 50.01, 28.7), (SERIAL_1, 230.1, 49.98, 31.2)]
    assert statuses == [(SERIAL_2, 1, 141, 2), (SERIAL_1, 1, 0, 0)]   # the plain view
    assert [(s, p) for s, p, _, _ in ports] == [
        (SERIAL_2, "1"), (SERIAL_2, "2"), (SERIAL_1, "1"), (SERIAL_1, "2"), (SERIAL_1, "3"),
        (SERIAL_1, "4")]
    assert np.isclose(ports[2][2], 6.12) and ports[2][3] == 1234567


def test_docs_sample_config_loads_and_builds() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "sources" / "hoymiles.md"
    (block,) = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)
    (entry,) = yaml.safe_load(block)["sources"]
    settings = TypeAdapter(SourceConfig).validate_python(entry)
    assert isinstance(settings, HoymilesSettings) and settings.tag_dtu_name == "Dach"
    assert isinstance(settings.build(SourceContext()), PolledSource)
    with pytest.raises(ValidationError) as info:
        HoymilesSettings(name="x", host="h", poll_interval_s=10)
    assert re.search(r"poll_interval_s: 10 s is faster than .* anyway", doc.read_text())
    assert "poll_interval_s: 10 s is faster than the DTU's safe minimum of 35 s; set " \
           "force_poll_interval: true to poll faster anyway" in str(info.value)
