"""Issue 17: the unmodified Debian ``influx`` CLI (InfluxDB 1.x, package influxdb-client)
writes into sunarchive as into influxd: ``INSERT`` statements and ``-import`` of a file with
``# DML`` and ``# CONTEXT-DATABASE`` headers, every point stored once with its names, tags,
types and times."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serving import Served, serve, sql, stop

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("influx") is None,
                                 reason="the influx CLI (Debian package influxdb-client) is not "
                                        "installed; `make test` installs it")]
T0_S = 1_782_036_000                      # 2026-06-21 10:00 UTC


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "cli.duckdb")
    yield served
    if served.process.poll() is None:
        stop(served)


def influx(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = served.url.removeprefix("http://").split(":")
    done = subprocess.run(["influx", "-host", host, "-port", port, *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_insert_and_import_store_every_point(server: Served, tmp_path: Path) -> None:
    influx(server, "-database", "home", "-precision", "s", "-execute",
           f"INSERT Cpu,host=a,Region=eu usage=1.5,count=3i,ok=true,mode=\"auto\" {T0_S}")
    dump = tmp_path / "export.txt"
    dump.write_text("# DDL\nCREATE DATABASE home\n# DML\n# CONTEXT-DATABASE: home\n"
                    "# CONTEXT-RETENTION-POLICY: autogen\n"
                    f"Cpu,host=b usage=2.5 {T0_S + 1}\n"
                    f"Cpu,host=b usage=3.5,count=4i {T0_S + 2}\n"
                    f"kWh,domain=sensor,entity_id=sensor.pv value=12.25 {T0_S + 3}\n",
                    encoding="utf-8")
    done = influx(server, "-import", f"-path={dump}", "-precision=s")
    assert "Processed 3 inserts" in done.stderr + done.stdout
    assert "Failed 0 inserts" in done.stderr + done.stdout
    rows = sql(server, 'SELECT epoch(time)::BIGINT AS t, host, "Region", usage_avg, '
                       "count_last, ok_any, sample_count FROM \"Cpu_1s\" "
                       "WHERE sample_count > 0 ORDER BY time")
    assert rows == [
        {"t": T0_S, "host": "a", "Region": "eu", "usage_avg": 1.5, "count_last": 3.0,
         "ok_any": True, "sample_count": 1},
        {"t": T0_S + 1, "host": "b", "Region": None, "usage_avg": 2.5, "count_last": None,
         "ok_any": None, "sample_count": 1},
        {"t": T0_S + 2, "host": "b", "Region": None, "usage_avg": 3.5, "count_last": 4.0,
         "ok_any": None, "sample_count": 1}]
    energy = sql(server, 'SELECT entity_id, value_avg FROM "kWh_1s" WHERE sample_count > 0')
    assert energy == [{"entity_id": "sensor.pv", "value_avg": 12.25}]
