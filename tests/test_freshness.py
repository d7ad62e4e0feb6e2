"""Invariant 8 over HTTP: an acknowledged point that nothing follows reaches the store (and
``/api/v1/latest``) by the clock, within ``commit_interval_s + lateness_s`` after the end of
its second, and survives a kill -9 from then on (issue 15, point 2)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import cli
from tests.support.serving import Served, serve, stop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0   # generous: the bound is commit_interval_s + lateness_s (3 s by default)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "fresh.duckdb")
    yield served
    if served.process.poll() is None:
        stop(served)


def test_one_point_with_nothing_after_it_is_stored(server: Served) -> None:
    now_ns = time.time_ns()
    line = f"ps100_readings,panel_id=probe power=42.5,voltage=20.25 {now_ns}"
    written = httpx.post(server.url + "/api/v2/write", params={"bucket": "b"}, content=line)
    assert written.status_code == 204

    def latest() -> list[dict[str, Any]]:
        rows = httpx.get(server.url + "/api/v1/latest",
                         params={"measurement": "ps100_readings"}, timeout=10).json()
        return [r for r in rows if r["tags"].get("panel_id") == "probe"]

    def stored() -> list[dict[str, Any]]:
        body = httpx.get(server.url + "/api/v1/measurements/ps100_readings",
                         params={"tier": "1s", "tag": "panel_id=probe"}, timeout=10).json()
        return [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]

    seen = wait_until(latest, "the point in /api/v1/latest", DEADLINE_S, poll_s=0.2)
    assert seen[0]["values"]["power_avg"] == 42.5
    rows = wait_until(stored, "the point's 1 s row in the store", DEADLINE_S, poll_s=0.2)
    assert [(r["power_avg"], r["power_count"]) for r in rows] == [(42.5, 1)]

    # stored, not just held: a kill -9 now loses nothing
    server.process.kill()
    server.process.wait(30)
    out = cli("sql", "SELECT power_avg, power_count FROM ps100_readings_1s "
              "WHERE panel_id = 'probe'", "--db", str(server.db), "--format", "json",
              cwd=server.db.parent).stdout
    assert [(r["power_avg"], r["power_count"]) for r in json.loads(out)] == [(42.5, 1)]
