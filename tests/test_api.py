"""The HTTP API against a real server: `sunarchive serve` in a subprocess on a free port,
serving a copy of the demo store; requests with a real HTTP client."""

from __future__ import annotations

import base64
import json
import selectors
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import DEMO_PANELS, cli
from tests.support.ports import free_port
from tests.support.serving import Served, get, serve, stop

pytestmark = pytest.mark.integration

START, END = "2026-06-21T07:00:00+00:00", "2026-06-21T09:00:00+00:00"


@pytest.fixture(scope="module")
def api(demo_db: Path) -> Iterator[Served]:
    folder = Path(tempfile.mkdtemp(prefix="sunarchive-api-"))
    db = folder / "demo.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, "--timezone", "Europe/Berlin")
    yield served
    stop(served)
    shutil.rmtree(folder, ignore_errors=True)


def test_measurements_and_series(api: Served) -> None:
    listed = {m["measurement"]: m for m in get(api, "/api/v1/measurements").json()}
    ps100 = listed["ps100_readings"]
    assert ps100["tags"] == ["panel_id"]
    assert {"name": "power", "unit": "W", "kind": "power"}.items() <= \
        next(f for f in ps100["fields"] if f["name"] == "power").items()
    series = get(api, "/api/v1/series").json()
    panels = sorted(s["tags"]["panel_id"] for s in series if s["measurement"] == "ps100_readings")
    assert panels == [f"panel_{i}" for i in range(1, DEMO_PANELS + 1)]
    assert all(s["first"] == "2026-06-21T07:00:00+00:00" for s in series)
    assert all(s["last"] == "2026-06-21T08:59:59+00:00" for s in series)


def test_measurement_rows_and_energy_agree(api: Served) -> None:
    five = get(api, "/api/v1/measurements/ps100_readings", start=START, end=END, tier="5min")
    assert five.status_code == 200
    body = five.json()
    assert body["tier"] == "5min" and len(body["rows"]) == 24 * DEMO_PANELS
    assert body["rows"][0][body["columns"].index("time")] == "2026-06-21T07:00:00+00:00"
    energy_wh = sum(r[body["columns"].index("energy_wh")] for r in body["rows"])
    daily = get(api, "/api/v1/energy", start="2026-06-20T00:00:00+02:00",
                end="2026-06-22T00:00:00+02:00").json()
    assert [r["period"] for r in daily["rows"]] == ["2026-06-21"]
    assert daily["rows"][0]["total_kwh"] == pytest.approx(energy_wh / 1000, rel=1e-9)
    assert len(daily["rows"][0]["series"]) == DEMO_PANELS
    auto = get(api, "/api/v1/measurements/ps100_readings", start=START, end=END,
               max_points=2, fields="power", tag="panel_id=panel_1").json()
    assert auto["tier"] == "1hour" and len(auto["rows"]) == 2
    assert "voltage_avg" not in auto["columns"] and "power_avg" in auto["columns"]


@pytest.mark.parametrize(("path", "params", "status", "named"), [
    ("/api/v1/measurements/ps100_readings", {"start": "2026-06-21T07:00:00"}, 400, "start"),
    ("/api/v1/measurements/nope", {}, 404, "nope"),
    ("/api/v1/measurements/ps100_readings", {"tag": "inverter=x"}, 400, "inverter"),
    ("/api/v1/measurements/ps100_readings", {"fields": "watts"}, 400, "watts"),
    ("/api/v1/measurements/ps100_readings", {"tier": "2min"}, 400, "2min"),
    ("/api/v1/energy", {"measurement": "nope"}, 404, "nope"),
    ("/measurements/pressure", {}, 404, "pressure"),
    ("/api/v1/measurements/ps100_readings", {"max_points": "0"}, 400, "max_points (query)"),
    ("/api/v1/events", {"limit": "many"}, 400, "limit (query): Input should be a valid"),
    ("/no/such/path", {}, 404, "Not Found"),
])
def test_bad_requests_name_the_culprit(api: Served, path: str, params: dict[str, str],
                                       status: int, named: str) -> None:
    response = get(api, path, **params)
    assert response.status_code == status
    assert named in response.json()["error"]


def test_latest_events_status_health_docs(api: Served) -> None:
    latest = get(api, "/api/v1/latest", measurement="ps100_readings").json()
    assert len(latest) == DEMO_PANELS
    assert all(r["time"] == "2026-06-21T08:59:59+00:00" for r in latest)
    assert all(r["values"]["sample_count"] >= 1 for r in latest)
    assert isinstance(get(api, "/api/v1/events", limit=5).json(), list)
    status = get(api, "/api/v1/status").json()
    assert status["engine"] == "duckdb" and status["writes_accepted"] is True
    assert get(api, "/api/v1/health").json()["status"] == "ok"
    assert get(api, "/docs").status_code == 200
    paths = get(api, "/openapi.json").json()["paths"]
    assert {"/api/v1/measurements/{measurement}", "/api/v2/write", "/write"} <= set(paths)


def test_lab_and_energy_system_endpoints(api: Served) -> None:
    rows = get(api, "/measurements/mpp", start_time=START, end_time=END).json()
    assert rows["measurement"] == "mpp_measurement" and rows["rows"] == []
    stats = get(api, "/statistics/temperature", start_time=START, end_time=END).json()
    assert stats["measurement"] == "temperature_measurement"
    assert all(f["count"] == 0 for f in stats["fields"].values())
    energy = get(api, "/api/energy-data", start_time=START, end_time=END, device_id="gw1",
                 shape="table")
    assert energy.status_code == 200 and energy.json()["rows"] == []
    records = get(api, "/api/energy-data", start_time=START, end_time=END, device_id="gw1")
    assert records.status_code == 200 and records.json() == []


def test_cli_asks_the_running_instance(api: Served) -> None:
    """`serve` holds the DuckDB file; status, query and sql go through its API."""
    common = ["--db", str(api.db)]
    info = json.loads(cli("status", *common, "--json", cwd=api.db.parent).stdout)
    tables = {t["table"]: t for t in info["tables"]}
    assert tables["ps100_readings_1s"]["rows"] == DEMO_PANELS * 7200
    rows = json.loads(cli("query", "ps100_readings", *common, "--tier", "1hour", "--start",
                          START, "--end", END, "--format", "json", cwd=api.db.parent).stdout)
    assert len(rows) == 2 * DEMO_PANELS and rows[0]["time"] == "2026-06-21T07:00:00+00:00"
    total = json.loads(cli("sql", "SELECT COUNT(*) AS n FROM ps100_readings_1s", *common,
                           "--format", "json", cwd=api.db.parent).stdout)
    assert total == [{"n": DEMO_PANELS * 7200}]


def test_tokens_guard_reads_and_writes(demo_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, env={"SUNARCHIVE_HTTP_READ_TOKENS": '["reader-1"]',
                            "SUNARCHIVE_HTTP_WRITE_TOKENS": '["writer-1"]'})
    try:
        path = served.url + "/api/v1/measurements"
        assert httpx.get(path).status_code == 401
        assert httpx.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(path, headers={"Authorization": "Bearer reader-1"}).status_code == 200
        assert httpx.get(path, headers={"Authorization": "Token writer-1"}).status_code == 200
        basic = base64.b64encode(b"anyone:reader-1").decode()
        assert httpx.get(path, headers={"Authorization": f"Basic {basic}"}).status_code == 200
        line = b"ps100_readings,panel_id=panel_9 power=1.5 1782025200000000000"
        write = served.url + "/write"
        assert httpx.post(write, content=line, params={"p": "reader-1"}).status_code == 401
        assert httpx.post(write, content=line, params={"p": "writer-1"}).status_code == 204
        for public in ("/docs", "/openapi.json", "/ping", "/api/v1/health", "/"):
            assert httpx.get(served.url + public).status_code in (200, 204), public
        query = served.url + "/query"
        create = {"q": "CREATE DATABASE telegraf"}
        assert httpx.post(query, params=create).status_code == 401
        assert httpx.get(query, params=create).status_code == 401
        assert httpx.post(query, params={**create, "p": "writer-1"}).status_code == 200
    finally:
        stop(served)
    assert "writer-1" not in (served.process.stderr.read() if served.process.stderr else "")


def test_non_loopback_bind_needs_tokens_or_insecure(tmp_path: Path) -> None:
    result = cli("serve", "--db", str(tmp_path / "x.duckdb"), "--http-host", "0.0.0.0",
                 "--http-port", str(free_port()), cwd=tmp_path, check=False, timeout=60)
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without tokens" in result.stderr


def _closed_sockets(sockets: list[socket.socket], deadline_s: float) -> dict[int, bytes]:
    """Wait until the server has closed every socket (EOF or reset) or the deadline passes;
    returns what each closed socket received, by index."""
    received: dict[int, bytes] = {}
    buffers = {i: b"" for i in range(len(sockets))}
    with selectors.DefaultSelector() as selector:
        for i, sock in enumerate(sockets):
            selector.register(sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + deadline_s
        while len(received) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                i = key.data
                try:
                    chunk = sockets[i].recv(4096)
                except ConnectionError:
                    chunk = b""
                if chunk:
                    buffers[i] += chunk
                    continue
                received[i] = buffers[i]
                selector.unregister(sockets[i])
    return received


def test_slow_and_idle_clients_are_cut_off(demo_db: Path, tmp_path: Path) -> None:
    """900 half-sent requests and idle connections are closed after the header timeout and
    the keep-alive time, while the server goes on answering."""
    db = tmp_path / "slow.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, env={"SUNARCHIVE_HTTP_HEADER_TIMEOUT_S": "2",
                            "SUNARCHIVE_HTTP_KEEP_ALIVE_S": "1"})
    host, port = served.url.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    try:
        for i in range(900):
            sock = socket.create_connection((host, int(port)), timeout=10)
            if i % 3 == 0:
                sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Half: ")
            elif i % 3 == 1:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")   # then stays idle
            sock.setblocking(False)
            sockets.append(sock)
        assert httpx.get(served.url + "/ping", timeout=10).status_code == 204
        closed = _closed_sockets(sockets, deadline_s=90)
        assert len(closed) == len(sockets), f"{len(sockets) - len(closed)} still open"
        assert all(closed[i].startswith(b"HTTP/1.1 408") for i in range(0, 900, 3))
        assert all(closed[i].startswith(b"HTTP/1.1 204") for i in range(1, 900, 3))
        assert all(closed[i] == b"" for i in range(2, 900, 3))
        assert httpx.get(served.url + "/ping", timeout=10).status_code == 204
    finally:
        for sock in sockets:
            sock.close()
        stop(served)


def test_a_stalled_request_body_is_cut_off(demo_db: Path, tmp_path: Path) -> None:
    """A body that stops coming for the header timeout closes the connection; no traceback."""
    db = tmp_path / "body.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, env={"SUNARCHIVE_HTTP_HEADER_TIMEOUT_S": "2"})
    host, port = served.url.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    try:
        for path in ("/write", "/api/v2/write", "/api/v1/sql", "/query") * 25:
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                         "ps100_readings,panel_id=p power=1 ".encode())
            sock.setblocking(False)
            sockets.append(sock)
        closed = _closed_sockets(sockets, deadline_s=90)
        assert len(closed) == len(sockets), f"{len(sockets) - len(closed)} still open"
        assert httpx.get(served.url + "/ping", timeout=10).status_code == 204
    finally:
        for sock in sockets:
            sock.close()
        stop(served)
    stderr = served.process.stderr.read() if served.process.stderr else ""
    assert "Traceback" not in stderr, stderr
