"""The exact bodies Home Assistant and Telegraf send, stored whole (issue 17, "Tests").

The corpus, each part as its sender builds it (read from their sources):

* Home Assistant's ``influxdb`` integration (``homeassistant/components/influxdb/__init__.py``,
  ``event_to_json``): measurement = the unit of measurement (``W``, ``kWh``, ``°C``, ``m³``,
  ``m``, ``μs``, ``s``, ``%``), else the entity id; tags ``domain`` and ``entity_id`` (the
  object id), the ``tags_attributes`` and the configured ``tags``; field ``value`` (the state
  as a float, 1/0 for on/off) and/or ``state`` (the state text), every other attribute as a
  float field or, when it is not a number, as ``<attribute>_str``. API v1 writes the JSON
  points with the ``influxdb`` client's ``write_points``; API v2 with ``influxdb-client``'s
  ``write_api.write`` — both libraries run here unmodified.
* Telegraf's ``influxdb`` and ``influxdb_v2`` outputs (``plugins/serializers/influx``): tags
  sorted by key, floats in Go's shortest ``'f'`` form (``100``, ``0.5``), unsigned and signed
  integers as ``123i``, nanosecond timestamps, gzip; the ``cpu``, ``mem`` (fields added by a
  later Telegraf), ``disk`` (a ``label`` tag on labelled devices only), ``system`` (with the
  ``uptime_format`` string), ``modbus`` (fields named in the config: ``Active_Power``) and
  ``docker_container_*`` (container labels as dotted tags) inputs, with ``global_tags`` that
  differ between the two agents.

Everything goes through ``sunarchive serve``'s write endpoints, on DuckDB and on PostgreSQL,
and to a real ``influxd`` 1.x (1.6 has no ``/api/v2/write``: the v2 bodies go to its
``/write``, made by the same serializer the v2 client uses). Then every point must be stored
once (one sample per row), with its exact measurement, tag and field names, its type and its
time, and both stores must hold the same set of series, fields and values.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.cli import clean_env, cli
from tests.support.cli_store import Store
from tests.support.influxdb1_server import Influx1, available, throwaway_influxdb1
from tests.support.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
DB = "corpus"
Point = tuple[str, frozenset[tuple[str, str]], str, int, Any]
"""(measurement, tags without empty values, field, time ns, value)"""


# -- Home Assistant ----------------------------------------------------------------------------
# RE_DIGIT_TAIL and RE_DECIMAL as in homeassistant/components/influxdb/const.py
RE_DIGIT_TAIL = re.compile(r"^[^\.]*\d+\.?\d+[^\.]*$")
RE_DECIMAL = re.compile(r"[^\d.]+")
STATE_AS_NUMBER = {"on": 1.0, "off": 0.0, "open": 1.0, "closed": 0.0, "home": 1.0,
                   "not_home": 0.0, "locked": 1.0, "unlocked": 0.0}
"""homeassistant.helpers.state.state_as_number for the states used here."""


@dataclass
class HaState:
    entity_id: str
    state: str
    attributes: dict[str, Any]
    seconds: int
    """Time fired, seconds after T0."""


def ha_point(s: HaState, tags_attributes: tuple[str, ...] = (),
             tags: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``event_to_json`` makes of a state (default measurement attribute: the unit)."""
    domain, object_id = s.entity_id.split(".", 1)
    include_state = include_value = False
    try:
        value = float(s.state)
        include_value = True
    except ValueError:
        include_state = True
        if s.state in STATE_AS_NUMBER:
            value, include_value = STATE_AS_NUMBER[s.state], True
    measurement = s.attributes.get("unit_of_measurement") or s.entity_id
    include_uom = "unit_of_measurement" not in s.attributes
    point: dict[str, Any] = {"measurement": measurement,
                             "tags": {"domain": domain, "entity_id": object_id},
                             "time": T0 + timedelta(seconds=s.seconds), "fields": {}}
    fields = point["fields"]
    if include_state:
        fields["state"] = s.state
    if include_value:
        fields["value"] = value
    for key, raw in s.attributes.items():
        if key in tags_attributes:
            point["tags"][key] = raw
        elif key != "unit_of_measurement" or include_uom:
            if key in fields:
                key = f"{key}_"
            try:
                fields[key] = float(raw)
            except (ValueError, TypeError):
                text = str(raw)
                fields[f"{key}_str"] = text
                if RE_DIGIT_TAIL.match(text):
                    fields[key] = float(RE_DECIMAL.sub("", text))
            if isinstance(fields.get(key), float) and not math.isfinite(fields[key]):
                del fields[key]
    point["tags"].update(tags or {})
    return point


def ha_states(offset: int) -> list[HaState]:
    """Entities of a solar home over a few minutes; attributes come and go."""
    power = {"unit_of_measurement": "W", "device_class": "power", "state_class": "measurement",
             "friendly_name": "House power"}
    out = []
    for k in range(3):
        at = offset + 60 * k
        out += [
            HaState("sensor.house_power", f"{1234.5 + k}", power, at),
            HaState("sensor.pv_energy_total", f"{15234.125 + k / 8}",
                    {"unit_of_measurement": "kWh", "device_class": "energy",
                     "state_class": "total_increasing", "friendly_name": "PV energy"}, at + 1),
            # a daily energy sensor: HA turns its last_reset timestamp into ~2e16 (a field
            # value beyond 2**53, still a float64) and a last_reset_str string
            HaState("sensor.pv_energy_today", f"{3.25 + k / 4}",
                    {"unit_of_measurement": "kWh", "device_class": "energy",
                     "state_class": "total", "last_reset": "2026-06-21T00:00:00+00:00",
                     "friendly_name": "PV energy today"}, at + 1),
            HaState("sensor.outdoor_temperature", f"{21.5 + k}",
                    {"unit_of_measurement": "°C", "device_class": "temperature",
                     "friendly_name": "Außentemperatur"}, at + 2),
            HaState("sensor.gas_meter", f"{4512.034 + k / 1000}",
                    {"unit_of_measurement": "m³", "device_class": "gas",
                     "state_class": "total_increasing", "friendly_name": "Gas"}, at + 3),
            HaState("sensor.garage_distance", f"{1.25 + k}",
                    {"unit_of_measurement": "m", "friendly_name": "Garage distance"}, at + 4),
            HaState("sensor.inverter_latency", f"{850 + k}",
                    {"unit_of_measurement": "μs", "friendly_name": "Inverter latency"}, at + 5),
            HaState("sensor.boot_time", f"{12 + k}",
                    {"unit_of_measurement": "s", "friendly_name": "Boot"}, at + 6),
            HaState("sensor.battery_level", f"{87 - k}",
                    {"unit_of_measurement": "%", "device_class": "battery",
                     "friendly_name": "Battery"}, at + 7),
            HaState("binary_sensor.front_door", ["on", "off", "on"][k],
                    {"device_class": "door", "friendly_name": "Front door"}, at + 8),
            HaState("climate.living_room", ["heat", "heat", "off"][k],
                    {"current_temperature": 20.5 + k / 2, "temperature": 21,
                     "hvac_modes": ["off", "heat"], "friendly_name": "Living room",
                     # an attribute that appears later: a new field
                     **({"preset_mode": "eco"} if k == 2 else {})}, at + 9),
            HaState("sensor.inverter_mode", ["Normal", "Normal (grid)", "Fault 3"][k],
                    {"friendly_name": "Inverter mode", "icon": "mdi:solar-power"}, at + 10),
        ]
    return out


def ha_v1() -> list[dict[str, Any]]:
    """Home Assistant with API v1: ``tags_attributes: [friendly_name]``, ``tags: {instance:
    home}``."""
    return [ha_point(s, ("friendly_name",), {"instance": "home"}) for s in ha_states(0)]


def ha_v2() -> list[dict[str, Any]]:
    """Home Assistant with API v2, no tag attributes: ``friendly_name`` is a field
    (``friendly_name_str``) — the same measurements get new tag keys and fields."""
    return [ha_point(s) for s in ha_states(1000)]


# -- Telegraf ----------------------------------------------------------------------------------
def escape_key(text: str) -> str:
    return text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def go_float(value: float) -> str:
    """strconv.AppendFloat(v, 'f', -1, 64): shortest, never an exponent."""
    return np.format_float_positional(value, trim="-")


def telegraf_line(name: str, tags: dict[str, str], fields: dict[str, Any], ns: int) -> str:
    """One metric as Telegraf's influx serializer writes it."""
    head = escape_key(name) + "".join(f",{escape_key(k)}={escape_key(v)}"
                                      for k, v in sorted(tags.items()) if v)
    pairs = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            text = go_float(value)
        else:
            text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        pairs.append(f"{escape_key(key)}={text}")
    return f"{head} {','.join(pairs)} {ns}"


MEM_V1 = {"active": 3_210_004_480, "available": 12_884_901_888, "buffered": 402_653_184,
          "cached": 6_442_450_944, "free": 2_147_483_648, "inactive": 4_831_838_208,
          "slab": 536_870_912, "total": 17_179_869_184, "used": 4_294_967_296,
          "available_percent": 75.0, "used_percent": 25.0}
MEM_NEW = {"huge_pages_total": 0, "huge_pages_free": 0, "huge_page_size": 2_097_152,
           "sreclaimable": 268_435_456, "sunreclaim": 134_217_728}
"""Fields a later Telegraf reports too."""


def telegraf_metrics(host: str, ns: int, newer: bool) -> list[tuple[str, dict[str, str],
                                                                     dict[str, Any]]]:
    cpu = {f"usage_{k}": v for k, v in (("user", 12.5), ("system", 3.25), ("idle", 84.25),
                                        ("nice", 0.0), ("iowait", 0.0), ("irq", 0.0),
                                        ("softirq", 0.0), ("steal", 0.0), ("guest", 0.0),
                                        ("guest_nice", 0.0))}
    idle = dict(cpu, usage_user=0.0, usage_system=0.0, usage_idle=100.0)
    disk_fields = {"free": 52_613_349_376, "inodes_free": 3_000_000, "inodes_total": 3_276_800,
                   "inodes_used": 276_800, "total": 105_226_698_752, "used": 47_244_640_256,
                   "used_percent": 47.31}
    if newer:
        disk_fields["inodes_used_percent"] = 8.447265625
    compose = {"com.docker.compose.project": "solar", "com.docker.compose.service": "grafana",
               "com.docker.compose.version": "2.24.6"}
    container = {"container_image": "grafana/grafana", "container_name": "solar-grafana-1",
                 "container_status": "running", "container_version": "10.4.1",
                 "engine_host": host, "server_version": "24.0.7", **compose}
    system = {"load1": 0.52, "load15": 0.31, "load5": 0.4, "n_cpus": 4, "n_users": 1}
    if newer:
        system["n_unique_users"] = 1
    return [
        ("cpu", {"cpu": "cpu0"}, cpu), ("cpu", {"cpu": "cpu-total"}, idle),
        ("mem", {}, {**MEM_V1, **(MEM_NEW if newer else {})}),
        ("disk", {"device": "nvme0n1p2", "fstype": "ext4", "mode": "rw", "path": "/",
                  **({"label": "root"} if newer else {})}, disk_fields),
        ("disk", {"device": "sda1", "fstype": "vfat", "mode": "rw", "path": "/boot/efi"},
         dict(disk_fields, used_percent=4.0)),
        ("system", {}, system), ("system", {}, {"uptime": 93784}),
        ("system", {}, {"uptime_format": " 1 day,  2:03"}),
        ("modbus", {"name": "SDM630", "slave_id": "1", "type": "holding_register"},
         {"Active_Power": 2312.5, "Reactive_Power": -120.25, "Frequency": 50.01,
          "Total_Import_kWh": 10234.5}),
        ("modbus", {"name": "SDM630", "slave_id": "1", "type": "input_register"},
         {"Voltage_L1": 231.2, "Status": 0}),
        ("docker_container_cpu", {**container, "cpu": "cpu-total"},
         {"container_id": "4f1c0a9e2b7d", "throttling_periods": 0,
          "throttling_throttled_periods": 0, "throttling_throttled_time": 0,
          "usage_in_kernelmode": 120_000_000_000, "usage_in_usermode": 610_000_000_000,
          "usage_percent": 1.25, "usage_system": 182_340_000_000_000,
          "usage_total": 735_120_433_811}),
        ("docker_container_mem", container,
         {"container_id": "4f1c0a9e2b7d", "limit": 16_668_160_000, "usage": 201_326_592,
          "usage_percent": 1.21, "max_usage": 0}),
    ]


def telegraf_body(host: str, global_tags: dict[str, str], start_s: int, newer: bool) -> str:
    """Two collection intervals (10 s apart) of one Telegraf agent."""
    lines = []
    for k in range(2):
        ns = (int(T0.timestamp()) + start_s + 10 * k) * 10**9
        for name, tags, fields in telegraf_metrics(host, ns, newer):
            lines.append(telegraf_line(name, {**tags, **global_tags, "host": host}, fields, ns))
    return "\n".join(lines) + "\n"


# -- what each store holds ----------------------------------------------------------------------
TYPES = {"float": "float", "integer": "int", "string": "string", "boolean": "bool"}


def influxd_points(server: Influx1) -> tuple[set[Point], dict[tuple[str, str], str]]:
    points: set[Point] = set()
    types: dict[tuple[str, str], str] = {}
    for series in server.query(DB, "SHOW FIELD KEYS"):
        for key, kind in series["values"]:
            types[(series["name"], key)] = TYPES[kind]
    measurements = [row[0] for s in server.query(DB, "SHOW MEASUREMENTS") for row in s["values"]]
    for name in measurements:
        quoted = name.replace('"', '\\"')
        for series in server.query(DB, f'SELECT * FROM "{quoted}" GROUP BY *'):
            tags = frozenset((k, v) for k, v in series["tags"].items() if v)
            columns = series["columns"]
            for row in series["values"]:
                for column, value in zip(columns[1:], row[1:], strict=True):
                    if value is not None:
                        points.add((name, tags, column, int(row[0]), value))
    return points, types


def stored_points(store: Store, listed: list[dict[str, Any]]
                  ) -> tuple[set[Point], dict[tuple[str, str], str], set[int]]:
    """Points as sunarchive stores them: one 1 s row per point, the value in the column its
    kind keeps it (gauge: ``_avg``; counter and state: ``_last``, a state's code turned back
    into its text; flag: ``_any``); with the sample count of every row."""
    labels = {(r["measurement"], r["field"], int(str(r["code"]))): str(r["label"])
              for r in sql(store, "SELECT measurement, field, code, label FROM "
                                  "sunarchive_state_labels")}
    points: set[Point] = set()
    types: dict[tuple[str, str], str] = {}
    counts: set[int] = set()
    for m in listed:
        name, table, tag_columns = m["measurement"], m["tables"]["1s"], m["tag_columns"]
        value_of = {}
        for f in m["fields"]:
            types[(name, f["name"])] = f["type"]
            suffix = {"gauge": "_avg", "counter": "_last", "state": "_last", "flag": "_any"}
            stem = f["columns"][0][: f["columns"][0].rindex("_")]
            if f["kind"] == "flag":
                stem = f["columns"][0][: -len("_any")]
            value_of[f["name"]] = (stem + suffix[f["kind"]], f)
        select = ", ".join([f'{q(c)} AS {q("t:" + t)}' for t, c in tag_columns.items()] +
                           [f'{q(c)} AS {q("f:" + n)}' for n, (c, _) in value_of.items()])
        rows = sql(store, f"SELECT {epoch_ns(store)} AS ns, sample_count, {select} "
                          f"FROM {q(table)}")
        for row in rows:
            counts.add(int(str(row["sample_count"])))
            tags = frozenset((t, str(row["t:" + t])) for t in tag_columns
                             if row["t:" + t] not in (None, ""))
            for field, (_, spec) in value_of.items():
                value = row["f:" + field]
                if value is None:
                    continue
                if spec["type"] == "string":
                    value = labels[(name, field, int(value))]
                elif spec["type"] == "int":
                    value = int(value)
                elif spec["type"] == "bool":
                    value = bool(value)
                points.add((name, tags, field, int(str(row["ns"])), value))
    return points, types, counts


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def epoch_ns(store: Store) -> str:
    if store.args[0] == "--db":
        return "epoch_ns(time)"
    return "(EXTRACT(EPOCH FROM time) * 1000000000)::BIGINT"


# -- the servers ------------------------------------------------------------------------------

def sql(store: Store, statement: str) -> list[dict[str, Any]]:
    out = cli("sql", statement, *store.args, "--format", "json", cwd=store.folder).stdout
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "duckdb":
        return Store(["--db", str(tmp_path / "corpus.duckdb")], tmp_path)
    return Store(["--database-url", request.getfixturevalue("pg_url")], tmp_path)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        """Stop the server: a clean stop stores every open second."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", *store.args, "--http-port", str(port)],
        cwd=store.folder, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    server = Served(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(server.url + "/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise AssertionError("serve did not come up")
        time.sleep(0.2)
    yield server
    server.stop()


def write_corpus(url: str, v2_url: str | None) -> None:
    """The whole corpus to the server at ``url`` (``v2_url``: where the v2 API is; None for
    influxd 1.6, whose ``/write`` then takes the v2 bodies)."""
    from influxdb import InfluxDBClient  # type: ignore[import-untyped]
    from influxdb_client import InfluxDBClient as InfluxDBClientV2
    from influxdb_client import WritePrecision
    from influxdb_client.client.write.point import Point as V2Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    host, port = url.removeprefix("http://").split(":")
    v1 = InfluxDBClient(host=host, port=int(port), database=DB)
    assert v1.write_points(ha_v1(), time_precision=None)
    v1.close()
    v2_points = ha_v2()
    if v2_url is not None:
        # the client's 10 s default is shorter than a loaded 2-core machine may take to
        # create a body's dozens of measurements on PostgreSQL (CI saw it time out)
        with InfluxDBClientV2(url=v2_url, token="t", org="home",
                               timeout=120_000) as client:
            client.write_api(write_options=SYNCHRONOUS).write(bucket=DB, record=v2_points)
    else:
        body = "\n".join(V2Point.from_dict(p, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
                         .to_line_protocol() for p in v2_points)
        post(url + "/write", {"db": DB}, body)
    old = telegraf_body("pi4", {"dc": "home", "rack": "attic"}, 2000, newer=False)
    new = telegraf_body("pi4", {"site": "Sonnenhof"}, 3000, newer=True)
    post(url + "/write", {"db": DB}, old)
    if v2_url is not None:
        post(v2_url + "/api/v2/write", {"bucket": DB, "org": "home"}, new,
             {"Authorization": "Token t"})
    else:
        post(url + "/write", {"db": DB}, new)


def post(url: str, params: dict[str, str], body: str,
         headers: dict[str, str] | None = None) -> None:
    answer = httpx.post(url, params=params, content=gzip.compress(body.encode()), timeout=120,
                        headers={"Content-Encoding": "gzip", **(headers or {})})
    assert answer.status_code == 204, answer.text


@pytest.fixture(scope="module")
def influxd_corpus(tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[set[Point], dict[tuple[str, str], str]]:
    if not available():
        pytest.skip("influxd (Debian package influxdb) is not installed; `make system-deps`")
    with throwaway_influxdb1(tmp_path_factory.mktemp("influxd")) as server:
        server.create_database(DB)
        write_corpus(server.url, None)
        return influxd_points(server)


def test_the_corpus_is_stored_whole_as_influxd_stores_it(
        store: Store, served: Served,
        influxd_corpus: tuple[set[Point], dict[tuple[str, str], str]]) -> None:
    write_corpus(served.url, served.url)
    listed = [m for m in httpx.get(served.url + "/api/v1/measurements", timeout=30).json()
              if m["inferred"]]
    served.stop()
    expected, expected_types = influxd_corpus
    stored, types, counts = stored_points(store, listed)
    assert counts == {1}                                   # every point stored once
    assert types == expected_types                         # names and types
    assert {p[:2] for p in stored} == {p[:2] for p in expected}   # series
    assert stored == expected                              # every field value at its time
    assert len(expected) == values_sent()                  # and influxd kept them all too


def values_sent() -> int:
    """Field values in the corpus (no two share series, field and time)."""
    ha = sum(len(p["fields"]) for p in [*ha_v1(), *ha_v2()])
    telegraf = sum(2 * len(fields) for newer in (False, True)
                   for _, _, fields in telegraf_metrics("pi4", 0, newer))
    return ha + telegraf
