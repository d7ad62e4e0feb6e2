"""The TCP line receiver running in a thread on a free loopback port, a client connection to
it, and the JSON lines the tests send (issue 14's bad-input tests share them)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sunarchive.profiles import load_profiles
from sunarchive.sources.running import SourceContext
from sunarchive.sources.tcp.config import TcpSettings
from sunarchive.sources.tcp.receiver import TcpReceiver
from tests.support.ports import free_port
from tests.support.sinks import ListSink

PROFILES = load_profiles()
MPP = "mpp_measurement"


@contextmanager
def running(max_future_s: float = 300.0,
            **kw: Any) -> Iterator[tuple[TcpReceiver, ListSink]]:
    settings = TcpSettings(**({"name": "rig", "port": free_port(), "batch_interval_s": 0.05}
                              | kw))
    source = settings.build(SourceContext("UTC", PROFILES, max_future_s=max_future_s))
    assert isinstance(source, TcpReceiver)
    sink, stop = ListSink(PROFILES), threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()
    try:
        assert source.listening.wait(5), "the receiver did not start listening"
        yield source, sink
    finally:
        stop.set()
        thread.join(5)
        assert not thread.is_alive(), "the receiver did not stop"


def connect(source: TcpReceiver) -> socket.socket:
    return socket.create_connection((source.settings.host, source.settings.port), timeout=5)


def peer_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


T0 = int(time.time()) - 60


def json_line(device: str, k: int, **extra: Any) -> str:
    record = {"time": T0 + k, "device_id": device, "board": 1, "channel": k % 2,
              "voltage": 0.5 + k / 100, "current": 2.0, "power": (0.5 + k / 100) * 2.0}
    return json.dumps(record | extra) + "\n"
