"""A throwaway Mosquitto broker on a free loopback port, for the MQTT source tests, and a
publisher standing in for a DTU.

``make system-deps`` installs Debian's ``mosquitto`` when ``/usr/sbin/mosquitto`` is missing;
tests using :func:`mosquitto_broker` skip (saying why) only on a machine without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.ports import free_port

MOSQUITTO = os.environ.get("SUNARCHIVE_TEST_MOSQUITTO") or (
    "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK)
    else shutil.which("mosquitto") or "/usr/sbin/mosquitto")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """A Mosquitto process; ``stop`` and ``start`` again keep the same port."""

    def __init__(self, directory: Path, persistence: bool = False,
                 anonymous: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.directory = directory
        self.config = directory / "mosquitto.conf"
        lines = [f"listener {self.port} {self.host}",
                 f"allow_anonymous {'true' if anonymous else 'false'}",
                 f"persistence {'true' if persistence else 'false'}"]
        if persistence:   # retained messages survive a restart, as on a real broker
            lines.append(f"persistence_location {directory}/")
        if os.geteuid() == 0:   # as root, mosquitto would switch to a user that cannot write
            lines.append("user root")
        self.config.write_text("\n".join(lines) + "\n")
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)],
                                             stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start on port {self.port}:\n"
                                   + self.log.read_text(errors="replace"))
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def restart_when_port_free(self, timeout_s: float = 10.0) -> None:
        """Start again on the same port (waiting while the old socket lingers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@contextmanager
def mosquitto_broker(persistence: bool = False, anonymous: bool = True) -> Iterator[Broker]:
    """A started broker, stopped afterwards; skips when Mosquitto is not installed.
    ``persistence`` keeps retained messages over a restart; ``anonymous=False`` refuses
    every client (no password file)."""
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"{MOSQUITTO} is missing: install Debian's mosquitto (make system-deps)")
    with tempfile.TemporaryDirectory(prefix="sunarchive-mosquitto-") as tmp:
        broker = Broker(Path(tmp), persistence, anonymous)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@contextmanager
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    """A connected paho client standing in for the DTU (QoS 1 keeps the recorded order)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-{time.time_ns()}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()
