"""Issue 14, point 11: every command that opens a store, pointed at something that is no store —
an empty, damaged or half-created DuckDB file, a PostgreSQL server that is not there, refuses,
or holds no sunarchive schema — prints one line naming the file or URL and the problem and
exits with 2. Through the real CLI; no traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from sunarchive.profiles import load_profiles
from sunarchive.storage.duckdb.cut_short import missing_blocks
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.cli import cli
from tests.support.pg_server import drop_database, fresh_database
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

READERS = {
    "status": ["status"],
    "query": ["query", "ps100_readings", "--tier", "1s"],
    "sql": ["sql", "SELECT 1 AS one"],
    "chunks": ["chunks", "ps100_readings_1s"],
}
WRITERS = {
    "refresh": ["refresh", "--measurement", "ps100_readings", "--start",
                "2026-06-21T00:00:00+00:00", "--end", "2026-06-22T00:00:00+00:00"],
    "import": ["import", "{csv}", "--measurement", "ps100_readings"],
    "setup": ["setup"],
    "create-aggregates": ["create-aggregates"],
}
COMMANDS = READERS | WRITERS


def _run(command: str, target: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    csv = tmp_path / "in.csv"
    csv.write_text("time,panel_id,power\n2026-06-21T10:00:00Z,p1,5\n")
    args = [str(csv) if a == "{csv}" else a for a in COMMANDS[command]]
    return cli(*args, *target, check=False, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess[str], *named: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    line = lines[0]
    assert line.startswith("sunarchive: error: "), line
    for text in named:
        assert text in line, (text, line)
    return line


# -- DuckDB files --------------------------------------------------------------------------
def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _garbage(db: Path) -> None:
    db.write_bytes(b"\x00garbage" * 600)


def _truncated(db: Path) -> None:
    """A real store cut short, as a full disk or a bad copy leaves it."""
    store = DuckDBStore(db, {"ps100_readings": load_profiles()["ps100_readings"]})
    store.setup()
    store.close()
    data = db.read_bytes()
    db.write_bytes(data[:len(data) // 3])


def _half_created(db: Path) -> None:
    """A DuckDB file with a table of its own but none of sunarchive's."""
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE other (a INTEGER)")
    con.close()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_on_an_empty_duckdb_file(tmp_path: Path, command: str) -> None:
    db = tmp_path / "broken.duckdb"
    _empty(db)
    assert_one_line(_run(command, ["--db", str(db)], tmp_path), str(db),
                    "not a DuckDB database file")
    assert db.read_bytes() == b""   # nothing written into it


@pytest.mark.parametrize(("make", "command"), [
    (_garbage, "sql"), (_garbage, "import"), (_truncated, "query"), (_truncated, "refresh")])
def test_a_damaged_duckdb_file(tmp_path: Path, make: Callable[[Path], None],
                               command: str) -> None:
    db = tmp_path / "broken.duckdb"
    make(db)
    assert_one_line(_run(command, ["--db", str(db)], tmp_path), str(db))


def test_a_file_duckdb_shrank_is_not_cut_short(tmp_path: Path) -> None:
    """DuckDB cuts freed blocks off the end of its file without lowering the block count in
    its header (after retention, or a large recompute): shorter than its header says, yet
    whole — the cut-short check must not count it as missing blocks."""
    db = tmp_path / "shrunk.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE meta (k VARCHAR, v VARCHAR); INSERT INTO meta VALUES ('a', 'b')")
    con.close()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE scratch AS SELECT range AS i, random() AS r FROM range(2000000)")
    con.close()
    grown = db.stat().st_size
    for statement in ("DROP TABLE scratch", "UPDATE meta SET v = v"):
        con = duckdb.connect(str(db))
        con.execute(statement)
        con.close()
    assert db.stat().st_size < grown // 4      # DuckDB gave the blocks back
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert missing_blocks(con, db) == 0
        assert con.execute("SELECT v FROM meta").fetchall() == [("b",)]
    finally:
        con.close()


def test_a_store_after_a_large_drop_opens_and_answers(tmp_path: Path) -> None:
    """The same on a whole sunarchive store: after a large table came and went it opens and
    answers. (DuckDB 2.0.1 stopped shortening this store's file once the store gained more
    tables — cause not found — so the shortened case itself is the plain file above.)"""
    db = tmp_path / "dropped.duckdb"
    store = DuckDBStore(db, {"ps100_readings": load_profiles()["ps100_readings"]})
    store.setup()
    store.close()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE scratch AS SELECT range AS i, random() AS r FROM range(2000000)")
    con.close()
    for statement in ("DROP TABLE scratch", "UPDATE sunarchive_meta SET value = value"):
        con = duckdb.connect(str(db))
        con.execute(statement)
        con.close()
    result = cli("status", "--db", str(db), "--json", check=False)
    assert result.returncode == 0, result.stderr
    result = cli("query", "ps100_readings", "--tier", "1s", "--db", str(db), check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", list(READERS))
def test_readers_of_a_half_created_duckdb_file(tmp_path: Path, command: str) -> None:
    db = tmp_path / "half.duckdb"
    _half_created(db)
    assert_one_line(_run(command, ["--db", str(db)], tmp_path), str(db),
                    "not a sunarchive store (table sunarchive_", "sunarchive setup")


# -- PostgreSQL ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_on_an_unreachable_postgresql(tmp_path: Path, command: str) -> None:
    url = f"postgresql://sunarchive:secret-pw@127.0.0.1:{free_port()}/nothing"
    line = assert_one_line(_run(command, ["--database-url", url], tmp_path),
                           "127.0.0.1", "nothing", "refused")
    assert "secret-pw" not in line


@pytest.fixture
def no_schema(pg_server_url: str) -> Iterator[str]:
    url = fresh_database(pg_server_url)
    yield url
    drop_database(url)


@pytest.mark.parametrize("command", ["sql", "import"])
def test_a_postgresql_database_that_does_not_exist(pg_server_url: str, tmp_path: Path,
                                                   command: str) -> None:
    url = pg_server_url.rsplit("/", 1)[0] + "/no_such_database"
    assert_one_line(_run(command, ["--database-url", url], tmp_path), "no_such_database",
                    "does not exist")


@pytest.mark.parametrize("command", ["query", "sql", "status", "chunks"])
def test_readers_of_a_postgresql_database_without_a_store(no_schema: str, tmp_path: Path,
                                                          command: str) -> None:
    assert_one_line(_run(command, ["--database-url", no_schema], tmp_path),
                    no_schema.rsplit("/", 1)[1], "sunarchive setup")
