"""The example config with several sources runs them all at once: `sunarchive run` with the
simulator, an OpenDTU on a real Mosquitto broker and a TCP receiver, `sunarchive sources`
showing each one's state, and rows of every source in the store afterwards."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from conftest import clean_env, cli, free_port
    from mosquitto import mosquitto_broker
    from test_mqtt_source import publisher
except ImportError:  # tests/ imported as a package
    from tests.conftest import clean_env, cli, free_port
    from tests.mosquitto import mosquitto_broker
    from tests.test_mqtt_source import publisher

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "several-sources.yaml"


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_example_runs_three_sources_at_once(tmp_path: Path) -> None:
    with mosquitto_broker() as broker:
        with publisher(broker) as client:   # the DTU says it is online (retained, its LWT)
            client.publish("solar/dtu/status", "online", qos=1, retain=True).wait_for_publish(5)
        rig_port = free_port()
        env = {"MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
               "LAB_RIG_PORT": str(rig_port)}
        db = tmp_path / "store.duckdb"
        process = subprocess.Popen(
            [sys.executable, "-m", "sunarchive", "run", "--config", str(EXAMPLE), "--db",
             str(db), "--no-console", "--no-http"], cwd=tempfile.gettempdir(),
            env=clean_env(env), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def sources() -> dict[str, dict[str, Any]]:
            out = cli("sources", "--json", "--config", str(EXAMPLE), "--db", str(db),
                      env=env).stdout
            return {s["name"]: s for s in json.loads(out)}

        try:
            wait_until(lambda: all(s["state"] == "connected" for s in sources().values()),
                       "all three sources to connect")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))
            with socket.create_connection(("127.0.0.1", rig_port), timeout=5) as sock:
                sock.sendall(json.dumps({"time": stamp, "device_id": "cell1", "board": 1,
                                         "channel": 1, "voltage": 0.61, "current": 3.1,
                                         "power": 1.89}).encode() + b"\n")
                wait_until(lambda: sources()["lab-rig"].get("samples") == 1,
                           "the rig's record to be counted")
            listed = sources()
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert {name: s["type"] for name, s in listed.items()} == {
        "roof": "simulator", "opendtu": "mqtt", "lab-rig": "tcp"}
    assert listed["roof"]["samples"] > 0 and listed["opendtu"]["errors"] == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["write_errors"] == 0 and summary["source_errors"] == {}
    counts = json.loads(cli("sql", "SELECT (SELECT count(*) FROM ps100_readings_1s) AS panels, "
                            "(SELECT count(*) FROM mpp_measurement_1s) AS rig", "--db", str(db),
                            "--format", "json").stdout)
    assert counts[0]["panels"] > 0 and counts[0]["rig"] == 1
