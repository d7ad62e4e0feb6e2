"""The InfluxDB mirror against a strict in-process InfluxDB 3 write endpoint on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sunarchive.model import SampleBatch
from sunarchive.profiles import load_profiles
from sunarchive.sinks.buffer import DiskBuffer
from sunarchive.sinks.config import InfluxSettings
from sunarchive.sinks.influxdb import Mirror
from tests.support.influx_fake import FakeInflux3
from tests.support.mirror_batches import T0, hoymiles_batches
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PROFILES = load_profiles()


@pytest.fixture
def fake() -> Iterator[FakeInflux3]:
    server = FakeInflux3().start()
    yield server
    server.stop()


def settings(fake: FakeInflux3, **extra: Any) -> InfluxSettings:
    base: dict[str, Any] = {"enabled": True, "host": fake.url, "token": fake.token,
                            "database": "solar", "flush_interval_s": 0.05,
                            "retry_min_s": 0.05, "retry_max_s": 0.2, "stop_timeout_s": 5}
    return InfluxSettings(**{**base, **extra})


def make_mirror(fake: FakeInflux3, tmp_path: Path, max_bytes: int = 2**30,
                policy: Any = "drop_oldest", **extra: Any) -> Mirror:
    buffer = DiskBuffer(tmp_path / "buffer", max_bytes, policy)
    return Mirror(settings(fake, **extra), PROFILES, buffer)


def panels(start_s: int, seconds: int, panels: int = 3, rate_hz: int = 10) -> SampleBatch:
    """PS100 samples: ``panels`` panels, time-major, value = sample number (for order)."""
    n = seconds * rate_hz
    t = T0 + start_s * 10**9 + np.repeat(np.arange(n, dtype=np.int64) * (10**9 // rate_hz),
                                         panels)
    index = np.tile(np.arange(panels, dtype=np.int32), n)
    value = np.arange(len(t), dtype=np.float64) + start_s * 1000.0
    return SampleBatch("ps100_readings", [(f"panel_{i + 1}",) for i in range(panels)], index,
                       t, {"voltage": value / 1000 + 20, "current": value / 1e6,
                           "power": value / 100, "temperature": np.full(len(t), 25.5)})


def assert_exactly_once_in_order(fake: FakeInflux3, batches: list[SampleBatch]) -> None:
    expected: dict[str, list[int]] = {}
    for batch in batches:
        for i, t in zip(batch.tag_index, batch.time_ns, strict=True):
            expected.setdefault(batch.tag_sets[i][0], []).append(int(t))
    assert fake.series("ps100_readings", "panel_id") == expected


# -- what is sent ------------------------------------------------------------------------------
def test_hoymiles_names_and_types(fake: FakeInflux3, tmp_path: Path) -> None:
    mirror = make_mirror(fake, tmp_path)
    mirror.start()
    for batch in hoymiles_batches():
        mirror.offer_raw(batch)
    assert mirror.flush(20)
    mirror.close()
    by_name = {p.measurement: p for p in fake.points}
    dtu = by_name["dtu"]
    assert dtu.tags == {"dtu_name": "Dach DTU", "dtu_serial": "DTU123"}
    assert dtu.fields == {"pv_power": ("float", 812.4), "today_production": ("int", 1234.0),
                          "total_production": ("int", 9876543.0), "alarm_flag": ("bool", 1.0)}
    inverter = by_name["inverter"]
    assert inverter.tags == {"serial_number": "1161A0000001", "dtu_name": "Dach DTU"}
    assert {k: v[0] for k, v in inverter.fields.items()} == {
        "grid_voltage": "float", "grid_frequency": "float", "temperature": "float",
        "operating_status": "int", "alarm_code": "int", "alarm_count": "int",
        "link_status": "int"}
    port = by_name["port"]
    assert port.tags == {"serial_number": "1161A0000001", "port_number": "1",
                         "dtu_name": "Dach DTU"}
    assert {k: v[0] for k, v in port.fields.items()} == {
        "pv_voltage": "float", "pv_current": "float", "pv_power": "float",
        "today_production": "int", "total_production": "int"}
    assert all(p.time_ns == T0 for p in fake.points)


def test_escaping_missing_values_and_selection(fake: FakeInflux3, tmp_path: Path) -> None:
    mirror = make_mirror(fake, tmp_path, measurements=["dtu"])
    mirror.start()
    index = np.array([0, 1, 0], np.int32)
    mirror.offer_raw(SampleBatch("dtu", [("a b,c=d", "x"), ("plain", "")], index,
                                 np.array([T0, T0 + 1, T0 + 2], np.int64), {
                                     "pv_power": np.array([1.5, np.nan, np.nan]),
                                     "alarm_flag": np.array([0.0, 1.0, np.nan])}))
    mirror.offer_raw(panels(0, 1))  # not selected
    assert mirror.flush(20)
    mirror.close()
    assert [(p.tags, p.fields, p.time_ns) for p in fake.points] == [
        ({"dtu_name": "a b,c=d", "dtu_serial": "x"},
         {"pv_power": ("float", 1.5), "alarm_flag": ("bool", 0.0)}, T0),
        ({"dtu_name": "plain"}, {"alarm_flag": ("bool", 1.0)}, T0 + 1)]  # no field: skipped


def test_gzip_auth_precision_and_batches(fake: FakeInflux3, tmp_path: Path) -> None:
    mirror = make_mirror(fake, tmp_path, precision="ms", batch_size=100)
    mirror.start()
    batch = panels(0, 20)  # 600 points
    mirror.offer_raw(batch)
    assert mirror.flush(20)
    mirror.close()
    assert len(fake.requests) == 6
    for request in fake.requests:
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.headers["Authorization"] == f"Token {fake.token}"
        assert request.params == {"db": "solar", "precision": "millisecond"}
        assert request.lines == 100
    assert [p.time_ns for p in fake.points] == [t // 10**6 * 10**6 for t in batch.time_ns]
    assert mirror.status()["points_sent"] == 600


def test_wrong_token_is_retried_and_never_logged(fake: FakeInflux3, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.token = "the-right-one"
    mirror = make_mirror(fake, tmp_path, token="wrong-secret-token")
    mirror.start()
    mirror.offer_raw(panels(0, 1))
    wait_until(lambda: mirror.status()["failed_requests"] >= 2, "two failed requests", 20)
    status = mirror.status()
    assert status["state"] == "disconnected" and "401" in status["last_error"]
    assert status["pending"] == 30 and fake.points == []
    fake.token = "wrong-secret-token"  # the server learns the token: the points go through
    assert mirror.flush(20)
    mirror.close()
    assert len(fake.points) == 30
    assert "wrong-secret-token" not in caplog.text
    assert "InfluxDB writer initialized: " + fake.url + "/solar" in caplog.text


# -- rejected points ---------------------------------------------------------------------------
def test_partial_write_logs_rejected_lines(fake: FakeInflux3, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    fake.reject = lambda line: "panel_2 is refused" if "panel_2" in line else None
    mirror = make_mirror(fake, tmp_path)
    mirror.start()
    batch = panels(0, 2)
    mirror.offer_raw(batch)
    mirror.offer_raw(panels(2, 2))
    assert mirror.flush(20)
    mirror.close()
    assert len(fake.points) == 80 and {p.tags["panel_id"] for p in fake.points} == {
        "panel_1", "panel_3"}
    status = mirror.status()
    assert status["points_rejected"] == 40 and status["points_sent"] == 80
    assert "panel_2 is refused" in status["last_error"]
    assert "InfluxDB rejected a point (panel_2 is refused): ps100_readings,panel_id=panel_2 " \
        in caplog.text


def test_bad_request_without_detail_is_split(fake: FakeInflux3, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """v1/v2 refuse a whole request: the mirror halves it until the bad line is alone."""
    fake.partial_writes = False
    fake.reject = lambda line: "bad value" if "voltage=20.017," in line else None
    mirror = make_mirror(fake, tmp_path, batch_size=64)
    mirror.start()
    batch = panels(0, 2)
    mirror.offer_raw(batch)
    assert mirror.flush(20)
    mirror.close()
    assert len(fake.points) == 59
    assert mirror.status()["points_rejected"] == 1
    assert "InfluxDB rejected a point (HTTP 400: write failed: bad value)" in caplog.text


# -- retries -------------------------------------------------------------------------------------
def test_429_retry_after_is_honoured(fake: FakeInflux3, tmp_path: Path) -> None:
    fake.script.append((429, {"Retry-After": "1"}))
    mirror = make_mirror(fake, tmp_path)
    mirror.start()
    batch = panels(0, 1)
    mirror.offer_raw(batch)
    assert mirror.flush(20)
    mirror.close()
    first, second = fake.requests[:2]
    assert first.status == 429 and second.status == 204
    assert second.at - first.at >= 0.95
    assert_exactly_once_in_order(fake, [batch])


def test_500s_back_off_and_keep_order(fake: FakeInflux3, tmp_path: Path) -> None:
    fake.script.extend([(500, {}), (503, {}), (500, {})])
    mirror = make_mirror(fake, tmp_path, batch_size=50)
    mirror.start()
    batches = [panels(s, 1) for s in range(5)]
    for batch in batches:
        mirror.offer_raw(batch)
    assert mirror.flush(20)
    mirror.close()
    assert [r.status for r in fake.requests[:4]] == [500, 503, 500, 204]
    gaps = [b.at - a.at for a, b in zip(fake.requests[:3], fake.requests[1:4], strict=True)]
    # exponential backoff from retry_min_s 0.05 (capped at 0.2): each wait at least doubles.
    # Lower bounds only: a busy machine makes waits longer, never shorter (a ratio of two
    # measured gaps failed in CI when the first gap was stretched)
    assert [g >= want for g, want in zip(gaps, (0.05, 0.1, 0.2), strict=True)] == [True] * 3
    assert_exactly_once_in_order(fake, batches)
    assert mirror.status()["state"] == "connected"


def test_outage_loses_nothing_and_replays_in_order(fake: FakeInflux3, tmp_path: Path) -> None:
    """The server goes away mid-stream and comes back: every point once, in order; while it
    is away points spill from memory to the disk buffer."""
    mirror = make_mirror(fake, tmp_path, queue_max_points=100, batch_size=200)
    mirror.start()
    batches = [panels(s, 1) for s in range(60)]
    for batch in batches[:10]:
        mirror.offer_raw(batch)
    assert mirror.flush(20)
    fake.stop()
    for batch in batches[10:50]:
        mirror.offer_raw(batch)
    wait_until(lambda: mirror.status()["state"] == "disconnected", "disconnected", 20)
    status = mirror.status()
    assert status["pending_disk"] > 0 and status["pending"] == 40 * 30
    fake.start()  # same port
    for batch in batches[50:]:
        mirror.offer_raw(batch)
    assert mirror.flush(30)
    mirror.close()
    assert_exactly_once_in_order(fake, batches)
    assert mirror.status()["pending"] == 0 and len(mirror.buffer) == 0


def test_stop_while_down_keeps_points_for_the_next_start(fake: FakeInflux3,
                                                         tmp_path: Path) -> None:
    fake.stop()
    mirror = make_mirror(fake, tmp_path, stop_timeout_s=0.3)
    mirror.start()
    batches = [panels(s, 1) for s in range(5)]
    for batch in batches[:3]:
        mirror.offer_raw(batch)
    mirror.close()
    assert mirror.buffer.points == 90
    fake.start()
    again = make_mirror(fake, tmp_path)
    assert again.pending_points() == 90
    again.start()
    for batch in batches[3:]:
        again.offer_raw(batch)
    assert again.flush(20)
    again.close()
    assert_exactly_once_in_order(fake, batches)


def test_disk_limit_drops_oldest_and_says_so(fake: FakeInflux3, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    fake.stop()
    mirror = make_mirror(fake, tmp_path, max_bytes=12_000, queue_max_points=1)
    mirror.start()
    batches = [panels(s, 1) for s in range(40)]
    for batch in batches:
        mirror.offer_raw(batch)
    status = mirror.status()
    # the limit bounds what waits on disk; segments the sender holds for its current batch
    # (at most batch_size points) are in flight and never dropped
    assert status["points_dropped"] > 0 and mirror.buffer._waiting_bytes() <= 12_000
    assert caplog.text.count("is full (limit") == 1  # once per episode
    fake.start()
    assert mirror.flush(20)
    mirror.close()
    got = fake.series("ps100_readings", "panel_id")["panel_1"]
    assert got == sorted(got) and got[-1] == int(batches[-1].time_ns[-3])  # the newest kept
    assert len(fake.points) + status["points_dropped"] == 40 * 30


def test_drop_newest_policy(fake: FakeInflux3, tmp_path: Path) -> None:
    fake.stop()
    mirror = make_mirror(fake, tmp_path, max_bytes=12_000, queue_max_points=1,
                         policy="drop_newest")
    mirror.start()
    batches = [panels(s, 1) for s in range(40)]
    for batch in batches:
        mirror.offer_raw(batch)
    dropped = mirror.status()["points_dropped"]
    fake.start()
    assert mirror.flush(20)
    mirror.close()
    got = fake.series("ps100_readings", "panel_id")["panel_1"]
    assert got[0] == T0 and len(fake.points) + dropped == 40 * 30


def test_offer_never_waits_for_influxdb(fake: FakeInflux3, tmp_path: Path) -> None:
    import threading

    fake.stall = threading.Event()  # every request hangs until released
    # a request that timed out while stalled would be sent again and, released, stored twice
    # by the fake (InfluxDB would dedupe it): the write timeout outlasts the stall
    mirror = make_mirror(fake, tmp_path, queue_max_points=500, timeout_s=600)
    mirror.start()
    batches = [panels(s, 1) for s in range(100)]
    def offer_all() -> None:
        for batch in batches:
            mirror.offer_raw(batch)

    offering = threading.Thread(target=offer_all, daemon=True)
    offering.start()
    # every offer returns while InfluxDB still hangs (state, not a time: a waiting offer
    # could only return after the stall is released below)
    offering.join(120)
    assert not offering.is_alive() and not fake.stall.is_set()
    fake.stall.set()
    assert mirror.flush(300)
    mirror.close()
    assert_exactly_once_in_order(fake, batches)




def test_one_second_rows(fake: FakeInflux3, tmp_path: Path) -> None:
    from sunarchive.model import StatsRows

    mirror = make_mirror(fake, tmp_path, send="1s", precision="s")
    mirror.start()
    mirror.offer_raw(panels(0, 1))  # raw batches are not sent in 1s mode
    rows = StatsRows("dtu", np.array([1_750_000_000, 1_750_000_001]), np.array([7, 7], np.int32),
                     {"sample_count": np.array([1, 1]), "pv_power_avg": np.array([5.5, 6.0]),
                      "alarm_flag_any": np.array([0.0, 1.0]),
                      "total_production_last": np.array([100.0, np.nan])})
    mirror.offer_rows(rows, {7: ("Dach", "DTU1")})
    assert mirror.flush(20)
    mirror.close()
    assert [(p.measurement, p.tags, p.time_ns) for p in fake.points] == [
        ("dtu_1s", {"dtu_name": "Dach", "dtu_serial": "DTU1"}, T0),
        ("dtu_1s", {"dtu_name": "Dach", "dtu_serial": "DTU1"}, T0 + 10**9)]
    assert fake.points[0].fields == {"sample_count": ("int", 1.0), "pv_power_avg": (
        "float", 5.5), "alarm_flag_any": ("bool", 0.0), "total_production_last": ("float", 100.0)}
    assert "total_production_last" not in fake.points[1].fields
