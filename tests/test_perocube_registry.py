"""The Perocube registries (issue 18, point 4) on DuckDB and plain PostgreSQL: create, list,
update and retire through the CLI and the REST API of a real server; bad input (unknown kinds
and ids, references to unknown or retired rows, retiring a row active rows refer to) answered
with one line naming the field; nothing deleted. The lab endpoints filter measurements by the
registry's devices, and the plain-named view ``mpp_measurement`` reads the imported rows; a
store of schema step 4 gets the tables (step 6) with its rows unchanged.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sunarchive.profiles import load_profiles
from sunarchive.storage import migrations
from sunarchive.storage.open import StoreOptions, open_store
from tests.support.cli import cli
from tests.support.registry_cli import call, error
from tests.support.serving import Served, serve, stop

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
TOKENS = {"SUNARCHIVE_HTTP_READ_TOKENS": '["reader-1"]',
          "SUNARCHIVE_HTTP_WRITE_TOKENS": '["writer-1"]'}
READ = {"Authorization": "Bearer reader-1"}
WRITE = {"Authorization": "Bearer writer-1"}
SPAN = {"start_time": "2024-03-01T00:00:00+00:00", "end_time": "2024-03-02T00:00:00+00:00",
        "tier": "1s"}


@pytest.fixture(params=["duckdb", "postgres"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The CLI flags naming a new store of either engine."""
    if request.param == "duckdb":
        return ["--db", str(tmp_path / "lab.duckdb")]
    return ["--database-url", str(request.getfixturevalue("pg_url"))]


def registry(args: list[str], *command: str, check: bool = True) -> Any:
    """``sunarchive registry … --json``: the JSON it prints."""
    result = cli("registry", *command, *args, "--json", check=check)
    return json.loads(result.stdout) if result.returncode == 0 else result


def refused(args: list[str], *command: str) -> str:
    """The one error line a refused ``registry`` command prints (exit 2, no traceback; on
    plain PostgreSQL every open also logs that TimescaleDB is missing)."""
    result = cli("registry", *command, *args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines()
             if "TimescaleDB is not available" not in line]
    assert len(lines) == 1 and lines[0].startswith("sunarchive: error: "), result.stderr
    return lines[0]


# -- CLI ------------------------------------------------------------------------------------
def test_cli_creates_lists_updates_and_retires(store_args: list[str]) -> None:
    project = registry(store_args, "add", "project", "--name", "Tandem 2026",
                       "--description", "perovskite on silicon")
    assert (project["id"], project["retired_at"]) == (1, None) and project["created_at"]
    device = registry(store_args, "add", "device", "--name", "cell A", "--project", "1",
                      "--area-cm2", "1.05", "--board", "1", "--channel", "3")
    assert (device["project_id"], device["area_cm2"], device["channel"]) == (1, 1.05, 3)
    registry(store_args, "add", "device", "--name", "cell B", "--project", "1")
    scientist = registry(store_args, "add", "scientist", "--name", "Ada", "--email", "ada@lab")
    experiment = registry(store_args, "add", "experiment", "--name", "light soak",
                          "--scientist", str(scientist["id"]), "--device", "1", "2")
    assert experiment["device_ids"] == [1, 2]
    changed = registry(store_args, "set", "experiment", "1", "--device", "2",
                       "--description", "85 °C")
    assert (changed["device_ids"], changed["description"]) == ([2], "85 °C")
    cleared = registry(store_args, "set", "project", "1", "--description", "")
    assert (cleared["name"], cleared["description"]) == ("Tandem 2026", None)
    names = [r["name"] for r in registry(store_args, "list", "device")]
    assert names == ["cell A", "cell B"]
    table = cli("registry", "list", "experiment", *store_args).stdout
    assert "light soak" in table and "device_ids" in table
    # retire in the order references allow; every row stays
    assert "has active experiments 1" in refused(store_args, "retire", "device", "2")
    assert registry(store_args, "retire", "device", "1")["retired_at"]
    assert registry(store_args, "retire", "experiment", "1")["retired_at"]
    registry(store_args, "retire", "device", "2")
    registry(store_args, "retire", "project", "1")
    assert registry(store_args, "list", "device") == []
    assert [r["id"] for r in registry(store_args, "list", "device", "--all")] == [1, 2]


def test_cli_bad_input_gets_one_line(store_args: list[str]) -> None:
    registry(store_args, "add", "project", "--name", "P")
    registry(store_args, "add", "scientist", "--name", "S")
    assert refused(store_args, "set", "device", "7", "--name", "x").endswith(
        "no device with id 7")
    assert refused(store_args, "retire", "scientist", "9").endswith("no scientist with id 9")
    assert "project_id: no project with id 5" in refused(
        store_args, "add", "device", "--name", "x", "--project", "5")
    assert "device_ids: no device with id 4" in refused(
        store_args, "add", "experiment", "--name", "x", "--scientist", "1", "--device", "4")
    assert "--email: a device has no email" in refused(
        store_args, "add", "device", "--name", "x", "--email", "a@b")
    assert "name: a project needs a name" in refused(store_args, "add", "project")
    assert "name: must not be empty" in refused(store_args, "set", "project", "1", "--name", "")
    assert "--board 'two': expected an integer" in refused(
        store_args, "add", "device", "--name", "x", "--board", "two")
    registry(store_args, "retire", "project", "1")
    assert "project 1 is already retired" in refused(store_args, "retire", "project", "1")
    assert "project_id: project 1 is retired" in refused(
        store_args, "add", "device", "--name", "x", "--project", "1")
    registry(store_args, "retire", "scientist", "1")
    assert "scientist_id: scientist 1 is retired" in refused(
        store_args, "add", "experiment", "--name", "x", "--scientist", "1")


# -- REST -----------------------------------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``sunarchive serve`` with read and write tokens on a new store of either engine."""
    extra = [] if request.param == "duckdb" else \
        ["--database-url", str(request.getfixturevalue("pg_url"))]
    served = serve(tmp_path / "lab.duckdb", *extra, env=TOKENS)
    try:
        yield served
    finally:
        stop(served)


def test_rest_creates_lists_updates_and_retires(api: Served) -> None:
    add = call(api, "POST", "/api/v1/registry/project", body={"name": "Tandem"})
    assert add.status_code == 201 and add.json()["id"] == 1
    assert call(api, "POST", "/api/v1/registry/device", body={
        "name": "cell A", "project_id": 1, "board": 1, "channel": 2}).status_code == 201
    assert call(api, "POST", "/api/v1/registry/scientist", body={"name": "Ada"}).json()["id"] == 1
    experiment = call(api, "POST", "/api/v1/registry/experiment",
                      body={"name": "soak", "scientist_id": 1, "device_ids": [1]}).json()
    assert experiment["device_ids"] == [1]
    patched = call(api, "PATCH", "/api/v1/registry/device/1",
                   body={"architecture": "perovskite/Si", "area_cm2": 0.5})
    assert patched.status_code == 200
    assert (patched.json()["architecture"], patched.json()["area_cm2"]) == ("perovskite/Si", 0.5)
    listed = call(api, "GET", "/api/v1/registry/device", READ)
    assert [r["name"] for r in listed.json()] == ["cell A"]
    assert call(api, "GET", "/api/v1/registry/experiment/1", READ).json()["device_ids"] == [1]
    # tokens: reads with the read token, writes only with the write token
    assert call(api, "POST", "/api/v1/registry/project", READ, {"name": "x"}).status_code == 401
    assert call(api, "GET", "/api/v1/registry/project", {}).status_code == 401
    # retire, never delete
    assert call(api, "DELETE", "/api/v1/registry/project/1").status_code == 405
    retired = call(api, "POST", "/api/v1/registry/experiment/1/retire")
    assert retired.status_code == 200 and retired.json()["retired_at"]
    assert call(api, "GET", "/api/v1/registry/experiment", READ).json() == []
    every = call(api, "GET", "/api/v1/registry/experiment", READ, include_retired="true")
    assert [r["id"] for r in every.json()] == [1]
    # a CLI on the same DuckDB file goes through the server while it holds the file
    if "--database-url" not in str(api.process.args):
        result = cli("registry", "add", "project", "--name", "via server", "--db",
                     str(api.db), "--json", env=TOKENS, cwd=api.db.parent)
        assert json.loads(result.stdout)["id"] == 2
        assert "no project with id 9 (from the running instance" in cli(
            "registry", "retire", "project", "9", "--db", str(api.db), env=TOKENS,
            cwd=api.db.parent, check=False).stderr


def test_rest_bad_input(api: Served) -> None:
    call(api, "POST", "/api/v1/registry/project", body={"name": "P"})
    call(api, "POST", "/api/v1/registry/device", body={"name": "D", "project_id": 1})
    assert "unknown registry kind 'robot'" in error(
        call(api, "GET", "/api/v1/registry/robot", READ), 404)
    assert error(call(api, "GET", "/api/v1/registry/device/9", READ), 404) == \
        "no device with id 9"
    assert error(call(api, "PATCH", "/api/v1/registry/project/9", body={"name": "x"}),
                 404) == "no project with id 9"
    assert error(call(api, "POST", "/api/v1/registry/scientist/3/retire"), 404) == \
        "no scientist with id 3"
    assert error(call(api, "POST", "/api/v1/registry/device",
                      body={"name": "x", "project_id": 8}), 400) == \
        "project_id: no project with id 8"
    assert "device has no field 'colour'" in error(call(
        api, "POST", "/api/v1/registry/device", body={"name": "x", "colour": "red"}), 400)
    assert "board: expected an integer" in error(call(
        api, "PATCH", "/api/v1/registry/device/1", body={"board": "one"}), 400)
    assert "device_ids: expected a list" in error(call(
        api, "POST", "/api/v1/registry/experiment", body={"name": "x", "device_ids": 1}), 400)
    assert "project 1 has active devices 1" in error(
        call(api, "POST", "/api/v1/registry/project/1/retire"), 400)
    call(api, "POST", "/api/v1/registry/device/1/retire")
    assert "device_ids: device 1 is retired" in error(call(
        api, "POST", "/api/v1/registry/experiment", body={"name": "x", "device_ids": [1]}),
        400)
    call(api, "POST", "/api/v1/registry/project/1/retire")
    assert "project_id: project 1 is retired" in error(call(
        api, "PATCH", "/api/v1/registry/device/1", body={"project_id": 1}), 400)
    assert call(api, "PATCH", "/api/v1/registry/device/1",
                body={"description": "kept as a record"}).status_code == 200


# -- the lab endpoints filter by the registry -----------------------------------------------
JOIN = ("SELECT p.name AS project, COUNT(*) AS seconds FROM mpp_measurement m JOIN "
        "solar_cell_device d ON m.device_id = d.id JOIN project p ON p.id = "
        "d.project_id GROUP BY p.name ORDER BY p.name")
"""The measurements per project in user SQL (docs/upstream/perocube.md)."""


def _lab_files(folder: Path, device: int) -> None:
    """Three seconds of MPP samples of one device (values differ per device)."""
    folder.mkdir()
    (folder / "mpp.txt").write_text("Timestamp\tCurrent\tVoltage\n" + "".join(
        f"01/03/2024 12:00:0{i}\t0.{device}\t0.5{i}\n" for i in range(3)))


def test_measurements_filter_by_device_experiment_project_and_scientist(
        store_args: list[str], tmp_path: Path) -> None:
    for device in (1, 2, 3):
        _lab_files(tmp_path / f"d{device}", device)
        cli("import", "--data-dir", str(tmp_path / f"d{device}"), "--data-type", "mpp",
            "--board", "1", "--channel", str(device), "--tag", f"device_id={device}",
            "--timezone", "UTC", *store_args)
    plain = json.loads(cli("sql", "SELECT time, device_id, board, channel, voltage, current, "
                           "power FROM mpp_measurement WHERE device_id = 2 ORDER BY time",
                           "--format", "json", *store_args).stdout)
    assert [(r["channel"], r["voltage"], r["current"]) for r in plain] == [
        (2, 0.5, 0.2), (2, 0.51, 0.2), (2, 0.52, 0.2)]
    assert plain[1]["power"] == pytest.approx(0.102)
    for name in ("P1", "P2"):
        registry(store_args, "add", "project", "--name", name)
    for name, project in (("d1", "1"), ("d2", "1"), ("d3", "2")):
        registry(store_args, "add", "device", "--name", name, "--project", project)
    for name in ("Ada", "Bo"):
        registry(store_args, "add", "scientist", "--name", name)
    registry(store_args, "add", "experiment", "--name", "e1", "--scientist", "1",
             "--device", "2", "3")
    registry(store_args, "add", "experiment", "--name", "e2", "--scientist", "2",
             "--device", "1")
    registry(store_args, "retire", "experiment", "2")
    registry(store_args, "retire", "device", "1")    # retired: its measurements stay
    joined = json.loads(cli("sql", JOIN, "--format", "json", *store_args).stdout)
    assert [(r["project"], r["seconds"]) for r in joined] == [("P1", 6), ("P2", 3)]
    db = tmp_path / "served.duckdb" if store_args[0] == "--database-url" else Path(store_args[1])
    served = serve(db, *(store_args if store_args[0] == "--database-url" else []))
    try:
        def devices(**filters: Any) -> list[str]:
            response = httpx.get(served.url + "/measurements/mpp", timeout=30,
                                 params={**SPAN, **filters})
            assert response.status_code == 200, response.text
            body = response.json()
            column = body["columns"].index("device_id")
            return sorted({row[column] for row in body["rows"]})

        assert devices() == ["1", "2", "3"]
        assert devices(device_id=1) == ["1"]
        assert devices(project_id=1) == ["1", "2"]
        assert devices(experiment_id=1) == ["2", "3"]
        assert devices(scientist_id=2) == ["1"]
        assert devices(project_id=1, experiment_id=1) == ["2"]
        assert devices(project_id=2, scientist_id=2) == []
        assert devices(project_id=1, tag="device_id=2") == ["2"]
        stats = httpx.get(served.url + "/statistics/mpp", timeout=30,
                          params={**SPAN, "project_id": 1}).json()["fields"]
        assert stats["current"]["count"] == 6
        assert stats["current"]["mean"] == pytest.approx(0.15)
        for path, key in (("/measurements/mpp", "scientist_id"),
                          ("/statistics/mpp", "experiment_id"),
                          ("/measurements/mpp", "device_id")):
            response = httpx.get(served.url + path, params={**SPAN, key: 9}, timeout=30)
            kind = key.removesuffix("_id")
            assert error(response, 404) == f"no {kind} with id 9"
    finally:
        stop(served)


# -- migration ------------------------------------------------------------------------------
def _step_4_store(url: str) -> None:
    """The release demo store of tests/data migrated by steps 1 to 4 only."""
    options = StoreOptions(profiles=load_profiles(), timezone="Europe/Berlin")
    store = open_store(url, options, setup=False)
    try:
        migrations.migrate(store._schema(), migrations.STEPS[:4])
        assert store.schema_version() == 4
    finally:
        store.close()


def test_a_store_of_step_4_gets_the_registries_with_its_rows_unchanged(
        tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    with gzip.open(DATA / "store_v1_duckdb_demo.duckdb.gz") as src, db.open("wb") as out:
        shutil.copyfileobj(src, out)
    _step_4_store(f"duckdb:///{db}")
    count = "SELECT COUNT(*) AS n, SUM(power_avg) AS w FROM ps100_readings_1s"
    before = cli("sql", count, "--db", str(db), "--format", "json").stdout
    listing = cli("registry", "list", "project", "--db", str(db), check=False)
    assert listing.returncode == 2 and "no registry tables yet" in listing.stderr
    assert registry(["--db", str(db)], "add", "project", "--name", "P")["id"] == 1
    assert cli("sql", count, "--db", str(db), "--format", "json").stdout == before
    versions = cli("sql", f"SELECT version FROM {migrations.CHANGES_TABLE} ORDER BY version",
                   "--db", str(db), "--format", "csv").stdout.split()
    assert versions == ["version", *(str(s.version) for s in migrations.STEPS)]
    assert "6" in versions


def test_registries_and_lab_views_on_timescaledb(pglite_url: str) -> None:
    """TimescaleDB (PGlite): step 6 makes the registries beside the hypertables, and
    ``mpp_measurement`` is a hypertable of its own, as the lab's document has it, derived
    from ``mpp_measurement_1s`` by every write."""
    import numpy as np
    import psycopg

    from sunarchive.storage.postgres import view_tables
    from sunarchive.storage.postgres.store import PostgresStore
    from sunarchive.storage.postgres.user_sql import ReaderRole
    from tests.support.pglite_server import drop_schema, fresh_schema

    name = fresh_schema(pglite_url)
    try:
        mpp = load_profiles()["mpp_measurement"]
        store = PostgresStore(pglite_url, {mpp.name: mpp}, timezone="UTC",
                              reader=ReaderRole(as_owner=True))
        try:
            store.setup()
            assert store.layout == "timescaledb"
        finally:
            store.close()
        with psycopg.connect(pglite_url, autocommit=True) as con:
            con.execute(f'SET search_path TO "{name}", public')
            con.execute("INSERT INTO project (name) VALUES ('P')")
            con.execute("INSERT INTO solar_cell_device (name, project_id) VALUES ('d', 1)")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                con.execute("INSERT INTO solar_cell_device (name, project_id) VALUES ('x', 9)")
            con.execute("INSERT INTO mpp_measurement_1s (time, series_id, device_id, board, "
                        "channel, sample_count, voltage_avg, current_avg, power_avg) VALUES "
                        "('2024-03-01T12:00:00Z', 1, '1', '1', '2', 1, 0.5, 0.1, 0.05)")
            with con.transaction():   # the write's step (PGlite has no COPY for store.write)
                view_tables.sync(con, mpp, [np.array([1709294400])])
            rows = con.execute(
                "SELECT d.name, m.voltage, m.power FROM mpp_measurement m JOIN "
                "solar_cell_device d ON m.device_id = d.id").fetchall()
            assert rows == [("d", 0.5, 0.05)]
            kinds: dict[str, str] = dict(con.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE "
                "table_schema = %s AND table_name IN ('mpp_measurement', 'experiment_device')",
                [name]).fetchall())
            assert kinds == {"mpp_measurement": "BASE TABLE", "experiment_device": "BASE TABLE"}
            hypertables = con.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE "
                "hypertable_schema = %s AND hypertable_name LIKE '%%measurement' ORDER BY 1",
                [name]).fetchall()
            assert hypertables == [("mpp_measurement",)]
    finally:
        drop_schema(pglite_url, name)
