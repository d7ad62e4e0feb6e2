"""The InfluxDB write protocol as InfluxDB speaks it (issue 17, point 6): every precision
(``n ns u us ms s m h``), lines up to 1 MiB, a repeated field key (the last wins), ``/health``,
``/ready`` and ``/api/v2/buckets``, InfluxDB 1.8-compatible auth (``Token user:password``,
Basic, ``u=&p=``) and one message per refused line, with the real, unmodified clients against
a real ``sunarchive serve``; parser cases also without a server; and the same corpus
given to a real ``influxd`` 1.x stores the same points."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sunarchive.lineprotocol import MAX_LINE_BYTES, parse_lines
from tests.support.influxdb1_server import Influx1, available, throwaway_influxdb1
from tests.support.serving import T0_NS, Served, serve, sql, stop

pytestmark = pytest.mark.integration

TOKEN = "s3cret-write"
T0_S = T0_NS // 10**9                         # 2026-06-21 10:00 UTC, a whole hour
UNITS_NS = {"n": 1, "ns": 1, "u": 10**3, "us": 10**3, "ms": 10**6, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "p.duckdb", env={"SUNARCHIVE_HTTP_WRITE_TOKENS": f'["{TOKEN}"]'})
    yield served
    if served.process.poll() is None:
        stop(served)


def post(served: Served, path: str, body: str | bytes, headers: dict[str, str] | None = None,
         **params: str) -> httpx.Response:
    return httpx.post(served.url + path, params=params, content=body, timeout=60,
                      headers={"Authorization": f"Token {TOKEN}", **(headers or {})})


def panel_times(served: Served) -> dict[str, int]:
    rows = sql(served, "SELECT panel_id, epoch(time) AS t FROM ps100_readings_1s")
    return {str(r["panel_id"]): int(float(str(r["t"]))) for r in rows}


# -- the parser alone ------------------------------------------------------------------------
@pytest.mark.parametrize("columnar", [True, False])
@pytest.mark.parametrize("precision", sorted(UNITS_NS))
def test_every_precision(precision: str, columnar: bool) -> None:
    stamp = T0_NS // UNITS_NS[precision]
    parsed = parse_lines(f"m,t=a v=1 {stamp}\nm,t=b\\ c v=2 {stamp}", precision=precision,
                         columnar=columnar)
    assert parsed.errors == []
    assert parsed.measurements["m"].time_ns.tolist() == [T0_NS, T0_NS]


@pytest.mark.parametrize("columnar", [True, False])
def test_repeated_field_key_last_wins(columnar: bool) -> None:
    parsed = parse_lines('m v=1,v=2,w=0 1\nm\\ x v=1,v=3 2\nm v=1i,v="x" 3\nm s="a",s="b" 4',
                         columnar=columnar)
    assert parsed.measurements["m"].fields["v"].values[:1].tolist() == [2.0]   # line 4: NaN
    assert parsed.measurements["m x"].fields["v"].values.tolist() == [3.0]
    assert parsed.measurements["m"].fields["s"].values.tolist() == [None, "b"]
    (error,) = parsed.errors
    assert error.line_number == 3
    assert error.reason == "field 'v' is string here but int earlier in the line"


@pytest.mark.parametrize("quoted", [True, False])
def test_lines_up_to_one_mib(quoted: bool) -> None:
    assert MAX_LINE_BYTES == 2**20
    def line(size: int) -> str:
        head = 'm,t=a s="' if quoted else "m,t="
        tail = '" 1' if quoted else " v=1 1"
        return head + "x" * (size - len(head) - len(tail)) + tail

    body = "\n".join([line(2**20), "m,t=b v=2 2", line(2**20 + 1), "m,t=c v=3 3",
                      line(2**20 - 10).replace("x", "é", 2**19)])  # é: 2 bytes, 1 char
    parsed = parse_lines(body)
    assert [e.line_number for e in parsed.errors] == [3, 5]
    assert {e.reason for e in parsed.errors} == {"longer than 1048576 bytes"}
    assert parsed.measurements["m"].time_ns.tolist() == [1, 2, 3]


def test_type_conflict_blames_the_later_line() -> None:
    """A string line (slow path) before a float line (fast path) of the same field: the
    float line is the one refused, as InfluxDB does (first write fixes the type)."""
    body = 'ha,e=a state="on" 1\nha,e=a state=1.0 2\nha,e=a state="off" 3\nha,e=b x=1 4'
    for columnar in (True, False):
        parsed = parse_lines(body, columnar=columnar)
        assert [(e.line_number, e.reason) for e in parsed.errors] == [
            (2, "field 'state' is float here but string earlier")]
        assert parsed.measurements["ha"].fields["state"].values.tolist() == ["on", "off",
                                                                              None]
        assert parsed.points == 3


_line = st.tuples(st.sampled_from(["m", "m,t=a\\ b", "n"]),
                  st.lists(st.tuples(st.sampled_from(["x", "y"]),
                                     st.sampled_from(['"s"', "1.5", "2i", "true", "3u"])),
                           min_size=1, max_size=3))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(_line, max_size=10))
def test_kind_conflicts_same_on_both_paths(lines: list[tuple[str, list[tuple[str, str]]]]
                                           ) -> None:
    """Whichever path each line takes (quoted strings and escapes take the per-line one),
    the first line to give a field its kind wins and the same later lines are refused."""
    body = "\n".join(f"{head} {','.join(f'{k}={v}' for k, v in fields)} {i}"
                     for i, (head, fields) in enumerate(lines))
    fast, slow = parse_lines(body), parse_lines(body, columnar=False)
    assert [(e.line_number, e.message) for e in fast.errors] == \
        [(e.line_number, e.message) for e in slow.errors]
    assert fast.points == slow.points
    for name, m in slow.measurements.items():
        got = fast.measurements[name]
        assert got.time_ns.tolist() == m.time_ns.tolist()
        assert {k: (f.kind, [str(v) for v in f.values]) for k, f in got.fields.items()} == \
            {k: (f.kind, [str(v) for v in f.values]) for k, f in m.fields.items()}


# -- a real server, real clients ----------------------------------------------------------------
def test_v1_client_every_precision_with_username_and_password(server: Served) -> None:
    from influxdb import InfluxDBClient  # type: ignore[import-untyped]

    port = int(server.url.rsplit(":", 1)[1])
    client = InfluxDBClient(host="127.0.0.1", port=port, database="solar", username="user",
                            password=TOKEN)
    client.create_database("solar")
    for precision in ("n", "u", "ms", "s", "m", "h"):
        point = {"measurement": "ps100_readings", "tags": {"panel_id": f"v1{precision}"},
                 "time": T0_NS // UNITS_NS[precision], "fields": {"power": 5.0}}
        assert client.write_points([point], time_precision=precision)
    for precision in ("ns", "us"):   # the long spellings, over plain HTTP
        line = f"ps100_readings,panel_id=raw{precision} power=5.0 {T0_NS // UNITS_NS[precision]}"
        answer = post(server, "/write", line, db="solar", precision=precision)
        assert answer.status_code == 204, answer.text
    assert panel_times(server) == {f"{kind}{p}": T0_S for kind, ps in
                                   (("v1", "n u ms s m h"), ("raw", "ns us"))
                                   for p in ps.split()}


def test_v2_client_health_ready_buckets_gzip_and_every_precision(server: Served) -> None:
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    with InfluxDBClient(url=server.url, token=f"user:{TOKEN}", org="home",
                        enable_gzip=True, timeout=120_000) as client:
        health = client.health()
        assert health.status == "pass", health.message
        assert client.ready().status == "ready"
        bucket = client.buckets_api().find_bucket_by_name("solar")
        assert bucket is not None and bucket.name == "solar"
        api = client.write_api(write_options=SYNCHRONOUS)
        for precision in (WritePrecision.NS, WritePrecision.US, WritePrecision.MS,
                          WritePrecision.S):
            api.write(bucket="solar", write_precision=precision, record=Point(
                "ps100_readings").tag("panel_id", f"v2{precision}").field("power", 7.0)
                .time(T0_NS // UNITS_NS[precision], write_precision=precision))
    assert panel_times(server) == {f"v2{p}": T0_S for p in ("ns", "us", "ms", "s")}


def test_health_ready_and_buckets_over_http(server: Served) -> None:
    health = httpx.get(server.url + "/health")          # no token, as InfluxDB
    assert health.status_code == 200
    assert health.json()["status"] == "pass" and health.json()["name"] == "influxdb"
    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert httpx.get(server.url + "/api/v2/buckets").status_code == 401
    listed = httpx.get(server.url + "/api/v2/buckets", params={"name": "home"},
                       headers={"Authorization": f"Token {TOKEN}"})
    assert listed.status_code == 200
    assert [b["name"] for b in listed.json()["buckets"]] == ["home"]
    created = post(server, "/api/v2/buckets", b'{"name": "new", "orgID": "o1", '
                   b'"retentionRules": []}', headers={"Content-Type": "application/json"})
    assert created.status_code == 201 and created.json()["name"] == "new"


def test_influxdb_18_auth_forms(server: Served) -> None:
    line = f"ps100_readings,panel_id=a power=1.0 {T0_S}"
    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    good: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"Authorization": f"Token user:{TOKEN}"}, {}),
        ({"Authorization": f"Token {TOKEN}"}, {}),
        ({"Authorization": f"Bearer {TOKEN}"}, {}),
        ({"Authorization": f"Basic {basic}"}, {}),
        ({}, {"u": "user", "p": TOKEN}),
        ({}, {"p": TOKEN}),
        # a client default (Basic root:root) riding along with u=&p=: the parameters count
        ({"Authorization": "Basic " + base64.b64encode(b"root:root").decode()},
         {"u": "user", "p": TOKEN}),
    ]
    for headers, params in good:
        answer = httpx.post(server.url + "/write", params={"db": "d", "precision": "s",
                                                           **params},
                            headers=headers, content=line)
        assert answer.status_code == 204, (headers, params, answer.text)
    bad = [({"Authorization": "Token user:wrong"}, {}), ({}, {"u": TOKEN, "p": "x"}),
           ({"Authorization": f"Token {TOKEN}:user"}, {})]
    for headers, params in bad:
        answer = httpx.post(server.url + "/write", params={"db": "d", **params},
                            headers=headers, content=line)
        assert answer.status_code == 401, (headers, params)


def test_one_message_per_refused_line(server: Served) -> None:
    from influxdb_client_3 import InfluxDBClient3
    from influxdb_client_3.exceptions import InfluxDBPartialWriteError

    body = (f'hamode,entity_id=a state="on" {T0_S}\n'
            f"hamode,entity_id=a state=1.0 {T0_S + 1}\n"
            f"ps100_readings,panel_id=p power=2.0 {T0_S}\n"
            f"ps100_readings,panel_id=q,extra=1 power=2.0 {T0_S}")
    v3 = post(server, "/api/v3/write_lp", body, db="d", precision="s")
    assert v3.status_code == 400
    data = v3.json()["data"]
    assert [d["line_number"] for d in data] == [2, 4]
    assert data[0]["error_message"] == "field 'state' is float here but string earlier"
    assert not any(d["error_message"].startswith("line ") for d in data)
    v1 = post(server, "/write", body, db="d", precision="s")
    message = v1.json()["error"]   # the store now holds 'state' as a string (the v3 write)
    assert message.startswith("partial write: line 2: field type conflict: field 'state' is "
                              "float here but string in the store")
    assert message.count("line 2:") == 1 and message.count("line 4:") == 1
    client = InfluxDBClient3(host=server.url, token=TOKEN, database="d")
    try:
        with pytest.raises(InfluxDBPartialWriteError) as raised:
            client.write(record=body, write_precision="s", use_v2_api=False)
    finally:
        client.close()
    text = str(raised.value)
    assert text.count("line 2:") == 1 and "line 2: line 2" not in text


# -- the same corpus in a real influxd 1.x -------------------------------------------------------
def corpus() -> list[tuple[str, str]]:
    """(precision, body) pairs with names today's profiles accept."""
    long_state = "y" * (2**20 - 64)
    return [
        ("m", f"pv,site=a p=1.0,p=2.0 {T0_S // 60}\npv,site=b p=3.0 {T0_S // 60 + 1}"),
        ("h", f"pv,site=c p=4.0 {T0_S // 3600}"),
        ("s", f'ev,car=x mode="on" {T0_S}\nev,car=x mode=1.0 {T0_S + 1}\n'
              f'ev,car=y mode="{long_state}" {T0_S + 2}\nev,car=z mode="idle",mode="off" '
              f"{T0_S + 3}"),
        ("n", f"pv,site=d p=5.0,p=6.0 {T0_NS}\npv,site=e\\ f p=7.0,p=8.0 {T0_NS}"),
    ]


def stored_in_influxd(server: Influx1) -> set[tuple[str, str, int, Any]]:
    out: set[tuple[str, str, int, Any]] = set()
    for name, field, tag in (("pv", "p", "site"), ("ev", "mode", "car")):
        for series in server.query("d", f'SELECT "{field}" FROM "{name}" GROUP BY "{tag}"'):
            for t, value in series["values"]:
                out.add((name, series["tags"][tag], t, value))
    return out


def stored_here(served: Served) -> set[tuple[str, str, int, Any]]:
    pv = sql(served, "SELECT site, epoch_ns(time) AS t, p_avg FROM pv_1s")
    ev = sql(served, "SELECT car, epoch_ns(e.time) AS t, l.label FROM ev_1s e JOIN "
                     "sunarchive_state_labels l ON l.measurement = 'ev' AND l.field = 'mode' "
                     "AND l.code = e.mode_last")
    return {("pv", str(r["site"]), int(str(r["t"])), r["p_avg"]) for r in pv} | \
        {("ev", str(r["car"]), int(str(r["t"])), r["label"]) for r in ev}


def test_same_points_as_a_real_influxd(server: Served, tmp_path: Path) -> None:
    if not available():
        pytest.skip("influxd (Debian package influxdb) is not installed; `make system-deps`")
    with throwaway_influxdb1(tmp_path / "influxd") as influxd:
        influxd.create_database("d")
        for precision, body in corpus():
            theirs = httpx.post(influxd.url + "/write", params={"db": "d",
                                "precision": precision}, content=body, timeout=60)
            ours = post(server, "/write", body, db="d", precision=precision)
            assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
        expected = stored_in_influxd(influxd)
    assert len(expected) == 8
    assert stored_here(server) == expected
