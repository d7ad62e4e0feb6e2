"""InfluxDB-compatible writes against a real `sunarchive serve`: the three official client
libraries writing unmodified, raw HTTP for the protocol details (precision, gzip, size
limit, partial writes, error bodies), and Home Assistant's layout landing in an inferred
profile."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serving import T0_NS, Served, serve, sql, stop

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "w.duckdb", env={"SUNARCHIVE_HTTP_MAX_BODY_MB": "1"})
    yield served
    if served.process.poll() is None:
        stop(served)


def test_influxdb_v1_client(server: Served) -> None:
    from influxdb import InfluxDBClient  # type: ignore[import-untyped]

    port = int(server.url.rsplit(":", 1)[1])
    client = InfluxDBClient(host="127.0.0.1", port=port, database="solar")
    client.create_database("solar")
    assert client.ping()
    points = [{"measurement": "ps100_readings", "tags": {"panel_id": "v1"},
               "time": T0_NS + k * 100_000_000, "fields": {"power": 50.0 + k, "voltage": 20.0}}
              for k in range(20)]
    assert client.write_points(points, time_precision="n")
    rows = sql(server, "SELECT time, power_avg, power_count, sample_count FROM "
                       "ps100_readings_1s WHERE panel_id = 'v1' ORDER BY time")
    assert [r["power_count"] for r in rows] == [10, 10]
    assert rows[0]["power_avg"] == pytest.approx(54.5)
    assert rows[1]["power_avg"] == pytest.approx(64.5)


def test_influxdb_v2_client(server: Served) -> None:
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    with InfluxDBClient(url=server.url, token="any", org="home",
                        timeout=120_000) as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        api.write(bucket="solar", record=[
            Point("ps100_readings").tag("panel_id", "v2").field("power", 70.0 + k)
            .time(T0_NS + k * 500_000_000) for k in range(4)])
    rows = sql(server, "SELECT power_avg, power_count FROM ps100_readings_1s "
                       "WHERE panel_id = 'v2' ORDER BY time")
    assert [(r["power_avg"], r["power_count"]) for r in rows] == [(70.5, 2), (72.5, 2)]


def test_influxdb_v2_client_batching_mode_stores_every_point_once(server: Served) -> None:
    """The v2 client's default mode batches in a background thread and reports failures only
    to callbacks (a refused batch is otherwise lost silently): 600 points in batches of 50
    across 6 new measurements, later points adding a tag and fields of every kind the client
    writes — float, integer, boolean, string (schema on write)."""
    from influxdb_client import InfluxDBClient, Point, WriteOptions

    failures: list[str] = []
    written: list[int] = []
    with InfluxDBClient(url=server.url, token="any", org="home", timeout=120_000
                        ) as client, client.write_api(
            write_options=WriteOptions(batch_size=50, flush_interval=200, retry_interval=200,
                                       max_retries=2),
            success_callback=lambda _conf, data: written.append(len(data.splitlines())),
            error_callback=lambda _conf, _data, exc: failures.append(repr(exc)),
    ) as api:
        for k in range(600):
            point = Point(f"batch_{k % 6}").tag("host", "a").field("used", float(k)) \
                    .time(T0_NS + k * 10_000_000)
            if k >= 300:
                point = point.tag("region", "eu").field("free", float(-k)).field("n", k) \
                    .field("on", k % 4 == 0).field("mode", f"m{k % 4}")
            api.write(bucket="home", record=point)
    assert failures == []
    assert sum(written) == 600
    for m in range(6):
        rows = sql(server, f"SELECT region, SUM(used_count) AS n, SUM(free_count) AS f, "
                           f"SUM(used_avg * used_count) AS s FROM batch_{m}_1s GROUP BY region "
                           "ORDER BY region NULLS FIRST")
        ks = [k for k in range(600) if k % 6 == m]
        assert [(r["region"], r["n"], r["f"]) for r in rows] == [(None, 50, 0), ("eu", 50, 50)]
        assert sum(float(str(r["s"])) for r in rows) == pytest.approx(float(sum(ks)))
        late = [k for k in ks if k >= 300]
        (eu,) = sql(server, f"SELECT SUM(n_avg * n_count) AS n, SUM(on_true_count) AS on_, "
                            f"SUM(on_count) AS on_n, SUM(mode_count) AS modes "
                            f"FROM batch_{m}_1s WHERE region = 'eu'")
        assert (eu["n"], eu["on_"], eu["on_n"], eu["modes"]) == \
            (pytest.approx(float(sum(late))), sum(k % 4 == 0 for k in late), 50, 50)
        labels = sql(server, f"SELECT label FROM sunarchive_state_labels "
                             f"WHERE measurement = 'batch_{m}' AND field = 'mode'")
        assert {r["label"] for r in labels} == {f"m{k % 4}" for k in late}


def test_influxdb3_python_client(server: Served) -> None:
    from influxdb_client_3 import InfluxDBClient3, Point

    client = InfluxDBClient3(host=server.url, token="any", database="solar")
    try:
        client.write(record=[Point("ps100_readings").tag("panel_id", "v3")
                             .field("voltage", 30.0 + k).time(T0_NS + k * 250_000_000)
                             for k in range(8)])
    finally:
        client.close()
    rows = sql(server, "SELECT voltage_avg, voltage_count FROM ps100_readings_1s "
                       "WHERE panel_id = 'v3' ORDER BY time")
    assert [(r["voltage_avg"], r["voltage_count"]) for r in rows] == [(31.5, 4), (35.5, 4)]


def test_home_assistant_layout_gets_an_inferred_profile(server: Served) -> None:
    t0 = T0_NS // 10**9
    body = "\n".join(
        f'W,domain=sensor,entity_id=house_power value={400 + k}.0 {t0 + k}'
        for k in range(5)) + "\n" + \
        f'kWh,domain=sensor,entity_id=meter value=1234i,state="on" {t0}'
    response = httpx.post(server.url + "/write", params={"db": "home_assistant",
                                                          "precision": "s"}, content=body)
    assert response.status_code == 204, response.text
    # text states are stored as codes; their labels are kept and listed with the field
    later = f'kWh,domain=sensor,entity_id=meter state="off" {t0 + 1}\n' \
            f'kWh,domain=sensor,entity_id=meter state="on" {t0 + 2}'
    assert httpx.post(server.url + "/write", params={"db": "home_assistant", "precision": "s"},
                      content=later).status_code == 204
    # a string for a field that is not a state is reported; the rest of the write is kept
    mixed = f'ps100_readings,panel_id=p1 voltage="high",current=1.5 {t0}'
    response = httpx.post(server.url + "/write", params={"db": "x", "precision": "s"},
                          content=mixed)
    assert response.status_code == 400
    assert "'voltage' is a string but not a state field" in response.json()["error"]
    listed = {m["measurement"]: m for m in httpx.get(server.url + "/api/v1/measurements").json()}
    state = next(f for f in listed["kWh"]["fields"] if f["name"] == "state")
    assert state["kind"] == "state" and state["labels"] == {"0": "on", "1": "off"}
    rows = sql(server, "SELECT entity_id, value_avg FROM w_1s ORDER BY time")
    assert [r["value_avg"] for r in rows] == [400.0, 401.0, 402.0, 403.0, 404.0]
    assert {r["entity_id"] for r in rows} == {"house_power"}
    meter = sql(server, "SELECT value_avg, state_last FROM kwh_1s ORDER BY time")
    assert meter == [{"value_avg": 1234.0, "state_last": 0}, {"value_avg": None, "state_last": 1},
                     {"value_avg": None, "state_last": 0}]
    assert sql(server, "SELECT current_avg FROM ps100_readings_1s") == [{"current_avg": 1.5}]


def test_protocol_details(server: Served) -> None:
    url = server.url
    ping = httpx.head(url + "/ping")
    assert ping.status_code == 204 and ping.headers["X-Influxdb-Version"]
    created = httpx.post(url + "/query", data={"q": 'CREATE DATABASE "solar"'})
    assert created.json() == {"results": [{"statement_id": 0}]}
    line = f"ps100_readings,panel_id=gz power=10.0 {T0_NS // 10**6}".encode()
    zipped = httpx.post(url + "/api/v2/write", params={"bucket": "b", "precision": "ms"},
                        content=gzip.compress(line), headers={"Content-Encoding": "gzip"})
    assert zipped.status_code == 204
    bomb = gzip.compress(b"#" * (20 * 2**20))
    too_big = httpx.post(url + "/api/v2/write", params={"bucket": "b"}, content=bomb,
                         headers={"Content-Encoding": "gzip"})
    assert too_big.status_code == 413 and too_big.json()["code"] == "request too large"
    assert httpx.post(url + "/write", content=b"x" * (2 * 2**20)).status_code == 413
    partial = httpx.post(url + "/api/v3/write_lp", params={"db": "solar", "precision": "s"},
                         content=(f"ps100_readings,panel_id=p3 power=1.0 {T0_NS // 10**9}\n"
                                  f"ps100_readings,panel_id=p3 power=oops {T0_NS // 10**9}\n"
                                  f"ps100_readings,panel_id=p3 power=3.0 "
                                  f"{T0_NS // 10**9 + 1}\n"))
    assert partial.status_code == 400
    body = partial.json()
    assert body["error"] == "partial write of line protocol occurred"
    assert [d["line_number"] for d in body["data"]] == [2]
    assert "power=oops" in body["data"][0]["original_line"]
    strict = httpx.post(url + "/api/v3/write_lp",
                        params={"db": "solar", "accept_partial": "false"},
                        content=b"ps100_readings,panel_id=p4 power=1.0\nbroken line\n")
    assert strict.status_code == 400
    v2_error = httpx.post(url + "/api/v2/write", params={"bucket": "b"}, content=b"nofields")
    assert v2_error.status_code == 400 and v2_error.json()["code"] == "invalid"
    unknown = httpx.post(url + "/write", content=f"ps100_readings,panel_id=p5 watts=1 "
                                                 f"{T0_NS}".encode())
    assert unknown.status_code == 400 and "'watts'" in unknown.json()["error"]
    rows = sql(server, "SELECT panel_id, COUNT(*) AS n FROM ps100_readings_1s "
                       "GROUP BY panel_id ORDER BY panel_id")
    assert rows == [{"panel_id": "gz", "n": 1}, {"panel_id": "p3", "n": 2}]
