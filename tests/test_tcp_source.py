"""The TCP line receiver with real sockets on a free loopback port: JSON, CSV and line protocol
over several concurrent connections, a bad line in the middle of each (reported with the peer
and its line number, the connection stays open), and end to end through the agent into a real
DuckDB file and through `sunarchive run --config`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sunarchive.model import NS_PER_S, ConfigError
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.sources.catalog import SourceConfig
from sunarchive.sources.running import SourceContext
from sunarchive.sources.tcp.config import TcpSettings
from sunarchive.sources.tcp.receiver import LineDecoder, TcpReceiver
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.cli import clean_env
from tests.support.ports import free_port
from tests.support.sinks import ListSink
from tests.support.tcp_receiver import MPP, T0, connect, json_line, peer_of, running
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PROFILES = load_profiles()


# -- settings ----------------------------------------------------------------------------------
def test_settings_parse_through_the_catalog_and_need_a_measurement() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(SourceConfig)
    parsed = adapter.validate_python({"type": "tcp", "name": "rig", "port": 5555,
                                      "format": "csv", "measurement": MPP})
    assert isinstance(parsed, TcpSettings)
    assert parsed.host == "127.0.0.1" and parsed.time_field == "time"
    assert parsed.batch_interval_s == 1.0
    with pytest.raises(ValidationError, match="needs a measurement"):
        TcpSettings(name="rig", port=5555, format="json")
    TcpSettings(name="rig", port=5555, format="lineprotocol")
    with pytest.raises(ValidationError):
        TcpSettings.model_validate({"name": "rig", "port": 5555, "measurement": MPP,
                                    "bogus": 1})
    with pytest.raises(ConfigError, match="no profile"):
        TcpSettings(name="rig", port=5555, measurement="nope").build(
            SourceContext("UTC", PROFILES))


# -- decoding (no sockets) ---------------------------------------------------------------------
def _json_decoder() -> LineDecoder:
    return LineDecoder(TcpSettings(name="r", port=1, measurement=MPP), PROFILES)


def test_json_times_tags_and_fields() -> None:
    decoder = _json_decoder()
    iso = decoder.decode('{"time": "2024-06-21T12:00:00.25+02:00", "device_id": "a", '
                         '"board": 3, "voltage": 0.61, "current": null}', 0)
    assert not iso.problems
    (record,) = iso.records
    expected = datetime(2024, 6, 21, 10, 0, 0, 250000, tzinfo=UTC)
    assert record.time_ns == int(expected.timestamp()) * NS_PER_S + 250_000_000
    assert record.tags == ("a", "3", "") and record.fields == {"voltage": 0.61}
    epoch = decoder.decode('{"time": 1718964000.5, "device_id": "a", "power": 1}', 0)
    assert epoch.records[0].time_ns == 1718964000 * NS_PER_S + NS_PER_S // 2
    arrival = decoder.decode('{"voltage": "0.7"}', 123)
    assert arrival.records[0].time_ns == 123 and arrival.records[0].fields == {"voltage": 0.7}


@pytest.mark.parametrize(("line", "reason"), [
    ('{"time": 1, "voltage": ', "invalid JSON"),
    ('[1, 2]', "expected a JSON object"),
    ('{"time": "2024-06-21T12:00:00", "voltage": 1}', "no time zone offset"),
    ('{"time": "yesterday", "voltage": 1}', "neither ISO 8601 nor epoch"),
    ('{"time": 1, "voltage": "high"}', "'voltage' value 'high' is not a number"),
    ('{"time": 1, "voltage": [1]}', "not a number"),
    ('{"time": 1, "device_id": "a"}', "no field values"),
])
def test_json_bad_records_are_reported_without_a_record(line: str, reason: str) -> None:
    decoded = _json_decoder().decode(line, 0)
    assert decoded.records == [] and any(reason in p for p in decoded.problems)


def test_json_unknown_key_is_reported_and_the_known_fields_are_kept() -> None:
    decoded = _json_decoder().decode('{"time": 1, "voltage": 0.5, "temp": 25}', 0)
    assert len(decoded.problems) == 1 and "temp" in decoded.problems[0]
    assert decoded.records[0].fields == {"voltage": 0.5}


def test_csv_header_then_rows_and_timezone_offsets() -> None:
    decoder = LineDecoder(TcpSettings(name="r", port=1, format="csv", measurement=MPP,
                                      time_field="ts"), PROFILES)
    header = decoder.decode("ts,device_id,channel,voltage,current,extra", 0)
    assert header.records == [] and "extra" in header.problems[0]
    row = decoder.decode("2024-01-01T01:00:00+01:00,a,2,0.5,,9", 0)
    assert not row.problems
    assert row.records[0].tags == ("a", "", "2")
    assert row.records[0].fields == {"voltage": 0.5}
    assert row.records[0].time_ns == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * NS_PER_S
    short = decoder.decode("1,a", 0)
    assert short.records == [] and "2 columns, the header has 6" in short.problems[0]


def test_lineprotocol_decoding() -> None:
    decoder = LineDecoder(TcpSettings(name="r", port=1, format="lineprotocol", precision="s"),
                          PROFILES)
    good = decoder.decode("mpp_measurement,device_id=a,channel=1 voltage=0.5,power=1i 100", 0)
    assert not good.problems
    assert good.records[0].tags == ("a", "", "1") and good.records[0].time_ns == 100 * NS_PER_S
    assert good.records[0].fields == {"voltage": 0.5, "power": 1.0}
    unknown = decoder.decode("mpp_measurement,device_id=a,room=x voltage=0.5,foo=2 100", 0)
    assert unknown.records[0].fields == {"voltage": 0.5}
    assert "room" in unknown.problems[0] and "foo" in unknown.problems[0]
    for line, reason in [("mpp_measurement voltage=", "voltage"),
                         ("nosuch,a=b x=1 1", "has no profile"),
                         ('mpp_measurement voltage="high" 1', "string")]:
        bad = decoder.decode(line, 0)
        assert bad.records == [] and any(reason in p for p in bad.problems), bad


# -- real sockets --------------------------------------------------------------------------------
def test_json_over_concurrent_connections_with_a_bad_line_in_the_middle() -> None:
    with running(measurement=MPP) as (source, sink):
        socks = [connect(source) for _ in range(4)]
        wait_until(lambda: source.connections == 4, "four connections")
        for k in range(5):                      # interleaved writes on all connections
            for n, sock in enumerate(socks):
                sock.sendall(json_line(f"dev{n}", k).encode())
        bad = socks[2]
        bad.sendall(b'{"time": 1, "voltage": oops}\n')          # line 6 of connection 2
        for k in range(5, 8):                   # later lines on every connection are kept
            for n, sock in enumerate(socks):
                sock.sendall(json_line(f"dev{n}", k).encode())
        wait_until(lambda: len(sink.rows()) == 4 * 8, "all good records")
        status = source.status.snapshot()
        assert status["state"] == "connected"
        assert status["errors"] == 1
        assert status["last_error"].startswith(f"{peer_of(bad)} line 6: invalid JSON")
        rows = sink.rows()
        for n in range(4):
            mine = sorted((r for r in rows if r["device_id"] == f"dev{n}"),
                          key=lambda r: r["time_ns"])
            assert [r["time_ns"] for r in mine] == [(T0 + k) * NS_PER_S for k in range(8)]
            assert all(r["board"] == "1" and r["channel"] in ("0", "1") for r in mine)
            assert mine[3]["voltage"] == pytest.approx(0.53)
        for sock in socks:
            sock.close()
        wait_until(lambda: source.connections == 0, "the connections to close")


def test_csv_each_connection_has_its_own_header() -> None:
    with running(format="csv", measurement=MPP) as (source, sink):
        a, b = connect(source), connect(source)
        a.sendall(b"time,device_id,voltage,current\n")
        b.sendall(b"device_id,channel,power,time\n")
        a.sendall(f"{T0},A,0.5,1.5\n{T0 + 1},A,0.6,1.6\n".encode())
        b.sendall(f"B,3,2.5,{T0}\n".encode())
        a.sendall(f"{T0 + 2},A,zero,1.7\n".encode())               # line 4 of a: bad value
        b.sendall(f"B,3,2.6,{T0 + 1}\nB,3,2.7,{T0 + 2}\n".encode())
        a.sendall(f"{T0 + 3},A,0.8,1.8".encode())                  # no final newline
        a.shutdown(socket.SHUT_WR)                                 # EOF ends the last line
        wait_until(lambda: len(sink.rows()) == 3 + 3, "all good CSV rows")
        assert source.status.errors == 1
        assert source.status.last_error == (f"{peer_of(a)} line 4: field 'voltage' value "
                                            "'zero' is not a number")
        rows = sink.rows()
        a_rows = sorted((r for r in rows if r["device_id"] == "A"), key=lambda r: r["time_ns"])
        assert [r["voltage"] for r in a_rows] == [0.5, 0.6, 0.8]
        assert [r["current"] for r in a_rows] == [1.5, 1.6, 1.8]
        b_rows = sorted((r for r in rows if r["device_id"] == "B"), key=lambda r: r["time_ns"])
        assert [(r["channel"], r["power"]) for r in b_rows] == [("3", 2.5), ("3", 2.6),
                                                              ("3", 2.7)]
        assert all("voltage" not in r for r in b_rows)
        a.close()
        b.close()


def test_lineprotocol_connections_and_a_bad_line() -> None:
    with running(format="lineprotocol", precision="s") as (source, sink):
        socks = [connect(source) for _ in range(3)]
        for n, sock in enumerate(socks):
            body = "".join(f"mpp_measurement,device_id=lp{n},channel=1 voltage={k}.5 {T0 + k}\n"
                           for k in range(3))
            sock.sendall(body.encode())
        socks[1].sendall(b"mpp_measurement,device_id=lp1 voltage=abc\n")   # line 4
        for n, sock in enumerate(socks):
            sock.sendall(f"mpp_measurement,device_id=lp{n},channel=1 voltage=9 {T0 + 9}\n"
                         .encode())
        wait_until(lambda: len(sink.rows()) == 3 * 4, "all good points")
        assert source.status.errors == 1
        assert (source.status.last_error or "").startswith(f"{peer_of(socks[1])} line 4: ")
        lp1 = sorted((r for r in sink.rows() if r["device_id"] == "lp1"),
                     key=lambda r: r["time_ns"])
        assert [r["voltage"] for r in lp1] == [0.5, 1.5, 2.5, 9.0]
        assert lp1[-1]["time_ns"] == (T0 + 9) * NS_PER_S
        for sock in socks:
            sock.close()


def test_unknown_key_keeps_fields_and_a_long_line_is_skipped() -> None:
    with running(measurement=MPP, max_line_bytes=200) as (source, sink):
        sock = connect(source)
        sock.sendall(json_line("x", 0, humidity=40).encode())          # line 1: unknown key
        sock.sendall(b'{"voltage": ' + b"1" * 500 + b"}\n")            # line 2: too long
        sock.sendall(json_line("x", 1).encode())                        # line 3
        wait_until(lambda: len(sink.rows()) == 2, "the two kept records")
        assert source.status.errors == 2
        assert "line 2: longer than 200 bytes" in (source.status.last_error or "")
        assert {r["voltage"] for r in sink.rows()} == {0.5, 0.51}
        sock.close()


def test_records_ahead_of_the_clock_are_refused_with_their_line() -> None:
    """Issue 14, point 4: one record from next year would push the measurement's watermark a
    year ahead; it is refused with its line, the records around it are kept."""
    now = int(time.time())
    year = 365 * 86400
    with running(max_future_s=120, measurement=MPP) as (source, sink):
        sock = connect(source)
        sock.sendall(json_line("j", 0).encode())                              # line 1
        sock.sendall(json.dumps({"time": now + year, "voltage": 1}).encode() + b"\n")
        sock.sendall(json.dumps({"time": now + 60, "voltage": 2}).encode() + b"\n")
        sock.sendall(json_line("j", 1).encode())                              # line 4
        wait_until(lambda: len(sink.rows()) == 3, "the three records in time")
        assert source.status.errors == 1
        assert re.fullmatch(rf"{re.escape(peer_of(sock))} line 2: timestamp \S+ is 36\d\.\d "
                            r"days ahead of the clock \(more than max_future_s = 120 s\)",
                            source.status.last_error or ""), source.status.last_error
        assert sorted(r["voltage"] for r in sink.rows()) == [0.5, 0.51, 2.0]
        sock.close()
    with running(max_future_s=120, format="lineprotocol", precision="s") as (source, sink):
        sock = connect(source)
        sock.sendall((f"mpp_measurement,device_id=a voltage=1 {now}\n"
                      f"mpp_measurement,device_id=a voltage=2 {now + 3600}\n"
                      f"mpp_measurement,device_id=a voltage=3 {now + 1}\n").encode())
        wait_until(lambda: len(sink.rows()) == 2, "the two points in time")
        assert source.status.errors == 1
        assert "line 2: timestamp " in (source.status.last_error or "")
        assert re.search(r" is 3[56]\d\d s ahead of the clock", source.status.last_error or "")
        assert sorted(r["voltage"] for r in sink.rows()) == [1.0, 3.0]
        sock.close()


def test_the_app_gives_tcp_sources_the_max_future_s_setting(tmp_path: Path) -> None:
    from sunarchive.app import build_app
    from sunarchive.settings import load_settings

    settings = load_settings(overrides={
        "database_url": f"duckdb:///{tmp_path / 'f.duckdb'}", "http_enabled": False,
        "max_future_s": 42.0,
        "sources": [{"type": "tcp", "name": "rig", "port": free_port(), "measurement": MPP}]},
        env={}, dotenv_file=None)
    app = build_app(settings, demo=False)
    try:
        (source,) = app.adapters
        assert isinstance(source, TcpReceiver) and source.max_future_s == 42.0
    finally:
        app.store.close()


def test_port_in_use_is_offline_then_listens_when_free() -> None:
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    settings = TcpSettings(name="rig", port=port, measurement=MPP, batch_interval_s=0.05)
    source = TcpReceiver(settings, SourceContext("UTC", PROFILES))
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(ListSink(), stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: source.status.state == "offline", "the busy port to be reported")
        assert "cannot listen" in (source.status.last_error or "")
        blocker.close()
        assert source.listening.wait(5)
        assert source.status.state == "connected" and source.status.reconnects == 1
    finally:
        blocker.close()
        stop.set()
        thread.join(5)
    assert not thread.is_alive() and source.status.state == "stopped"


# -- end to end ------------------------------------------------------------------------------
def test_agent_stores_tcp_records_in_duckdb(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb", load_profiles())
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.5, commit_interval_s=0.05)
    settings = TcpSettings(name="rig", port=free_port(), measurement=MPP, batch_interval_s=0.1)
    source = settings.build(SourceContext("UTC", store.profiles, agent.post_event))
    assert isinstance(source, TcpReceiver)
    agent.add_source(source)
    agent.start()
    try:
        assert source.listening.wait(5)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        plus2 = timezone(timedelta(hours=2))
        socks = [connect(source) for _ in range(2)]
        for k in range(10):
            for n, sock in enumerate(socks):
                stamp = (start + timedelta(seconds=k)).astimezone(plus2).isoformat()
                sock.sendall(json.dumps({"time": stamp, "device_id": f"cell{n}", "board": 1,
                                         "channel": 0, "voltage": 0.5 + n,
                                         "power": 1.0}).encode() + b"\n")
            if k == 4:
                socks[0].sendall(b"not json\n")
        wait_until(lambda: source.status.samples == 20, "all records counted")
        for sock in socks:
            sock.close()
    finally:
        agent.stop()
    snap = source.status.snapshot()
    assert snap["errors"] == 1 and "line 6: invalid JSON" in snap["last_error"]
    result = store.sql(f"SELECT device_id, count(*) AS n, sum(sample_count) AS samples, "
                       f"avg(voltage_avg) AS v FROM {MPP}_1s GROUP BY ALL ORDER BY 1")
    assert [tuple(r.values()) for r in result.table.to_pylist()] == [
        ("cell0", 10, 10, pytest.approx(0.5)), ("cell1", 10, 10, pytest.approx(1.5))]
    first = store.sql(f"SELECT min(epoch(time)) AS t FROM {MPP}_1s").table.to_pylist()[0]["t"]
    assert first == start.timestamp()
    store.close()


def _source_state(url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(f"{url}/api/v1/sources", timeout=2)
    except httpx.HTTPError:
        return {}
    entries = [s for s in answer.json() if s["name"] == "rig"] if answer.is_success else []
    return entries[0] if entries else {}


def test_sunarchive_run_receives_csv(tmp_path: Path) -> None:
    tcp_port, http_port = free_port(), free_port()
    config = tmp_path / "sunarchive.yaml"
    config.write_text(
        "sources:\n"
        f"  - {{type: tcp, name: rig, port: {tcp_port}, format: csv,\n"
        f"     measurement: {MPP}, batch_interval_s: 0.2}}\n")
    db = tmp_path / "store.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "run", "--config", str(config), "--db", str(db),
         "--no-console", "--http-port", str(http_port)],
        cwd=tempfile.gettempdir(), env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    start = int(time.time()) - 20
    try:
        wait_until(lambda: _source_state(url).get("state") == "connected",
                   "the receiver to listen", 60)
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as sock:
            lines = ["time,device_id,board,channel,voltage,current,power"]
            lines += [f"{start + k},lab,2,{k % 2},0.6,3.0,1.8" for k in range(6)]
            lines.insert(3, f"{start},lab,2,0,0.6,3.0")                  # line 4: too few
            sock.sendall(("\n".join(lines) + "\n").encode())
            wait_until(lambda: _source_state(url).get("samples") == 6, "six rows counted")
        state = _source_state(url)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert state["errors"] == 1 and "line 4: 6 columns, the header has 7" in state["last_error"]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["samples_in"] == 6
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(f"SELECT channel, sum(sample_count), avg(power_avg) FROM {MPP}_1s "
                           "GROUP BY ALL ORDER BY 1").fetchall()
    finally:
        con.close()
    assert [(c, int(n)) for c, n, _ in rows] == [("0", 3), ("1", 3)]
    assert all(np.isclose(p, 1.8) for _, _, p in rows)


def test_the_sample_config_in_the_docs_loads_and_builds(tmp_path: Path) -> None:
    from sunarchive.settings import load_settings

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sources" / "tcp.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    (tmp_path / "c.yaml").write_text(block)
    settings = load_settings(config_file=tmp_path / "c.yaml", env={}, dotenv_file=None)
    (source,) = settings.sources
    assert isinstance(source, TcpSettings)
    assert (source.name, source.host, source.port, source.format, source.measurement,
            source.time_field, source.batch_interval_s) == (
        "lab-rig", "0.0.0.0", 5555, "json", MPP, "time", 1.0)
    assert isinstance(source.build(SourceContext("UTC", PROFILES)), TcpReceiver)
    # the documented defaults are the settings' defaults
    table = dict(re.findall(r"^\| `(\w+)` \| `?([^`|]*?)`? \|", doc, re.M))
    assert set(table) == set(TcpSettings.model_fields) - {"type", "name"}
    for key in ("host", "format", "time_field", "precision", "batch_interval_s",
                "max_line_bytes"):
        assert table[key] == str(TcpSettings.model_fields[key].default), key
    assert (table["port"], table["measurement"]) == ("required", "—")
