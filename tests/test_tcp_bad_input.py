"""The TCP receiver never crashes on numbers and never holds idle or endless clients (issue 14,
points 5 and 9): real sockets on a free loopback port."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from sunarchive.model import NS_PER_S
from sunarchive.sources.tcp.config import TcpSettings
from sunarchive.sources.tcp.receiver import LineDecoder
from tests.support.tcp_receiver import MPP, PROFILES, T0, connect, json_line, running
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

OUTSIDE = "is outside the storable range 1970-01-01T00:00:00Z … 2200-01-01T00:00:00Z"


@pytest.mark.parametrize(("record", "reason"), [
    ('{"time": 1e30, "voltage": 1}', f"time 1e+30 {OUTSIDE}"),
    ('{"time": 99999999999999999999, "voltage": 1}', f"time 99999999999999999999 {OUTSIDE}"),
    ('{"time": 1' + "0" * 400 + ', "voltage": 1}', "is beyond float64"),
    ('{"time": -1, "voltage": 1}', f"time -1 {OUTSIDE}"),
    ('{"time": "9999-12-31T00:00:00Z", "voltage": 1}', f"time '9999-12-31T00:00:00Z' {OUTSIDE}"),
    ('{"time": "0001-01-01T00:00:00+05:00", "voltage": 1}', OUTSIDE),
    ('{"time": 1, "voltage": 1e999}', "field 'voltage' value inf is not a finite number"),
    ('{"time": 1, "voltage": 1e120}', "field 'voltage' value 1e+120 is beyond ±1e+100"),
    ('{"time": 1, "voltage": 1' + "0" * 400 + "}", "is beyond float64"),
    ('{"time": 1, "voltage": "-1e999"}', "field 'voltage' value '-1e999' is not a finite"),
    ("[" * 100_000 + "]" * 100_000, "cannot decode the line"),
])
def test_json_numbers_the_store_cannot_hold_reject_the_record(record: str, reason: str) -> None:
    decoded = LineDecoder(TcpSettings(name="r", port=1, measurement=MPP), PROFILES).decode(
        record, 0)
    assert decoded.records == [] and any(reason in p for p in decoded.problems), decoded


def test_csv_and_lineprotocol_numbers_the_store_cannot_hold() -> None:
    csv = LineDecoder(TcpSettings(name="r", port=1, format="csv", measurement=MPP), PROFILES)
    csv.decode("time,device_id,voltage,current", 0)
    assert OUTSIDE in csv.decode("1e30,a,1,2", 0).problems[0]
    assert "not a finite number" in csv.decode("1,a,1e999,2", 0).problems[0]
    missing = csv.decode("1,a,,2", 0)   # an empty cell is missing, not bad
    assert not missing.problems and missing.records[0].fields == {"current": 2.0}
    lp = LineDecoder(TcpSettings(name="r", port=1, format="lineprotocol", precision="s"),
                     PROFILES)
    late = lp.decode("mpp_measurement,device_id=a voltage=1 9000000000", 0)   # year 2255
    assert late.records == [] and OUTSIDE in late.problems[0]
    huge = lp.decode("mpp_measurement,device_id=a voltage=5e118 100", 0)
    assert huge.records == [] and "beyond ±1e+100" in huge.problems[0]


def test_an_absurd_time_is_reported_and_the_source_keeps_running() -> None:
    with running(measurement=MPP) as (source, sink):
        sock = connect(source)
        sock.sendall(json_line("a", 0).encode())
        sock.sendall(b'{"time": 1e30, "device_id": "a", "voltage": 1}\n')
        wait_until(lambda: source.status.errors == 1, "the bad time reported")
        assert (source.status.last_error or "").endswith(f"line 2: time 1e+30 {OUTSIDE}")
        sock.sendall(b'{"time": 1, "device_id": "a", "voltage": 1e999}\n')
        wait_until(lambda: source.status.errors == 2, "the bad value reported")
        sock.sendall(json_line("a", 1).encode())
        wait_until(lambda: len(sink.rows()) == 2, "the good records around them")
        other = connect(source)   # the port is still open
        other.sendall(json_line("b", 2).encode())
        wait_until(lambda: len(sink.rows()) == 3, "a record on a new connection")
        assert sorted(r["time_ns"] for r in sink.rows()) == [(T0 + k) * NS_PER_S
                                                             for k in range(3)]
        sock.close()
        other.close()


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(30)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_and_dripping_connections_are_closed_after_idle_timeout_s() -> None:
    with running(measurement=MPP, idle_timeout_s=0.5) as (source, sink):
        idle = connect(source)
        drip = connect(source)
        drip.sendall(b'{"time": 1')   # bytes, but never a whole line
        wait_until(lambda: source.connections == 2, "two connections")
        assert _closed_by_peer(idle) and _closed_by_peer(drip)
        wait_until(lambda: source.connections == 0, "both connections closed")
        fresh = connect(source)   # the port still accepts
        fresh.sendall(json_line("a", 0).encode())
        wait_until(lambda: len(sink.rows()) == 1, "a record on a new connection")
        for sock in (idle, drip, fresh):
            sock.close()


def test_five_megabytes_without_a_newline_are_skipped_as_they_stream_in() -> None:
    with running(measurement=MPP, max_line_bytes=1024) as (source, sink):
        sock = connect(source)
        sock.sendall(b'{"voltage": "' + b"9" * 5_000_000)   # no newline yet
        wait_until(lambda: "longer than 1024 bytes" in (source.status.last_error or ""),
                   "the long line reported before it ends")
        assert source.status.errors == 1
        sock.sendall(b'"}\n' + json_line("a", 0).encode())
        wait_until(lambda: len(sink.rows()) == 1, "the next line kept")
        assert sink.rows()[0]["voltage"] == 0.5 and source.status.errors == 1
        sock.close()


def test_stopping_with_connections_open_logs_no_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), running(measurement=MPP) as (source, sink):
        sock = connect(source)
        sock.sendall(json_line("a", 0).encode())
        wait_until(lambda: len(sink.rows()) == 1, "the record")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    sock.close()


def test_settings_have_defaults_and_refuse_nonsense() -> None:
    settings = TcpSettings(name="r", port=1, measurement=MPP)
    assert (settings.idle_timeout_s, settings.max_line_bytes) == (300.0, 65536)
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match="idle_timeout_s"):
            TcpSettings(name="r", port=1, measurement=MPP, idle_timeout_s=bad)
    assert json.loads(settings.model_dump_json())["idle_timeout_s"] == 300.0
