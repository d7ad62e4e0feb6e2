"""The example config with several sources runs them all at once: `sunarchive run` with the
simulator, an OpenDTU on a real Mosquitto broker and a TCP receiver, `sunarchive sources`
showing each one's state, and rows of every source in the store afterwards."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.collector_run import running_collector
from tests.support.mosquitto import mosquitto_broker, publisher
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "several-sources.yaml"


def test_example_runs_three_sources_at_once(tmp_path: Path) -> None:
    with mosquitto_broker() as broker:
        with publisher(broker) as client:   # the DTU says it is online (retained, its LWT)
            client.publish("solar/dtu/status", "online", qos=1, retain=True).wait_for_publish(5)
        rig_port = free_port()
        env = {"MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
               "LAB_RIG_PORT": str(rig_port)}
        db = tmp_path / "store.duckdb"
        with running_collector(EXAMPLE, db, env) as run:
            wait_until(lambda: all(s["state"] == "connected" for s in run.sources().values()),
                       "all three sources to connect", poll_s=0.2)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))
            with socket.create_connection(("127.0.0.1", rig_port), timeout=5) as sock:
                sock.sendall(json.dumps({"time": stamp, "device_id": "cell1", "board": 1,
                                         "channel": 1, "voltage": 0.61, "current": 3.1,
                                         "power": 1.89}).encode() + b"\n")
                wait_until(lambda: run.sources()["lab-rig"].get("samples") == 1,
                           "the rig's record to be counted", poll_s=0.2)
            listed = run.sources()
    assert run.returncode == 0, run.err
    assert {name: s["type"] for name, s in listed.items()} == {
        "roof": "simulator", "opendtu": "mqtt", "lab-rig": "tcp"}
    assert listed["roof"]["samples"] > 0 and listed["opendtu"]["errors"] == 0
    summary = run.summary()
    assert summary["write_errors"] == 0 and summary["source_errors"] == {}
    counts = json.loads(cli("sql", "SELECT (SELECT count(*) FROM ps100_readings_1s) AS panels, "
                            "(SELECT count(*) FROM mpp_measurement_1s) AS rig", "--db", str(db),
                            "--format", "json").stdout)
    assert counts[0]["panels"] > 0 and counts[0]["rig"] == 1
