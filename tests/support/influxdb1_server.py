"""A throwaway InfluxDB 1.x server (Debian's ``influxdb`` package) on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""


@dataclass
class Influx1:
    url: str

    def query(self, db: str, q: str) -> list[dict[str, Any]]:
        """The series of one statement's result (``name``, ``tags``, ``columns``, ``values``)."""
        response = httpx.get(f"{self.url}/query", params={"db": db, "q": q, "epoch": "ns"})
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise AssertionError(result["error"])
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def create_database(self, db: str) -> None:
        httpx.post(f"{self.url}/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()


def available() -> bool:
    return Path(INFLUXD).exists()


@contextmanager
def throwaway_influxdb1(root: Path) -> Iterator[Influx1]:
    """Start ``influxd`` with everything under ``root``; stop it afterwards."""
    http_port = free_port()
    config = root / "influxdb.conf"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG.format(root=root, rpc_port=free_port(), http_port=http_port))
    log = (root / "influxd.log").open("wb")
    process = subprocess.Popen([INFLUXD, "-config", str(config)], stdout=log, stderr=log)
    server = Influx1(f"http://127.0.0.1:{http_port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("influxd exited: " + (root / "influxd.log").read_text())
            try:
                if httpx.get(f"{server.url}/ping", timeout=1).status_code == 204:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("influxd did not answer /ping within 60 s")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
