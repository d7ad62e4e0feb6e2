"""Schema on write (issue 17, points 1 and 2): a measurement whose profile was inferred from
line protocol takes tag keys and fields it has not seen before at any later write, on DuckDB
and PostgreSQL, and keeps them across restarts; a field's type is fixed by its first write
(a conflicting line is refused alone); the limits still answer a clear 400; built-in
profiles keep their rules. Against a real ``sunarchive serve``; the reducer's growth in the
middle of buffered data is checked on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from sunarchive.api.growth import plan_growth
from sunarchive.api.inferred import infer_profile, type_conflicts
from sunarchive.api.limits import WriteLimits
from sunarchive.lineprotocol import parse_lines
from sunarchive.profiles import load_profiles
from sunarchive.profiles.loader import parse_profile
from sunarchive.reducer import Reducer
from tests.support.cli import clean_env, cli
from tests.support.cli_store import Store
from tests.support.ports import free_port

pytestmark = pytest.mark.integration
T0_S = 1_782_036_000                          # 2026-06-21 10:00 UTC
BUILTIN = len(load_profiles())
LIMITS = {"SUNARCHIVE_MAX_TAGS_PER_SERIES": "3",
          "SUNARCHIVE_MAX_FIELDS_PER_MEASUREMENT": "4"}



@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "duckdb":
        return Store(["--db", str(tmp_path / "g.duckdb")], tmp_path)
    return Store(["--database-url", request.getfixturevalue("pg_url")], tmp_path)


def start(store: Store, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", *store.args, "--http-port", str(port)],
        cwd=store.folder, env=clean_env(env), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return Server(url, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise AssertionError("serve did not come up")


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(60)


@pytest.fixture
def running(store: Store) -> Iterator[tuple[Store, Server]]:
    server = start(store, LIMITS)
    yield store, server
    if server.process.poll() is None:
        stop(server)


def write(server: Server, body: str) -> httpx.Response:
    return httpx.post(server.url + "/write", params={"db": "telegraf", "precision": "s"},
                      content=body, timeout=60)


def series_of(server: Server, measurement: str, count: int) -> list[dict[str, Any]]:
    """``/api/v1/series`` of a measurement once its ``count`` series are written (they are
    when their first second closes: within a few seconds; bounded wait)."""
    deadline = time.monotonic() + 60
    while True:
        found = [s for s in httpx.get(server.url + "/api/v1/series", timeout=30).json()
                 if s["measurement"] == measurement]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def sql(store: Store, statement: str) -> list[dict[str, object]]:
    out = cli("sql", statement, *store.args, "--format", "json", cwd=store.folder).stdout
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_new_tag_keys_and_fields_on_later_writes(running: tuple[Store, Server]) -> None:
    store, server = running
    assert write(server, f"cpu,host=a u=1 {T0_S}").status_code == 204
    grown = write(server, f"cpu,host=a,region=eu u=2 {T0_S + 1}")
    assert grown.status_code == 204, grown.text
    assert write(server, f"mem,host=a p=1 {T0_S}").status_code == 204
    more = write(server, f"mem,host=a p=2,huge_pages_total=0i {T0_S + 1}")
    assert more.status_code == 204, more.text
    cpu = series_of(server, "cpu", 2)
    assert all(s["profile"]["inferred"] for s in cpu)
    assert cpu[0]["profile"]["growths"] == 1
    assert cpu[0]["profile"]["grew"][0]["tags"] == ["region"]
    stop(server)
    assert sql(store, "SELECT host, region, u_avg FROM cpu_1s ORDER BY time") == [
        {"host": "a", "region": None, "u_avg": 1.0}, {"host": "a", "region": "eu", "u_avg": 2.0}]
    assert sql(store, "SELECT p_avg, huge_pages_total_last AS h FROM mem_1s ORDER BY time") \
        == [{"p_avg": 1.0, "h": None}, {"p_avg": 2.0, "h": 0.0}]
    status = json.loads(cli("status", *store.args, "--json", cwd=store.folder).stdout)
    inferred = {p["measurement"]: p for p in status["inferred"]}
    assert inferred["mem"]["fields"] == ["p", "huge_pages_total"]
    assert inferred["mem"]["growths"] == 1
    text = cli("status", *store.args, cwd=store.folder).stdout
    assert "inferred profile cpu: 2 tags, 1 fields; grew 1 time(s)" in text
    assert "(added region)" in text


def test_growth_survives_a_restart(running: tuple[Store, Server]) -> None:
    store, server = running
    assert write(server, f"cpu,host=a u=1 {T0_S}").status_code == 204
    assert write(server, f"cpu,host=a,region=eu u=2,s=1i {T0_S + 1}").status_code == 204
    stop(server)
    again = start(store, LIMITS)
    try:
        # the grown profile is back: nothing is new, and the first series is still itself
        assert write(again, f"cpu,host=b,region=us u=3,s=2i {T0_S + 2}\n"
                            f"cpu,host=a u=4 {T0_S + 3}").status_code == 204
        conflict = write(again, f"cpu,host=a s=2.5 {T0_S + 4}")
        assert conflict.status_code == 400
        assert conflict.json()["error"] == (
            "partial write: line 1: field type conflict: field 's' is float here but int in "
            "the store (a field's type is fixed by its first write) dropped=1")
    finally:
        stop(again)
    rows = sql(store, "SELECT series_id, host, region, u_avg, s_avg FROM cpu_1s ORDER BY time")
    assert [(r["host"], r["region"], r["u_avg"], r["s_avg"]) for r in rows] == [
        ("a", None, 1.0, None), ("a", "eu", 2.0, 1.0), ("b", "us", 3.0, 2.0),
        ("a", None, 4.0, None)]
    assert rows[0]["series_id"] == rows[3]["series_id"] != rows[1]["series_id"]
    series = sql(store, "SELECT measurement, tags FROM sunarchive_series "
                        "WHERE measurement = 'cpu' ORDER BY series_id")
    # saved before or after the growth (as the writer's timing has it): absent or empty
    assert [{k: v for k, v in json.loads(str(s["tags"])).items() if v}
            for s in series] == [{"host": "a"}, {"host": "a", "region": "eu"},
                                 {"host": "b", "region": "us"}]


def test_type_conflicts_and_limits_refuse_their_lines_alone(
        running: tuple[Store, Server]) -> None:
    store, server = running
    assert write(server, f'ha,entity_id=x value=1.0,state="on",n=1i {T0_S}').status_code == 204
    body = (f"ha,entity_id=x value=2i {T0_S + 1}\n"            # integer, stored as float
            f"ha,entity_id=x value=3.0 {T0_S + 2}\n"
            f'ha,entity_id=x state=1.0 {T0_S + 3}\n'            # float, stored as string
            f"ha,entity_id=x n=2u {T0_S + 4}\n"                 # unsigned, stored as integer
            f'ha,entity_id=x state="off",n=3i {T0_S + 5}\n'
            f"ha,entity_id=x,a=1,b=2 value=4.0 {T0_S + 6}\n"     # 3 tag keys: fits
            f"ha,entity_id=x,c=1 value=5.0 {T0_S + 7}\n"         # a 4th tag key
            f"ha,entity_id=x extra=1.0 {T0_S + 8}\n"             # the 4th field: fits
            f"ha,entity_id=x more=1.0,value=6.0 {T0_S + 9}\n")   # a 5th field
    answer = write(server, body)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert message.startswith("partial write: line 1: field type conflict: field 'value' is "
                              "int here but float in the store (a field's type is fixed by "
                              "its first write); ")
    for line, text in ((3, "field type conflict: field 'state' is float here but string"),
                       (4, "field type conflict: field 'n' is uint here but int in the store"),
                       (7, "tag 'c' would give 'ha' 4 tag keys, more than "
                           "max_tags_per_series = 3"),
                       (9, "field 'more' would give 'ha' 5 fields, more than "
                           "max_fields_per_measurement = 4")):
        assert f"line {line}: {text}" in message
    assert message.endswith("dropped=5")
    stop(server)
    rows = sql(store, "SELECT a, value_avg, state_last, n_avg, extra_avg FROM ha_1s "
                      "ORDER BY time")
    assert [(r["a"], r["value_avg"], r["state_last"], r["n_avg"], r["extra_avg"])
            for r in rows] == [(None, 1.0, 0, 1.0, None), (None, 3.0, None, None, None),
                               (None, None, 1, 3.0, None), ("1", 4.0, None, None, None),
                               (None, None, None, None, 1.0)]


@pytest.mark.parametrize("columnar", [True, False])
def test_the_stored_type_comes_first_in_a_body(columnar: bool) -> None:
    """The store's type of a field decides, not the body's first line: influxd refuses the
    lines that conflict with what it holds, whichever comes first."""
    body = "m v=2i 1\nm v=3.0 2\nm,t=a v=4i,w=1.0 3\nm,t=b w=\"x\" 4\nn v=5i 5"
    stored = {"m": {"v": "float", "w": "float"}}
    parsed = parse_lines(body, columnar=columnar, stored_kinds=lambda m: stored.get(m, {}))
    assert [(e.line_number, e.reason) for e in parsed.errors] == [
        (1, "field type conflict: field 'v' is int here but float in the store (a field's "
            "type is fixed by its first write)"),
        (3, "field type conflict: field 'v' is int here but float in the store (a field's "
            "type is fixed by its first write)"),
        (4, "field type conflict: field 'w' is string here but float in the store (a field's "
            "type is fixed by its first write)")]
    assert parsed.measurements["m"].fields["v"].values.tolist() == [3.0]
    assert parsed.measurements["n"].fields["v"].kind == "int"
    same = parse_lines("m v=1.0 1\nm v=2.0 2", columnar=columnar,
                       stored_kinds=lambda m: stored.get(m, {}))
    assert same.errors == [] and same.measurements["m"].time_ns.tolist() == [1, 2]


def test_builtin_profiles_keep_their_rules(running: tuple[Store, Server]) -> None:
    _, server = running
    answer = write(server, f"ps100_readings,panel_id=p,extra=1 power=1.0 {T0_S}\n"
                           f"ps100_readings,panel_id=p watts=1.0,power=2.0 {T0_S}")
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "line 1: tag 'extra' is not one of the tags of 'ps100_readings'" in message
    assert "line 2: measurement 'ps100_readings': field 'watts' is not in its profile" in message


def test_reducer_grows_in_the_middle_of_buffered_data() -> None:
    """A counter's carry and buffered samples survive a growth: its increase over the
    growth is exact, and the new field starts absent."""
    first = parse_lines(f"m,host=a total=10i {T0_S}\nm,host=a total=15i {T0_S + 1}",
                        precision="s").measurements["m"]
    profile = infer_profile(first)
    grown_doc = {"name": "m", "tags": ["host"], "extra": {"inferred": True},
                 "fields": {"total": {"kind": "counter", "type": "int"},
                            "temp": {"kind": "gauge", "type": "float"}}}
    grown = parse_profile(grown_doc, "<test>")
    reducer = Reducer(profile, lateness_s=0.0)
    series = np.zeros(1, np.int32)
    reducer.add(series, np.array([T0_S * 10**9]), {"total": np.array([10.0])})
    reducer.add(series, np.array([(T0_S + 1) * 10**9]), {"total": np.array([15.0])})
    before = reducer.close_until(T0_S + 1)
    reducer.grow(grown)
    reducer.add(series, np.array([(T0_S + 2) * 10**9]),
                {"total": np.array([18.0]), "temp": np.array([21.5])})
    after = reducer.flush()
    rows = {int(t): {k: float(v[i]) for k, v in r.columns.items()}
            for r in (before.fresh, after.fresh) for i, t in enumerate(r.time_s)}
    assert [rows[T0_S + k]["total_increase"] for k in (1, 2)] == [5.0, 3.0]
    assert np.isnan(rows[T0_S + 1]["temp_avg"]) and rows[T0_S + 2]["temp_avg"] == 21.5


# -- names kept exactly (points 3 and 4) -----------------------------------------------------
EXACT = [
    f"m³,entity_id=gas value=1.0 {T0_S}",                  # Home Assistant: gas volume
    f"m,entity_id=dist value=2.0 {T0_S}",                  # ... and distance
    f"µs,entity_id=a value=3.0 {T0_S}",
    f"s,entity_id=a value=4.0 {T0_S}",
    f"cpu,host=a usage=5.0 {T0_S}",
    f"Cpu,host=a usage=6.0 {T0_S}",
    f"°C,entity_id=t,friendly_name=Küche value=21.5,friendly_name_str=\"Küche\" {T0_S}",
    f"modbus,name=meter,Slave.ID=1 Active_Power=230.5,pH=7.1,ph=7.2 {T0_S}",
    f"docker_container_cpu,com.docker.compose.project=web,host=h usage_percent=0.5 {T0_S}",
    f"odd,day=mon,series_id=x v=1.0 {T0_S}",
    f"{'long_' * 12}name,{'tag_' * 17}key=1 {'field_' * 10}f=1.0 {T0_S}",
]


def test_names_are_kept_exactly_without_collisions(running: tuple[Store, Server]) -> None:
    store, server = running
    answer = write(server, "\n".join(EXACT))
    assert answer.status_code == 204, answer.text
    listed = {m["measurement"]: m for m in
              httpx.get(server.url + "/api/v1/measurements", timeout=30).json()}
    tables = {name: m["tables"]["1s"] for name, m in listed.items()}
    # exact names are the SQL names; a name that would clash gets a derived one
    for name in ("m³", "m", "µs", "s", "cpu", "°C", "modbus", "docker_container_cpu", "odd"):
        assert tables[name] == f"{name}_1s"
    assert tables["Cpu"].startswith("cpu_") and tables["Cpu"] != "cpu_1s"
    assert len(set(map(str.casefold, tables.values()))) == len(tables)
    modbus = listed["modbus"]
    assert modbus["tags"] == ["Slave.ID", "name"]
    assert modbus["tag_columns"] == {"Slave.ID": "Slave.ID", "name": "name"}
    columns = {f["name"]: f["columns"] for f in modbus["fields"]}
    assert columns["Active_Power"][0] == "Active_Power_avg"
    assert columns["pH"][0] == "pH_avg" and columns["ph"][0].startswith("ph_")
    assert listed["odd"]["tag_columns"]["day"] != "day"        # the daily tier has day
    assert listed["odd"]["tag_columns"]["series_id"] != "series_id"
    long_name = next(n for n in listed if n.startswith("long_"))
    assert len(tables[long_name].encode()) <= 63 - len("_p202606210000")
    stop(server)
    q = '"'
    def one(measurement: str, select: str) -> list[dict[str, object]]:
        return sql(store, f"SELECT {select} FROM {q}{tables[measurement]}{q}")

    assert one("m³", "value_avg") == [{"value_avg": 1.0}]
    assert one("m", "value_avg") == [{"value_avg": 2.0}]
    assert one("µs", "value_avg") == [{"value_avg": 3.0}]
    assert one("s", "value_avg") == [{"value_avg": 4.0}]
    assert one("cpu", "usage_avg") == [{"usage_avg": 5.0}]
    assert one("Cpu", "usage_avg") == [{"usage_avg": 6.0}]
    assert one("°C", 'value_avg, friendly_name, friendly_name_str_last AS code') == [
        {"value_avg": 21.5, "friendly_name": "Küche", "code": 0}]
    assert one("modbus", '"Slave.ID", name, "Active_Power_avg", "pH_avg"') == [
        {"Slave.ID": "1", "name": "meter", "Active_Power_avg": 230.5, "pH_avg": 7.1}]
    ph = columns["ph"][0]
    assert one("modbus", f'"{ph}" AS ph') == [{"ph": 7.2}]
    assert one("docker_container_cpu", '"com.docker.compose.project" AS p') == [{"p": "web"}]


def test_growth_names_new_keys_clear_of_the_old(running: tuple[Store, Server]) -> None:
    store, server = running
    assert write(server, f"ha,entity_id=a value=1.0 {T0_S}").status_code == 204
    assert write(server, f"ha,entity_id=a,Entity_ID=b Value=2.0,value_Avg=3.0 {T0_S + 1}"
                 ).status_code == 204
    listed = {m["measurement"]: m for m in
              httpx.get(server.url + "/api/v1/measurements", timeout=30).json()}
    ha = listed["ha"]
    entity = ha["tag_columns"]["Entity_ID"]
    assert entity != "Entity_ID" and entity.startswith("entity_id_")
    columns = {f["name"]: f["columns"][0] for f in ha["fields"]}
    assert columns["value"] == "value_avg" and columns["Value"] != "Value_avg"
    assert columns["value_Avg"] == "value_Avg_avg"
    stop(server)
    rows = sql(store, f'SELECT entity_id, "{entity}" AS e, value_avg, "{columns["Value"]}" AS v '
                      "FROM ha_1s ORDER BY time")
    assert rows == [{"entity_id": "a", "e": None, "value_avg": 1.0, "v": None},
                    {"entity_id": "a", "e": "b", "value_avg": None, "v": 2.0}]


def test_a_store_from_before_keeps_its_tables_and_grows() -> None:
    """Profiles inferred before names were kept exactly (sanitized ``table``, no field
    types) load as they were: same tables; they take any number and grow like the others."""
    older = {"name": "kWh", "table": "kwh", "description": "inferred from InfluxDB line "
             "protocol", "tags": ["domain", "entity_id"], "max_gap_s": 3600.0,
             "fields": {"value": {"unit": "", "kind": "gauge",
                                  "description": "inferred from line protocol (float)"}},
             "extra": {"inferred": True}}
    profile = parse_profile(older, "<stored>")
    assert profile.table("1s") == "kwh_1s" and profile.tag_column_names == ("domain",
                                                                            "entity_id")
    m = parse_lines(f"kWh,domain=sensor,entity_id=meter value=5i,Last_Reset=\"x\" {T0_S}",
                    precision="s").measurements["kWh"]
    assert type_conflicts(profile, m) == {}
    growth = plan_growth(profile, m, WriteLimits())
    document = growth.document(profile, m)
    assert document is not None
    grown = parse_profile(document, "<grown>")
    assert grown.table("1s") == "kwh_1s"
    assert [f.name for f in grown.fields] == ["value", "Last_Reset"]
    assert grown.field("Last_Reset").columns()[0].name == "Last_Reset_first"


def test_import_grows_inferred_profiles_too(tmp_path: Path) -> None:
    """``sunarchive import`` of line protocol: the same schema on write as over HTTP — a
    second file brings a tag key and a field, and a field of another type is rejected."""
    store = Store(["--db", str(tmp_path / "i.duckdb")], tmp_path)
    first = tmp_path / "a.lp"
    first.write_text(f"cpu,host=a u=1 {T0_S}\n", encoding="utf-8")
    second = tmp_path / "b.lp"
    second.write_text(f"cpu,host=a,region=eu u=2,Active_Power=5.5 {T0_S + 1}\n"
                      f"cpu,host=a u=3i {T0_S + 2}\n", encoding="utf-8")
    for path in (first, second):
        out = cli("import", *store.args, str(path), "--precision", "s", "--json",
                  cwd=tmp_path).stdout
        report = json.loads(out.strip().splitlines()[-1])
    (file,) = report["files"]
    assert file["reasons"] == [{"line": 2, "reason": "field type conflict: field 'u' is int "
                                "here but float in the store (a field's type is fixed by its "
                                "first write)"}]
    assert "measurement 'cpu' grew: added tag 'region', field 'Active_Power'" in file["notes"]
    assert sql(store, 'SELECT host, region, u_avg, "Active_Power_avg" AS p FROM cpu_1s '
                      "ORDER BY time") == [
        {"host": "a", "region": None, "u_avg": 1.0, "p": None},
        {"host": "a", "region": "eu", "u_avg": 2.0, "p": 5.5}]


@pytest.mark.parametrize("name", [
    "binary_sensor.front_door_contact_sensor_op",       # 44 bytes: the longest exact prefix
    "binary_sensor.front_door_contact_sensor_open_x",   # 46 bytes: once exact, then broken
])
def test_long_names_keep_every_tier(store: Store, name: str) -> None:
    """Home Assistant writes entity ids this long as measurements. Every table, view and
    index made from the name — the rollups' ``_materialized`` tables and their indexes too —
    must fit PostgreSQL's 63 bytes (a name cut short once equalled its table's: every point
    refused), across a restart (setup runs again) and a closed hour."""
    tables: dict[str, str] = {}
    for hour in range(2):
        server = start(store)
        try:
            body = "\n".join(f"{name},entity_id=door value={k}.0 {T0_S + hour * 3600 + k * 60}"
                             for k in range(60))
            answer = write(server, body)
            assert answer.status_code == 204, answer.text
            listed = {m["measurement"]: m for m in
                      httpx.get(server.url + "/api/v1/measurements", timeout=30).json()}
            tables = listed[name]["tables"]
        finally:
            stop(server)
    assert (tables["1s"] == f"{name}_1s") is (len(name.encode()) <= 44)
    for tier in ("1s", "5min", "1hour", "daily"):
        assert len(tables[tier].encode()) <= 63
        rows = sql(store, f'SELECT SUM(value_count) AS n FROM "{tables[tier]}"')
        assert rows == [{"n": 120}], tier


def test_rollup_views_follow_a_measurement_made_and_grown_at_run_time(
        running: tuple[Store, Server]) -> None:
    """``<m>_5min``, ``_1hour`` and ``_daily`` answer the open buckets for a measurement
    that line protocol created while the server ran, and gain the columns of a field added
    later — without a restart (issue 18, point 7, for schema on write)."""
    store, server = running
    assert write(server, f"cpu,host=a u=1 {T0_S}").status_code == 204
    series_of(server, "cpu", 1)
    for tier in ("5min", "1hour", "daily"):
        rows = wait_for_rows(store, f"SELECT host, u_avg FROM cpu_{tier}")
        assert rows == [{"host": "a", "u_avg": 1.0}], tier
    assert write(server, f"cpu,host=a u=3,w=5 {T0_S + 1}").status_code == 204
    for tier in ("5min", "1hour", "daily"):
        rows = wait_for_rows(store, f"SELECT host, u_avg, w_avg FROM cpu_{tier} "
                                    "WHERE w_avg IS NOT NULL")
        assert rows == [{"host": "a", "u_avg": 2.0, "w_avg": 5.0}], tier


def wait_for_rows(store: Store, statement: str) -> list[dict[str, object]]:
    """The rows of ``statement`` once it answers any (the writer commits about once a
    second); the last error or empty answer after a bounded wait."""
    deadline = time.monotonic() + 60
    while True:
        done = cli("sql", statement, *store.args, "--format", "json", cwd=store.folder,
                   check=False)
        rows: list[dict[str, object]] = json.loads(done.stdout) if done.returncode == 0 \
            else []
        if rows or time.monotonic() > deadline:
            assert done.returncode == 0, done.stderr
            return rows
        time.sleep(0.3)
