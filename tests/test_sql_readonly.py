"""Reads cannot write (invariant 11; issue 14): every attack on user SQL — `sunarchive sql`,
``POST /api/v1/sql`` — against a DuckDB store and a plain PostgreSQL store. Each is refused
with one line naming the statement problem, and afterwards the tables, their rows, the
writer's settings and its connection are as before, and nothing of a file or the environment
shows in any answer. Also: the time and row limits, DECIMAL / BLOB / numeric in JSON, the
PostgreSQL reader role, request body limits (413) and the real CLI (exit 2, no traceback).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sunarchive.api.rest import json_response, table_json
from sunarchive.model import ConfigError, SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.open import SqlStore
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.storage.postgres.user_sql import ReaderRole
from sunarchive.storage.user_sql import SqlLimits, UserSqlError
from tests.support.cli import clean_env, cli
from tests.support.pg_server import drop_database, fresh_database
from tests.support.stats_rows import stats_rows

pytestmark = pytest.mark.integration

PS100 = "ps100_readings"
START_S = 1_780_000_000
HOURLY_ROWS = 6
"""Rows of ``ps100_readings_1hour`` after :func:`_fill`: 2 panels × (2 closed hours and the
open one: 20:26:40–22:26:40 UTC)."""
LIMITS = SqlLimits(timeout_s=1.0, max_rows=50)
READ_TOKEN, WRITE_TOKEN = "read-token-7f3a", "write-canary-5be1c0de"
CANARY = "influx-canary-9d2e77"
LEAKS = ("root:x:0:0", "root:", "PATH=", "HOME=", WRITE_TOKEN, CANARY)
PWNED = Path(tempfile.gettempdir()) / f"sunarchive-pwned-{uuid.uuid4().hex}"
"""A file a command or COPY would create if an attack got through (any user may write /tmp)."""

COMMON_ATTACKS = [
    "COMMIT; DROP TABLE ps100_readings_1hour",
    "END; DROP TABLE ps100_readings_1hour",
    "ROLLBACK; DROP TABLE ps100_readings_1hour",
    "ABORT; CREATE TABLE evil (a INTEGER)",
    "SELECT 1; DROP TABLE ps100_readings_1hour",
    "DROP TABLE ps100_readings_1hour",
    "DELETE FROM ps100_readings_1s",
    "UPDATE ps100_readings_1s SET power_avg = 0",
    "INSERT INTO ps100_readings_1s (time, series_id) VALUES (NOW(), 99)",
    "CREATE TABLE evil (a INTEGER)",
    "ALTER TABLE ps100_readings_1s ADD COLUMN evil INTEGER",
    f"COPY ps100_readings_1s TO '{PWNED}'",
    "SET memory_limit = '1GB'",
    "SET statement_timeout = 0",
    "RESET ALL",
    "CHECKPOINT",
    "VACUUM",
    "SELECT * INTO evil FROM ps100_readings_1s",
]
DUCKDB_ATTACKS = [
    f"EXPORT DATABASE '{PWNED}'",
    f"ATTACH '{PWNED}' AS evil",
    "DETACH ps100",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('/root/*')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM read_csv('https://example.com/data.csv')",
    "SET enable_external_access = false",
    "SET lock_configuration = false",
    "SET threads = 1",
    "PRAGMA memory_limit = '1GB'",
    "CALL checkpoint()",
    "FORCE CHECKPOINT",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE SECRET evil (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM query('DROP TABLE ps100_readings_1hour')",
    "SELECT * FROM force_checkpoint()",
    "SELECT * FROM checkpoint()",
    "FROM CheckPoint()",
    "SELECT * FROM system.main.checkpoint('ps100')",
    "SELECT (SELECT count(*) FROM checkpoint()) AS n",
    "SELECT * FROM ps100_readings_1hour, LATERAL (SELECT * FROM checkpoint()) c",
    "SELECT * FROM query('SELECT * FROM checkpoint()')",
    "SELECT * FROM query_table('ps100_readings_1hour')",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql("
    "'SELECT * FROM checkpoint()'))",
    "SELECT * FROM truncate_duckdb_logs()",
    "SELECT * FROM enable_logging()",
    "SELECT * FROM deregister_external_resource('x')",
]
POSTGRES_ATTACKS = [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_file('/proc/self/environ')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('/root')",
    "SELECT lo_import('/etc/passwd')",
    f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
    f"SELECT lo_export(lo_from_bytea(0, 'x'), '{PWNED}')",
    "SELECT pg_terminate_backend({writer_pid})",
    "SELECT pg_cancel_backend({writer_pid})",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "ALTER ROLE sunarchive_reader SUPERUSER",
    "GRANT pg_read_server_files TO sunarchive_reader",
    "CREATE EXTENSION dblink",
    "WITH gone AS (DELETE FROM ps100_readings_1s RETURNING 1) SELECT count(*) FROM gone",
    "SELECT * FROM ps100_readings_1s FOR UPDATE",
    "DO $$ BEGIN EXECUTE 'DROP TABLE ps100_readings_1hour'; END $$",
    "PREPARE evil AS DELETE FROM ps100_readings_1s",
    "LISTEN evil",
    "SELECT current_setting('data_directory')",
]
SLEEPS = {"duckdb": "SELECT count(*) FROM range(1000000000000) a",
          "postgres": "SELECT pg_sleep(1000)"}


# -- stores ----------------------------------------------------------------------------------
def _open(engine: str, request: pytest.FixtureRequest, folder: Path,
          limits: SqlLimits = LIMITS, reader: ReaderRole | None = None,
          pg_url: str | None = None) -> SqlStore:
    profiles = {PS100: load_profiles(None)[PS100]}
    if engine == "duckdb":
        return DuckDBStore(folder / "store.duckdb", profiles, sql_limits=limits)
    return PostgresStore(pg_url or request.getfixturevalue("pg_url"), profiles,
                         sql_limits=limits, reader=reader)


def _fill(store: SqlStore) -> SqlStore:
    """Schema, two series, two hours of 1 s rows and their rollups."""
    store.setup()
    tags: dict[int, tuple[str, ...]] = {i: (f"panel_{i}",) for i in (1, 2)}
    for i, key in tags.items():
        store.add_series(SeriesKey(PS100, key), i)
    assert store.write(stats_rows(PS100, START_S, 7200, 2), StatsRows.empty(PS100), tags,
                       batch_id=1)
    store.rollup(PS100, START_S + 7200)
    return store


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    opened = _fill(_open(request.param, request, tmp_path))
    yield opened
    opened.close()


@pytest.fixture
def pg_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PostgresStore]:
    opened = _fill(_open("postgres", request, tmp_path))
    assert isinstance(opened, PostgresStore)
    yield opened
    opened.close()


def _writer_pid(store: SqlStore) -> int:
    if isinstance(store, PostgresStore):
        return int(store._fetch("SELECT pg_backend_pid()")[0][0])
    return 0


def snapshot(store: SqlStore) -> dict[str, Any]:
    """Tables with their row counts, the writer connection's settings (and on PostgreSQL
    its backend and the roles)."""
    names = [str(r[0]) for r in store.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN "
        "('pg_catalog', 'information_schema') ORDER BY table_name").rows()]
    counts = {n: store.sql(f'SELECT COUNT(*) FROM "{n}"').rows()[0][0] for n in names}
    if isinstance(store, PostgresStore):
        settings = store._fetch("SELECT name, setting FROM pg_settings ORDER BY name")
        roles = store._fetch("SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, "
                             "ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b "
                             "ON b.oid = m.roleid WHERE m.member = r.oid) FROM pg_roles r "
                             "ORDER BY rolname")
        return {"counts": counts, "settings": settings, "roles": roles,
                "writer_pid": _writer_pid(store)}
    assert isinstance(store, DuckDBStore)
    settings = store._fetch("SELECT name, value FROM duckdb_settings() ORDER BY name")
    return {"counts": counts, "settings": settings}


def _attacks(store: SqlStore) -> list[str]:
    extra = POSTGRES_ATTACKS if isinstance(store, PostgresStore) else DUCKDB_ATTACKS
    pid = _writer_pid(store)
    return [a.replace("{writer_pid}", str(pid)) for a in COMMON_ATTACKS + extra]


def assert_refused_cleanly(message: str, attack: str) -> None:
    assert message.startswith("SQL "), (attack, message)
    assert "\n" not in message and "Traceback" not in message, (attack, message)
    for leak in LEAKS:
        assert leak not in message, (attack, message)


# -- the attacks -----------------------------------------------------------------------------
def test_every_attack_is_refused_and_changes_nothing(store: SqlStore) -> None:
    before = snapshot(store)
    assert before["counts"]["ps100_readings_1hour"] == HOURLY_ROWS
    got_through = []
    for attack in _attacks(store):
        try:
            result = store.read_sql(attack)
        except UserSqlError as exc:
            assert_refused_cleanly(str(exc), attack)
            continue
        got_through.append(f"{attack!r} -> {result.rows()[:3]}")
    assert not got_through, "\n".join(got_through)
    assert snapshot(store) == before
    assert not PWNED.exists()
    # the writer still writes (a killed or misconfigured connection would fail here)
    tags: dict[int, tuple[str, ...]] = {i: (f"panel_{i}",) for i in (1, 2)}
    assert store.write(stats_rows(PS100, START_S + 7200, 10, 2), StatsRows.empty(PS100), tags,
                       batch_id=2)
    assert store.sql("SELECT COUNT(*) FROM ps100_readings_1s").rows() == [(2 * 7210,)]


def test_text_no_engine_should_see_is_refused(store: SqlStore) -> None:
    for text, named in (("", "empty"), (" \n\t", "empty"), ("SELECT 1\0", "NUL"),
                        ("SELECT '\ud800'", "Unicode at character 9")):
        with pytest.raises(UserSqlError, match=named):
            store.read_sql(text)


def test_the_kinds_of_read_still_work(store: SqlStore) -> None:
    reads = {
        "SELECT COUNT(*) AS n FROM ps100_readings_1hour": [(HOURLY_ROWS,)],
        "WITH h AS (SELECT * FROM ps100_readings_1hour) SELECT COUNT(*) AS n FROM h":
            [(HOURLY_ROWS,)],
        "VALUES (1), (2)": [(1,), (2,)],
        "SELECT panel_id FROM ps100_readings_1hour ORDER BY time, panel_id LIMIT 2;":
            [("panel_1",), ("panel_2",)],
        "SELECT 'it''s; not -- two statements' AS s": [("it's; not -- two statements",)],
    }
    for statement, rows in reads.items():
        assert store.read_sql(statement).rows() == rows, statement
    assert store.read_sql("TABLE ps100_readings_1hour").table.num_rows == HOURLY_ROWS


def test_duckdb_reads_cannot_checkpoint(tmp_path: Path, request: pytest.FixtureRequest
                                        ) -> None:
    """``checkpoint()`` is a table function: it passed as a SELECT and, even in a READ ONLY
    transaction, wrote the WAL into the file. No table function that is not a pure read runs,
    however it is reached."""
    store = _fill(_open("duckdb", request, tmp_path))
    try:
        assert isinstance(store, DuckDBStore)
        tags: dict[int, tuple[str, ...]] = {i: (f"panel_{i}",) for i in (1, 2)}
        assert store.write(stats_rows(PS100, START_S + 7200, 600, 2), StatsRows.empty(PS100), tags,
                           batch_id=2)
        wal = Path(f"{store.path}.wal")
        assert wal.exists() and wal.stat().st_size > 0
        size = wal.stat().st_size
        for attack in [a for a in DUCKDB_ATTACKS if "checkpoint" in a.lower()]:
            with pytest.raises(UserSqlError) as refused:
                store.read_sql(attack)
            assert_refused_cleanly(str(refused.value), attack)
            assert wal.exists() and wal.stat().st_size == size, attack
    finally:
        store.close()


def test_duckdb_catalog_and_generator_reads_still_work(tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    store = _fill(_open("duckdb", request, tmp_path))
    try:
        reads = {
            "SELECT count(*) AS n FROM generate_series(1, 3)": [(3,)],
            "SELECT count(*) AS n FROM range(5)": [(5,)],
            "SELECT unnest([1, 2]) AS u": [(1,), (2,)],
            "SELECT count(*) AS n FROM (SELECT * FROM duckdb_tables() "
            "WHERE table_name = 'ps100_readings_1s')": [(1,)],
            "SELECT count(*) AS n FROM (SELECT * FROM duckdb_views() "
            "WHERE view_name = 'ps100_readings_1hour')": [(1,)],
            "SELECT count(*) AS n FROM information_schema.columns "
            "WHERE table_name = 'ps100_readings_1hour' AND column_name = 'panel_id'": [(1,)],
        }
        for statement, rows in reads.items():
            assert store.read_sql(statement).rows() == rows, statement
        for statement in ("SHOW TABLES", "DESCRIBE ps100_readings_1hour",
                          "SUMMARIZE ps100_readings_1hour",
                          "SELECT * FROM pragma_table_info('ps100_readings_1hour')"):
            assert store.read_sql(statement).table.num_rows > 0, statement
    finally:
        store.close()


def test_a_long_statement_is_cancelled_at_the_time_limit(store: SqlStore) -> None:
    engine = "postgres" if isinstance(store, PostgresStore) else "duckdb"
    with pytest.raises(UserSqlError, match=r"^SQL cancelled: .*sql_timeout_s \(1 s\)$"):
        store.read_sql(SLEEPS[engine])
    if engine == "postgres":   # changing the limit inside the statement does not help
        with pytest.raises(UserSqlError, match="sql_timeout_s"):
            store.read_sql("SELECT set_config('statement_timeout', '0', false), "
                           "pg_sleep(1000)")
    assert store.read_sql("SELECT 1 AS one").rows() == [(1,)]   # the next one runs


def test_the_row_limit_refuses_larger_results(store: SqlStore) -> None:
    assert store.read_sql("SELECT * FROM ps100_readings_1s LIMIT 50").table.num_rows == 50
    with pytest.raises(UserSqlError, match=r"more than sql_max_rows \(50\) rows"):
        store.read_sql("SELECT * FROM ps100_readings_1s")


def test_decimal_blob_and_numeric_become_json(store: SqlStore) -> None:
    if isinstance(store, PostgresStore):
        statement = ("SELECT 1.25::numeric AS d, 'ab'::bytea AS b, 'NaN'::numeric AS nan, "
                     "NULL::numeric AS none, 12345678901234567890.5::numeric(30,1) AS big")
        want = {"d": 1.25, "b": "YWI=", "nan": None, "none": None,
                "big": 12345678901234567890.5}
    else:
        statement = ("SELECT 1.25::DECIMAL(10,3) AS d, 'ab'::BLOB AS b, "
                     "NULL::DECIMAL(4,1) AS none, 12345678901234567890.5::DECIMAL(30,1) AS big, "
                     "[1.5::DECIMAL(4,1)] AS list")
        want = {"d": 1.25, "b": "YWI=", "none": None, "big": 12345678901234567890.5,
                "list": [1.5]}
    body = orjson.loads(json_response(table_json(store.read_sql(statement).table)).body)
    assert dict(zip(body["columns"], body["rows"][0], strict=True)) == want


def test_a_call_after_comment_lines_is_refused_as_not_a_query(store: SqlStore) -> None:
    """HOMEPOT's document gives ``CALL refresh_continuous_aggregate(…)`` after ``-- name:``
    lines: refused as a statement that is not a query on both engines (PostgreSQL said only
    "syntax error" once comments came first)."""
    for text in ("-- name: refresh_hourly\n-- engines: timescaledb\n"
                 "CALL refresh_continuous_aggregate('device_metrics_hourly', NULL, NULL);",
                 "/* a note */ CALL refresh_continuous_aggregate('x', NULL, NULL)"):
        with pytest.raises(UserSqlError, match=r"^SQL refused: exactly one read statement"):
            store.read_sql(text)


def test_infinite_times_read_as_the_words(store: SqlStore) -> None:
    """±infinity times and dates (TimescaleDB's ``job_stats`` has them) read as ``infinity``
    and ``-infinity``, the column's other values in ISO 8601, on both engines; PostgreSQL
    refused them ("timestamp too small"), DuckDB's rows failed to print with a traceback."""
    statement = ("SELECT * FROM (VALUES ('-infinity'::TIMESTAMPTZ, 'infinity'::DATE, 1), "
                 "('2026-01-01 00:00:00+00'::TIMESTAMPTZ, '2026-01-02'::DATE, 2)) "
                 "AS v(stamp, day, n) ORDER BY n")
    body = orjson.loads(json_response(table_json(store.read_sql(statement).table)).body)
    assert body["rows"] == [["-infinity", "infinity", 1],
                            ["2026-01-01T00:00:00+00:00", "2026-01-02", 2]]
    finite = store.read_sql("SELECT '2026-01-02'::DATE AS day").rows()
    assert finite == [(date(2026, 1, 2),)]   # a column without them keeps its type


# -- the PostgreSQL reader role --------------------------------------------------------------
def test_setup_makes_a_reader_role_that_can_only_select(pg_store: PostgresStore) -> None:
    role = pg_store._fetch(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "rolcanlogin, pg_has_role('sunarchive_reader', 'pg_read_server_files', 'MEMBER'), "
        "pg_has_role('sunarchive_reader', 'pg_signal_backend', 'MEMBER') "
        "FROM pg_roles WHERE rolname = 'sunarchive_reader'")
    assert role == [(False, False, False, False, False, True, False, False)]
    assert pg_store.read_sql("SELECT session_user AS u").rows() == [("sunarchive_reader",)]
    assert pg_store.read_sql("SELECT current_setting('transaction_read_only') AS ro"
                             ).rows() == [("on",)]
    # a setting changed inside a statement dies with its connection
    assert pg_store.read_sql("SELECT set_config('statement_timeout', '0', false) AS t, "
                             "set_config('default_transaction_read_only', 'off', false) AS r"
                             ).rows() == [("0", "off")]
    assert pg_store.read_sql("SELECT current_setting('statement_timeout') AS t, "
                             "current_setting('transaction_read_only') AS r").rows() == \
        [("1s", "on")]
    pg_store.setup()                                   # idempotent
    pg_store._execute("CREATE TABLE made_later (a integer)")   # default privileges
    assert pg_store.read_sql("SELECT COUNT(*) AS n FROM made_later").rows() == [(0,)]


def test_a_missing_reader_role_is_named_and_the_owner_fallback_is_opt_in(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    name = f"absent_{uuid.uuid4().hex[:8]}"
    store = _open("postgres", request, tmp_path, reader=ReaderRole(name))
    try:
        with pytest.raises(ConfigError, match=rf"SQL reader role '{name}'.*sunarchive setup"):
            store.read_sql("SELECT 1")
        assert isinstance(store, PostgresStore)
        store.reader_role = ReaderRole(name, as_owner=True)
        assert store.read_sql("SELECT 1 AS one").rows() == [(1,)]
        with pytest.raises(UserSqlError, match="exactly one read statement"):
            store.read_sql("COMMIT; DROP TABLE sunarchive_meta")
    finally:
        store.close()


def test_a_reader_role_with_more_than_read_rights_is_refused(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = _open("postgres", request, tmp_path, reader=ReaderRole("postgres"))
    try:
        with pytest.raises(ConfigError, match="more than read rights"):
            store.setup()
        with pytest.raises(UserSqlError, match="may read server files"):
            store.read_sql("SELECT 1")
    finally:
        store.close()


# -- the HTTP API and the CLI ----------------------------------------------------------------
@dataclass
class Served:
    url: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[str]


def _env() -> dict[str, str]:
    return clean_env({"SUNARCHIVE_HTTP_READ_TOKENS": json.dumps([READ_TOKEN]),
                      "SUNARCHIVE_HTTP_WRITE_TOKENS": json.dumps([WRITE_TOKEN]),
                      "SUNARCHIVE_HTTP_MAX_BODY_MB": "0.01",
                      "INFLUXDB_TOKEN": CANARY, "INFLUXDB_ENABLED": "false"})


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`sunarchive serve` holding a filled store, with read and write tokens (one per module
    and engine: nothing the tests send may change it)."""
    tmp_path = tmp_path_factory.mktemp("served")
    if request.param == "duckdb":
        database_url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    else:
        database_url = fresh_database(request.getfixturevalue("pg_server_url"))
    _fill(_open(request.param, request, tmp_path, pg_url=database_url)).close()
    env = _env()
    port = env["SUNARCHIVE_HTTP_PORT"]
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", "--database-url", database_url],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "serve did not come up"
        try:
            httpx.get(url + "/api/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield Served(url, database_url, env, process)
    process.terminate()
    process.wait(30)
    if request.param == "postgres":
        drop_database(database_url)


def _sql(served: Served, statement: str) -> httpx.Response:
    return httpx.post(served.url + "/api/v1/sql", json={"sql": statement}, timeout=30,
                      headers={"Authorization": f"Bearer {READ_TOKEN}"})


def test_the_api_refuses_attacks_with_a_read_token_and_leaks_nothing(served: Served) -> None:
    count = "SELECT COUNT(*) AS n FROM ps100_readings_1hour"
    assert _sql(served, count).json()["rows"] == [[HOURLY_ROWS]]
    engine_attacks = POSTGRES_ATTACKS if served.database_url.startswith("postgres") \
        else DUCKDB_ATTACKS
    for attack in COMMON_ATTACKS + [a for a in engine_attacks if "{" not in a]:
        answer = _sql(served, attack)
        assert answer.status_code == 400, (attack, answer.text)
        assert_refused_cleanly(answer.json()["error"], attack)
    assert _sql(served, count).json()["rows"] == [[HOURLY_ROWS]]
    assert not PWNED.exists()


def test_the_api_returns_decimal_and_blob(served: Served) -> None:
    binary = "'ab'::bytea" if served.database_url.startswith("postgres") else "'ab'::BLOB"
    answer = _sql(served, f"SELECT 1.25::numeric(10,3) AS d, {binary} AS b")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"columns": ["d", "b"], "rows": [[1.25, "YWI="]]}


def test_statement_bodies_are_limited_like_writes(served: Served) -> None:
    big = "SELECT 1 AS one -- " + "x" * 20_000
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    declared = httpx.post(served.url + "/api/v1/sql", json={"sql": big}, headers=headers)
    assert declared.status_code == 413 and "limit" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:   # no Content-Length: counted while it arrives
        yield b'{"sql": "SELECT 1 -- '
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    streamed = httpx.post(served.url + "/api/v1/sql", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    query = httpx.post(served.url + "/query", content=b"q=" + b"x" * 20_000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert query.status_code == 413
    assert _sql(served, "SELECT 1 AS one").json()["rows"] == [[1]]


def _one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_the_cli_refuses_in_one_line_with_exit_2(served: Served) -> None:
    """Through the running instance (DuckDB: the file is held) or straight to PostgreSQL."""
    env = {k: v for k, v in served.env.items() if k.startswith(("SUNARCHIVE_", "INFLUX"))}
    common = ("--database-url", served.database_url)
    for statement, named in (("COMMIT; DROP TABLE ps100_readings_1hour", "one read statement"),
                             ("SELECT nope FROM ps100_readings_1s", "nope"),
                             ("SELEC 1", "SELEC")):
        line = _one_line_exit_2(cli("sql", statement, *common, env=env, check=False))
        assert line.startswith("sunarchive: error: SQL ") and named in line, line
    rows = cli("sql", "SELECT COUNT(*) AS n FROM ps100_readings_1hour", *common,
               "--format", "json", env=env).stdout
    assert json.loads(rows) == [{"n": HOURLY_ROWS}]


def test_the_cli_on_an_idle_duckdb_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _fill(_open("duckdb", request, tmp_path)).close()
    db = ("--db", str(tmp_path / "store.duckdb"))
    line = _one_line_exit_2(cli("sql", "SELECT * FROM read_text('/etc/passwd')", *db,
                                check=False))
    assert "read_text() is not a read" in line and "root:" not in line
    _one_line_exit_2(cli("sql", "DROP TABLE ps100_readings_1hour", *db, check=False))
    out = cli("sql", "SELECT 1.5::DECIMAL(4,1) AS d, 'ab'::BLOB AS b", *db, "--format",
              "json").stdout
    assert json.loads(out) == [{"d": 1.5, "b": "YWI="}]
