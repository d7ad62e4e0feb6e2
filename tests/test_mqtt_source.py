"""The MQTT source against a real Mosquitto broker: recorded OpenDTU traffic replayed into
`sunarchive run` (checked in the DuckDB file afterwards), reconnects after a broker restart
(retained messages replayed on reconnect are not new readings), and wrong credentials."""

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

import duckdb
import httpx
import pytest

from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.sources.mqtt.client import MqttSource
from sunarchive.sources.mqtt.config import MqttSettings
from sunarchive.sources.running import SourceContext
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.cli import clean_env
from tests.support.mosquitto import Broker, mosquitto_broker, publisher
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TRAFFIC = Path(__file__).parent / "data" / "opendtu_traffic.jsonl"
RECORDS: list[dict[str, Any]] = [json.loads(line) for line in TRAFFIC.read_text().splitlines()]
BEFORE = [r for r in RECORDS if r.get("before_start")]
LIVE = [r for r in RECORDS if not r.get("before_start")]
SPEED = 5.0
"""Replay speed: the recorded 5-s OpenDTU cycles arrive every second."""
CYCLES = 6
SERIES_PER_CYCLE = 9   # 1 DTU total + 2 inverters + 2 + 4 DC ports
A, B = "114182912345", "116183456789"


def replay(broker: Broker, records: list[dict[str, Any]], speed: float = math.inf) -> None:
    """Publish records in order at their recorded relative times divided by ``speed``."""
    with publisher(broker) as client:
        start = time.monotonic()
        t0 = float(records[0]["t"])
        for record in records:
            delay = (float(record["t"]) - t0) / speed - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            client.publish(record["topic"], record["payload"], qos=1,
                           retain=bool(record["retain"])).wait_for_publish(5)


def recorded(topic_end: str) -> list[float]:
    return [float(r["payload"]) for r in LIVE if r["topic"].endswith(topic_end)]


# -- end to end: `sunarchive run --config` ------------------------------------------------
def _source_state(url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(f"{url}/api/v1/sources", timeout=2)
    except httpx.HTTPError:
        return {}
    entries = [s for s in answer.json() if s["name"] == "opendtu"] if answer.is_success else []
    return entries[0] if entries else {}


def test_recorded_opendtu_traffic_is_stored_by_sunarchive_run(tmp_path: Path) -> None:
    with mosquitto_broker() as broker:
        replay(broker, BEFORE)     # the broker's retained state from last evening
        config = tmp_path / "sunarchive.yaml"
        config.write_text(
            "sources:\n"
            f"  - {{type: mqtt, name: opendtu, host: {broker.host}, port: {broker.port},\n"
            "     layout: opendtu, dtu_name: roof-dtu, backoff_min_s: 0.2, backoff_max_s: 1}\n")
        db, port = tmp_path / "store.duckdb", free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "sunarchive", "run", "--config", str(config), "--db", str(db),
             "--no-console", "--http-port", str(port)],
            cwd=tempfile.gettempdir(), env=clean_env(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            # the retained `dtu/status online` says the subscription is in place
            wait_until(lambda: _source_state(url).get("state") == "connected",
                       "the source to subscribe", 60)
            assert _source_state(url)["samples"] == 0, "retained values counted as readings"
            replay(broker, LIVE, SPEED)
            wait_until(lambda: _source_state(url).get("samples") == CYCLES * SERIES_PER_CYCLE,
                       "all replayed cycles to be counted")
            time.sleep(1.0)   # nothing more arrives (no zeros while the DTU is offline either)
            state = _source_state(url)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["samples_in"] == CYCLES * SERIES_PER_CYCLE
    assert summary["write_errors"] == 0 and summary["too_late_samples"] == 0
    assert state["state"] == "connected" and state["reconnects"] == 1 and state["errors"] == 0
    _check_store(db)


def _check_store(db: Path) -> None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ports = con.execute(
            "SELECT serial_number, port_number, dtu_name, sum(sample_count), "
            "sum(pv_power_avg * pv_power_count), min(pv_current_min), max(pv_voltage_max), "
            "max(total_production_last), max(today_production_last) "
            "FROM port_1s GROUP BY ALL ORDER BY 1, 2").fetchall()
        assert [p[:3] for p in ports] == [(A, "1", "roof-dtu"), (A, "2", "roof-dtu"),
                                          *((B, str(ch), "roof-dtu") for ch in range(1, 5))]
        for serial, channel, _, count, power_sum, min_current, max_voltage, total, today in ports:
            prefix = f"solar/{serial}/{channel}/"
            assert count == CYCLES
            assert power_sum == pytest.approx(sum(recorded(prefix + "power")), rel=1e-9)
            assert min_current > 1.0, "an evening retained value or a zero was stored"
            assert max_voltage == max(recorded(prefix + "voltage"))
            assert total == pytest.approx(recorded(prefix + "yieldtotal")[-1] * 1000)
            assert today == recorded(prefix + "yieldday")[-1]
        inverters = con.execute(
            "SELECT serial_number, sum(sample_count), max(grid_voltage_max), "
            "min(link_status_min), max(temperature_max) FROM inverter_1s GROUP BY ALL "
            "ORDER BY 1").fetchall()
        assert inverters == [
            (A, CYCLES, max(recorded(f"{A}/0/voltage")), 1.0,
             max(recorded(f"{A}/0/temperature"))),
            (B, CYCLES, max(recorded(f"{B}/0/voltage")), 1.0,
             max(recorded(f"{B}/0/temperature")))]
        dtu = con.execute("SELECT dtu_name, dtu_serial, sum(sample_count), "
                          "max(total_production_last), min(pv_power_min) FROM dtu_1s "
                          "GROUP BY ALL").fetchall()
        assert dtu == [("roof-dtu", "", CYCLES, pytest.approx(
            recorded("solar/ac/yieldtotal")[-1] * 1000), min(recorded("solar/ac/power")))]
        events = con.execute("SELECT epoch(time), kind, message FROM sunarchive_events "
                             "WHERE kind LIKE 'source_%' ORDER BY time").fetchall()
        assert [e[1] for e in events] == ["source_offline", "source_online"]
        assert "solar/dtu/status" in events[0][2]
        offline_s, online_s = events[0][0], events[1][0]
        assert online_s - offline_s > 12.5 / SPEED * 0.5
        # seconds inside the outage may carry the energy of the held last power (a hold
        # shorter than the profile's max_gap_s), but no readings: no values, no zeros
        during = con.execute(
            "SELECT count(*) FROM (SELECT time, sample_count, pv_power_avg AS v FROM port_1s "
            "UNION ALL SELECT time, sample_count, grid_voltage_avg FROM inverter_1s "
            "UNION ALL SELECT time, sample_count, pv_power_avg FROM dtu_1s) "
            "WHERE epoch(time) >= ? AND epoch(time) + 1 <= ? "
            "AND (sample_count > 0 OR v IS NOT NULL)",
            [math.ceil(offline_s), math.floor(online_s)]).fetchone()
        assert during == (0,), "values stored while the DTU was offline"
        zeros = con.execute("SELECT count(*) FROM port_1s WHERE pv_voltage_min = 0 "
                            "OR pv_power_min = 0").fetchone()
        assert zeros == (0,)
    finally:
        con.close()


# -- in process: reconnects and credentials --------------------------------------------------
@pytest.fixture
def agent_store(tmp_path: Path) -> Iterator[tuple[Agent, DuckDBStore]]:
    store = DuckDBStore(tmp_path / "s.duckdb", load_profiles())
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=2.0, commit_interval_s=0.1)
    yield agent, store
    agent.stop()
    store.close()


def _source(agent: Agent, store: DuckDBStore, broker: Broker) -> MqttSource:
    settings = MqttSettings(name="dtu", host=broker.host, port=broker.port, dtu_name="d",
                            backoff_min_s=0.1, backoff_max_s=0.5, group_quiet_s=0.2,
                            timeout_s=2.0)
    source = settings.build(SourceContext("UTC", store.profiles, agent.post_event))
    assert isinstance(source, MqttSource)
    agent.add_source(source)
    agent.start()
    return source


def _cycle(index: int) -> list[dict[str, Any]]:
    """The records of the index-th live publish cycle (with the status topics before it)."""
    starts = sorted({float(r["t"]) // 5 * 5 for r in LIVE if "/0/power" in r["topic"]})
    t0 = starts[index]
    return [r for r in LIVE if t0 <= float(r["t"]) < t0 + 1.5]


def test_reconnects_after_a_broker_restart_and_skips_the_retained_replay(
        agent_store: tuple[Agent, DuckDBStore]) -> None:
    agent, store = agent_store
    with mosquitto_broker(persistence=True) as broker:
        replay(broker, [r for r in BEFORE if r["topic"] == "solar/dtu/status"])
        source = _source(agent, store, broker)
        status = source.status
        wait_until(lambda: status.state == "connected", "the first connection")
        replay(broker, _cycle(0))
        wait_until(lambda: status.samples == SERIES_PER_CYCLE, "the first cycle")

        broker.stop()
        wait_until(lambda: status.state == "offline", "the lost broker to be noticed")
        wait_until(lambda: status.snapshot()["errors"] >= 1, "a failed reconnect")
        broker.restart_when_port_free()
        # the restarted broker replays the retained cycle and `dtu/status online`
        wait_until(lambda: status.state == "connected", "the reconnect")
        wait_until(lambda: source.retained_skipped >= SERIES_PER_CYCLE * 2,
                   "the retained replay")
        time.sleep(0.5)
        assert status.samples == SERIES_PER_CYCLE, "the retained replay was counted"
        replay(broker, _cycle(1))
        wait_until(lambda: status.samples == 2 * SERIES_PER_CYCLE, "the cycle after the restart")
        agent.stop()   # before the broker goes away for good
    snapshot = status.snapshot()
    assert snapshot["reconnects"] == 1 and snapshot["errors"] >= 1
    assert "127.0.0.1" in (snapshot["last_error"] or "")
    kinds = [e["kind"] for e in store.event_rows(50)]
    assert kinds.count("source_offline") == 1 and kinds.count("source_online") == 1
    counts = store.sql("SELECT port_number, sum(sample_count) FROM port_1s "
                       f"WHERE serial_number = '{B}' GROUP BY ALL ORDER BY 1")
    assert [tuple(r.values()) for r in counts.table.to_pylist()] == [
        (str(ch), 2) for ch in range(1, 5)]


def test_wrong_credentials_stop_the_source(agent_store: tuple[Agent, DuckDBStore]) -> None:
    agent, store = agent_store
    with mosquitto_broker(anonymous=False) as broker:
        source = _source(agent, store, broker)
        wait_until(lambda: "dtu" in agent.source_errors, "the refused connection")
        assert "authori" in agent.source_errors["dtu"].lower()
        wait_until(lambda: source.status.state == "failed", "the failed state")
        time.sleep(0.5)
        assert source.status.errors == 1, "a refused login must not be retried"


def test_stop_is_prompt_while_the_broker_is_down(agent_store: tuple[Agent, DuckDBStore]
                                                 ) -> None:
    agent, store = agent_store
    with mosquitto_broker() as broker:
        broker.stop()
        source = _source(agent, store, broker)
        wait_until(lambda: source.status.state == "offline", "the refused connection")
        stopper = threading.Thread(target=agent.stop)
        started = time.monotonic()
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive() and time.monotonic() - started < 5
