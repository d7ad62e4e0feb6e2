"""HOMEPOT's registries ``sites`` and ``devices`` (issue 18: "the registries work from CLI,
REST and the dashboard's panel names") on DuckDB and plain PostgreSQL: the health checks add
the rows they name; ``sunarchive registry … site|homepot-device`` and
``/api/v1/registry/{site,homepot-device}`` list, show, add (with HOMEPOT's id), update and
retire them (never delete); bad input (unknown ids and fields, wrong types, references to
unknown or retired sites) is one line, a non-zero exit or a 400/404. Tables of those names that
sunarchive did not make are never written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.support.cli import cli
from tests.support.registry_cli import READ, TOKENS, call, error, refused, registry
from tests.support.serving import Served, serve, stop, wait_serving

pytestmark = pytest.mark.integration

T0_NS = 1_781_000_000 * 10**9
"""2026-06-09: the checks' first second."""
CHECKS = {123: 1, 124: 1, 200: 2}
"""device id → site id, as HOMEPOT's checks name them."""
JOIN = ("SELECT d.name AS device, s.name AS site, COUNT(*) AS checks FROM health_checks h "
        "JOIN devices d ON d.id = h.device_id JOIN sites s ON s.id = d.site_id "
        "GROUP BY d.name, s.name ORDER BY d.name")
"""Checks per named device, in the document's way of joining (docs/upstream/homepot.md)."""


def _checks(folder: Path, devices: dict[int, int], seconds: int = 2) -> Path:
    path = folder / f"checks-{'-'.join(map(str, devices))}.lp"
    path.write_text("".join(
        f"health_checks,device_id={device},site_id={site} cpu_percent={40 + i},"
        f"memory_percent=60,transactions={100 + i},errors=0,latency_ms=12,is_healthy=true "
        f"{T0_NS + i * 10**9}\n" for device, site in devices.items() for i in range(seconds)))
    return path


def _import(args: list[str], folder: Path, devices: dict[int, int]) -> None:
    cli("import", str(_checks(folder, devices)), "--format", "lineprotocol", *args)


@pytest.fixture(params=["duckdb", "postgres"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The CLI flags naming a new store of either engine, holding checks of ``CHECKS``."""
    args = ["--db", str(tmp_path / "homepot.duckdb")] if request.param == "duckdb" else \
        ["--database-url", str(request.getfixturevalue("pg_url"))]
    _import(args, tmp_path, CHECKS)
    return args


# -- CLI ------------------------------------------------------------------------------------
def test_cli_lists_shows_updates_and_retires(store_args: list[str], tmp_path: Path) -> None:
    sites = registry(store_args, "list", "site")
    assert [(s["id"], s["name"], s["retired_at"]) for s in sites] == [(1, None, None),
                                                                      (2, None, None)]
    devices = registry(store_args, "list", "homepot-device")
    assert [(d["id"], d["site_id"]) for d in devices] == sorted(CHECKS.items())
    assert registry(store_args, "list", "device") == [], "Perocube's devices are apart"
    site = registry(store_args, "set", "site", "1", "--name", "Store Berlin", "--location",
                    "Berlin, Germany", "--description", "flagship")
    assert (site["name"], site["location"], site["description"]) == \
        ("Store Berlin", "Berlin, Germany", "flagship")
    assert registry(store_args, "set", "site", "1", "--description", "")["description"] is None
    registry(store_args, "set", "site", "2", "--name", "Store Hamburg")
    till = registry(store_args, "set", "homepot-device", "123", "--name", "till 1",
                    "--device-type", "pos-terminal", "--site", "2")
    assert (till["name"], till["device_type"], till["site_id"]) == ("till 1", "pos-terminal", 2)
    registry(store_args, "set", "homepot-device", "124", "--name", "till 2")
    registry(store_args, "set", "homepot-device", "200", "--name", "kiosk")
    shown = registry(store_args, "show", "homepot-device", "123")
    assert shown == {**till, "retired_at": None}
    table = cli("registry", "show", "site", "1", *store_args).stdout
    assert "Store Berlin" in table and "location" in table
    listing = cli("registry", "list", "homepot-device", *store_args).stdout
    assert "till 1" in listing and "device_type" in listing
    # the document's join reads the names (device 123 now at site 2)
    joined = json.loads(cli("sql", JOIN, "--format", "json", *store_args).stdout)
    assert [(r["device"], r["site"], r["checks"]) for r in joined] == [
        ("kiosk", "Store Hamburg", 2), ("till 1", "Store Hamburg", 2),
        ("till 2", "Store Berlin", 2)]
    # added by hand with HOMEPOT's id; its first checks later keep the row as it is
    assert registry(store_args, "add", "site", "--id", "3", "--name", "Lab")["id"] == 3
    added = registry(store_args, "add", "homepot-device", "--id", "7", "--site", "3",
                     "--name", "test rig")
    assert (added["id"], added["site_id"], added["created_at"]) == (7, 3, added["created_at"])
    _import(store_args, tmp_path, {7: 3, 8: 4})
    assert registry(store_args, "show", "homepot-device", "7") == added
    assert registry(store_args, "show", "homepot-device", "8")["site_id"] == 4
    # retire in the order references allow; nothing is deleted
    assert "site 3 has active devices 7" in refused(store_args, "retire", "site", "3")
    assert registry(store_args, "retire", "homepot-device", "7")["retired_at"]
    assert registry(store_args, "retire", "site", "3")["retired_at"]
    assert [s["id"] for s in registry(store_args, "list", "site")] == [1, 2, 4]
    assert [s["id"] for s in registry(store_args, "list", "site", "--all")] == [1, 2, 3, 4]
    assert registry(store_args, "show", "site", "3")["name"] == "Lab"
    corrected = registry(store_args, "set", "homepot-device", "7", "--description", "moved")
    assert (corrected["description"], bool(corrected["retired_at"])) == ("moved", True)


def test_cli_bad_input_gets_one_line(store_args: list[str]) -> None:
    assert refused(store_args, "set", "homepot-device", "999", "--name", "x").endswith(
        "no homepot-device with id 999")
    assert refused(store_args, "show", "site", "-5").endswith("no site with id -5")
    assert refused(store_args, "retire", "site", "9").endswith("no site with id 9")
    assert "--email: a site has no email; its fields: --name, --location, --description" in \
        refused(store_args, "set", "site", "1", "--email", "a@b")
    assert "--site 'two': expected an id" in refused(
        store_args, "set", "homepot-device", "123", "--site", "two")
    assert "site_id: no site with id 9" in refused(
        store_args, "set", "homepot-device", "123", "--site", "9")
    assert "id: a site is added with its HOMEPOT id" in refused(
        store_args, "add", "site", "--name", "x")
    assert "id: site 1 already exists" in refused(store_args, "add", "site", "--id", "1")
    assert "--id: a project's id is drawn" in refused(
        store_args, "add", "project", "--id", "4", "--name", "x")
    assert "name: must not be empty" in refused(store_args, "set", "site", "1", "--name", " ")
    assert "give at least one field" in refused(store_args, "set", "site", "1")
    assert "expected an integer id, got 'one'" in refused(store_args, "show", "site", "one")
    assert "beyond the ids an INTEGER holds" in refused(
        store_args, "show", "site", "99999999999")
    assert "invalid choice: 'sites'" in refused(store_args, "list", "sites")
    registry(store_args, "set", "homepot-device", "200", "--site", "1")
    registry(store_args, "retire", "site", "2")
    assert "site 2 is already retired" in refused(store_args, "retire", "site", "2")
    assert "site_id: site 2 is retired" in refused(
        store_args, "add", "homepot-device", "--id", "5", "--site", "2")


def test_tables_sunarchive_did_not_make_are_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE devices (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO devices VALUES (1, 'theirs')")
    args = ["--db", str(db)]
    _import(args, tmp_path, CHECKS)
    message = refused(args, "set", "homepot-device", "1", "--name", "mine")
    assert "tables sites and devices were not made by sunarchive" in message
    assert "not made by sunarchive" in refused(args, "list", "site")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT * FROM devices").fetchall() == [(1, "theirs")]


# -- REST -----------------------------------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``sunarchive serve`` with read and write tokens on a store of either engine holding
    checks of ``CHECKS``."""
    extra = [] if request.param == "duckdb" else \
        ["--database-url", str(request.getfixturevalue("pg_url"))]
    db = tmp_path / "homepot.duckdb"
    _import(extra or ["--db", str(db)], tmp_path, CHECKS)
    served = serve(db, *extra, env=TOKENS)
    try:
        yield served
    finally:
        stop(served)


def test_rest_lists_shows_adds_updates_and_retires(api: Served) -> None:
    listed = call(api, "GET", "/api/v1/registry/homepot-device", READ)
    assert listed.status_code == 200
    assert [(d["id"], d["site_id"], d["name"]) for d in listed.json()] == [
        (123, 1, None), (124, 1, None), (200, 2, None)]
    patched = call(api, "PATCH", "/api/v1/registry/site/1",
                   body={"name": "Store Berlin", "location": "Berlin"})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["location"]) == ("Store Berlin", "Berlin")
    device = call(api, "PATCH", "/api/v1/registry/homepot-device/124",
                  body={"name": "till 2", "device_type": "pos", "site_id": 2})
    assert (device.json()["name"], device.json()["site_id"]) == ("till 2", 2)
    # the dashboard's names: the series of device 124 (tags as the checks gave them)
    names = call(api, "GET", "/api/v1/series/names", READ, measurement="health_checks")
    assert names.json() == {"measurement": "health_checks", "tag": "device_id", "names": [
        {"tags": {"device_id": "124", "site_id": "1"}, "name": "till 2",
         "registry": "devices", "id": "124"}]}
    assert call(api, "GET", "/api/v1/series/names", READ,
                measurement="ps100_readings").json()["names"] == []
    assert call(api, "GET", "/api/v1/registry/site/1", READ).json()["name"] == "Store Berlin"
    added = call(api, "POST", "/api/v1/registry/site", body={"id": 0, "name": "spare"})
    assert added.status_code == 201 and added.json()["id"] == 0
    # tokens: reads with the read token, writes only with the write token
    assert call(api, "PATCH", "/api/v1/registry/site/1", READ,
                {"name": "x"}).status_code == 401
    assert call(api, "GET", "/api/v1/registry/site", {}).status_code == 401
    # retire, never delete
    assert call(api, "DELETE", "/api/v1/registry/site/0").status_code == 405
    retired = call(api, "POST", "/api/v1/registry/site/0/retire")
    assert retired.status_code == 200 and retired.json()["retired_at"]
    assert [s["id"] for s in call(api, "GET", "/api/v1/registry/site", READ).json()] == [1, 2]
    every = call(api, "GET", "/api/v1/registry/site", READ, include_retired="true")
    assert [s["id"] for s in every.json()] == [0, 1, 2]
    # a CLI on the same DuckDB file goes through the server while it holds the file
    if "--database-url" not in str(api.process.args):
        result = cli("registry", "set", "homepot-device", "200", "--name", "via server",
                     "--db", str(api.db), "--json", env=TOKENS, cwd=api.db.parent)
        assert json.loads(result.stdout)["name"] == "via server"
        shown = cli("registry", "show", "homepot-device", "200", "--db", str(api.db),
                    "--json", env=TOKENS, cwd=api.db.parent)
        assert json.loads(shown.stdout)["name"] == "via server"
        assert "no site with id 9 (from the running instance" in cli(
            "registry", "retire", "site", "9", "--db", str(api.db), env=TOKENS,
            cwd=api.db.parent, check=False).stderr


def test_rest_bad_input(api: Served) -> None:
    assert error(call(api, "GET", "/api/v1/registry/homepot-device/9", READ), 404) == \
        "no homepot-device with id 9"
    assert error(call(api, "PATCH", "/api/v1/registry/site/9", body={"name": "x"}), 404) == \
        "no site with id 9"
    assert error(call(api, "POST", "/api/v1/registry/homepot-device/9/retire"), 404) == \
        "no homepot-device with id 9"
    assert "site has no field 'colour'" in error(call(
        api, "PATCH", "/api/v1/registry/site/1", body={"colour": "red"}), 400)
    assert "site has no field 'id'" in error(call(
        api, "PATCH", "/api/v1/registry/site/1", body={"id": 5}), 400)
    assert "location: expected text" in error(call(
        api, "PATCH", "/api/v1/registry/site/1", body={"location": 5}), 400)
    assert "site_id: expected an integer" in error(call(
        api, "PATCH", "/api/v1/registry/homepot-device/123", body={"site_id": "1"}), 400)
    assert error(call(api, "PATCH", "/api/v1/registry/homepot-device/123",
                      body={"site_id": 8}), 400) == "site_id: no site with id 8"
    assert "id: a homepot-device is added with its HOMEPOT id" in error(call(
        api, "POST", "/api/v1/registry/homepot-device", body={"name": "x"}), 400)
    assert "id: expected an integer" in error(call(
        api, "POST", "/api/v1/registry/site", body={"id": 1.5}), 400)
    assert "id: homepot-device 123 already exists" in error(call(
        api, "POST", "/api/v1/registry/homepot-device", body={"id": 123}), 400)
    assert "site 2 has active devices 200" in error(
        call(api, "POST", "/api/v1/registry/site/2/retire"), 400)
    assert call(api, "GET", "/api/v1/registry/site/abc", READ).status_code == 400


# -- reads beside a running writer ----------------------------------------------------------
def test_registry_reads_never_use_the_writers_connection(tmp_path: Path) -> None:
    """Registry and name reads from API threads while a demo writes every second: none may
    run on the writer's DuckDB connection (it refuses a second caller: "connection is busy",
    and the writer's own task fails)."""
    import subprocess
    import sys
    import threading
    import time

    import httpx

    from tests.support.cli import clean_env
    from tests.support.ports import free_port

    port = free_port()
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sunarchive", "demo", "--db", str(tmp_path / "d.duckdb"),
             "--http-port", str(port), "--no-console", "--panels", "3", "--duration", "120"],
            cwd=tmp_path, env=clean_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    try:
        wait_serving(url, process, log_path)
        paths = ["/api/v1/registry/project", "/api/v1/registry/site",
                 "/api/v1/registry/homepot-device/1",
                 "/api/v1/series/names?measurement=ps100_readings",
                 "/api/v1/series/names?measurement=health_checks", "/api/v1/panels"]
        stop_at = time.monotonic() + 15

        def hammer(path: str) -> None:
            with httpx.Client(timeout=30) as client:
                while time.monotonic() < stop_at:
                    status = client.get(url + path).status_code
                    if status not in (200, 404):
                        failures.append(f"{path}: {status}")

        threads = [threading.Thread(target=hammer, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.terminate()
        process.wait(60)
    text = log_path.read_text()
    assert failures == []
    assert "connection is busy" not in text and "failed" not in text, text
