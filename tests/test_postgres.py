"""PostgreSQL engine beyond the shared contract: the plain fallback, the CLI on PostgreSQL,
and a server restart in the middle of ingest (nothing lost, nothing written twice)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from sunarchive.model import SeriesKey, StatsRows
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.spool import Spool
from sunarchive.profiles import load_profiles
from sunarchive.sources.simulator import SimulatorConfig, SimulatorSource
from sunarchive.storage.base import Store
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.cli import cli
from tests.support.pg_server import fresh_database, throwaway_postgres
from tests.support.stats_rows import stats_rows

pytestmark = pytest.mark.integration

PROFILES = load_profiles(None)
START = "2026-06-21T10:00:00+02:00"


def test_fallback_is_plain_partitioned_and_says_why(pg_url: str) -> None:
    store = PostgresStore(pg_url, PROFILES)
    try:
        store.setup()
        assert store.layout == "plain"
        assert any("plain PostgreSQL fallback" in note for note in store.notes)
        info = store.status()
        assert info["extension"] == "fallback: plain PostgreSQL"
        # partitions are made ahead of the data: today and the two intervals after it
        partitions = store.chunks("ps100_readings_1s")
        now = datetime.now(UTC)
        assert len(partitions) == 3
        assert partitions[0]["range_start"] <= now < partitions[0]["range_end"]
        kind = store.sql("SELECT relkind FROM pg_class WHERE relname = 'ps100_readings_1s'")
        assert kind.rows() == [("p",)]
        # a second set-up changes nothing and keeps the layout
        assert store.setup() == []
    finally:
        store.close()


def test_cli_works_the_same_on_postgres(pg_url: str, tmp_path: Path) -> None:
    common = ["--database-url", pg_url]
    first = cli("setup", *common, cwd=tmp_path)
    assert "created partitioned table ps100_readings_1s" in first.stdout
    assert "plain PostgreSQL fallback" in first.stderr
    run = cli("demo", *common, "--panels", "2", "--speed", "0", "--duration", "1800",
              "--start", START, "--no-console", cwd=tmp_path)
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["rows_written"] == 2 * 1800 and summary["write_errors"] == 0
    info = json.loads(cli("status", *common, "--json", cwd=tmp_path).stdout)
    tables = {t["table"]: t for t in info["tables"]}
    assert info["layout"] == "plain" and tables["ps100_readings_1s"]["rows"] == 3600
    assert tables["ps100_readings_5min"]["rows"] == 2 * 6
    rows = json.loads(cli("query", "ps100_readings", *common, "--tier", "5min", "--start",
                          "2026-06-21T08:00:00Z", "--end", "2026-06-21T08:30:00Z",
                          "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == 12 and rows[0]["time"] == "2026-06-21T08:00:00+00:00"
    total = json.loads(cli("sql", "SELECT SUM(energy_wh) AS e FROM ps100_readings_1s",
                           *common, "--format", "json", cwd=tmp_path).stdout)[0]["e"]
    assert sum(r["energy_wh"] for r in rows) == pytest.approx(total, rel=1e-9)
    chunks = json.loads(cli("chunks", "ps100_readings_1s", *common, "--json",
                            cwd=tmp_path).stdout)
    assert any(c["range_start"].startswith("2026-06-21") for c in chunks)
    view = cli("chunks", "ps100_readings_5min", *common, cwd=tmp_path, check=False)
    assert view.returncode == 2 and view.stderr.count("\n") == 1
    assert "is a view of the rollup" in view.stderr
    assert "ps100_readings_5min_materialized" in view.stderr
    assert "(0 changes)" in cli("setup", *common, cwd=tmp_path).stdout


def _ingest(store: Store, spool_dir: Path, speed: float, seconds: int,
            meanwhile: Callable[[Agent], None] | None = None) -> Agent:
    agent = Agent(store, Accumulator(), lateness_s=1.0, commit_interval_s=0.2,
                  spool=Spool(spool_dir))
    config = SimulatorConfig(panels=3, seed=5)
    agent.add_source(SimulatorSource(config, start=datetime.fromisoformat(START), speed=speed,
                                     duration_s=seconds))
    agent.start()
    if meanwhile is not None:
        threading.Thread(target=meanwhile, args=(agent,), daemon=True).start()
    while not agent.sources_done():
        time.sleep(0.05)
    agent.stop()
    return agent


TOTALS = ("SELECT panel_id, COUNT(*) AS n, COUNT(DISTINCT time) AS seconds, "
          "SUM(sample_count) AS samples, SUM(energy_wh) AS energy FROM ps100_readings_1s "
          "GROUP BY panel_id ORDER BY panel_id")


def test_server_restart_mid_ingest_loses_nothing(tmp_path: Path) -> None:
    """PostgreSQL goes down for 2 s while a paced simulation is collected. The writer spools,
    reconnects and writes everything in order; the result equals an undisturbed run."""
    seconds = 900
    reference = DuckDBStore(tmp_path / "ref.duckdb", PROFILES)
    reference.setup()
    _ingest(reference, tmp_path / "ref.spool", float("inf"), seconds)
    want = reference.sql(TOTALS).rows()
    reference.close()

    with throwaway_postgres() as server:
        store = PostgresStore(fresh_database(server.url), PROFILES)
        store.setup()
        restarted = threading.Event()

        def restart(agent: Agent) -> None:
            while agent.stats.rows_written < 100:   # in the middle of ingest
                time.sleep(0.05)
            server.restart(down_s=2.0)
            restarted.set()

        agent = _ingest(store, tmp_path / "pg.spool", 150.0, seconds, restart)  # ~6 s wall
        assert restarted.is_set()
        assert agent.stats.write_errors > 0, "the restart did not hit a write"
        assert len(agent.spool) == 0
        got = store.sql(TOTALS).rows()
        store.close()
    assert [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in got] == \
        [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in want]
    for g, w in zip(got, want, strict=True):
        assert g[1] == g[2] == seconds          # one row per second: nothing twice
        assert g[4] == pytest.approx(w[4], rel=1e-9)


def test_unreachable_server_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"cannot connect to postgresql://nobody@127\.0\.0\.1:9"):
        PostgresStore("postgresql://nobody:secret@127.0.0.1:9/x", PROFILES)
    result = cli("status", "--database-url", "postgresql://nobody:secret@127.0.0.1:9/x",
                 cwd=tmp_path, check=False)
    assert result.returncode == 2 and "cannot connect" in result.stderr
    assert "secret" not in result.stderr


def test_database_url_with_password_from_file(pg_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("not-needed-with-trust\n")
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    out = cli("setup", "--database-url", pg_url, cwd=tmp_path,
              env={"SUNARCHIVE_DATABASE_PASSWORD_FILE": str(secret)})
    assert "not-needed" not in out.stdout + out.stderr


def test_plain_postgresql_keeps_decimal_values(pg_url: str) -> None:
    """The binary grid is for TimescaleDB's compression; plain tables store decimals."""
    plain = PostgresStore(pg_url, PROFILES, timescale_grid="binary")
    plain.setup()
    assert plain.layout == "plain" and plain.value_grid == "decimal"
    plain.close()


def test_stores_in_two_schemas_of_one_database_keep_their_own_partitions(pg_url: str) -> None:
    """A store lives in the schema its URL's search_path names; another store of the same
    profiles in another schema of the database has partitions of the same names there. A
    day the first store made a partition for is not one the second store has: its rows go
    into a partition of its own schema, and each store reads only its own rows."""
    with psycopg.connect(pg_url, autocommit=True) as con:
        for schema in ("site_a", "site_b"):
            con.execute(f"CREATE SCHEMA {schema}")
    profiles = {"ps100_readings": PROFILES["ps100_readings"]}
    day = int(datetime(2026, 5, 4, 12, tzinfo=UTC).timestamp())   # long before "today"
    stores = [PostgresStore(f"{pg_url}?options=-csearch_path%3D{schema}", profiles)
              for schema in ("site_a", "site_b")]
    try:
        for store, seconds in zip(stores, (60, 90), strict=True):
            store.setup()
            store.add_series(SeriesKey("ps100_readings", ("p1",)), 1)
            store.write(stats_rows("ps100_readings", day, seconds),
                        StatsRows.empty("ps100_readings"), {1: ("p1",)})
        for store, seconds in zip(stores, (60, 90), strict=True):
            count = store.sql("SELECT COUNT(*) AS n FROM ps100_readings_1s").rows()
            assert count == [(seconds,)]
    finally:
        for store in stores:
            store.close()
