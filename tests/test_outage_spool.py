"""PostgreSQL down across the end of a run: nothing acknowledged is lost, nothing is doubled.

A paced demo writes into a real PostgreSQL server; the server is stopped in the middle of the run
and stays down until the run has ended. The batches made meanwhile go to the disk spool; the run
says so in its exit code. The next start (the same command again) writes every spooled batch
first and finishes the original span; the store then equals an undisturbed run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.spool import Spool
from sunarchive.profiles import load_profiles
from sunarchive.sources.simulator import SimulatorConfig, SimulatorSource
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.cli import clean_env, cli
from tests.support.pg_server import fresh_database, throwaway_postgres
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

START = "2026-06-21T10:00:00+02:00"
SECONDS = 600
PANELS = 2
EXIT_SPOOLED = 3
TOTALS = ("SELECT panel_id, COUNT(*) AS n, COUNT(DISTINCT time) AS seconds, "
          "SUM(sample_count) AS samples, SUM(energy_wh) AS energy FROM ps100_readings_1s "
          "GROUP BY panel_id ORDER BY panel_id")


def _demo_args(*store: str, speed: str) -> list[str]:
    return ["demo", *store, "--panels", str(PANELS), "--speed", speed, "--duration",
            str(SECONDS), "--start", START, "--no-console", "--no-http"]


def _rows_in(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as con:
            row = con.execute("SELECT COUNT(*) FROM ps100_readings_1s").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _reference(tmp_path: Path) -> list[tuple[str, int, int, int, float]]:
    db = tmp_path / "ref.duckdb"
    cli(*_demo_args("--db", str(db), speed="0"))
    out = cli("sql", TOTALS, "--db", str(db), "--format", "json").stdout
    return [(r["panel_id"], r["n"], r["seconds"], r["samples"], r["energy"])
            for r in json.loads(out)]


@pytest.mark.slow
def test_postgres_down_across_the_end_of_a_run_loses_nothing(tmp_path: Path) -> None:
    want = _reference(tmp_path)
    with throwaway_postgres() as server:
        url = fresh_database(server.url)
        cli("setup", "--database-url", url, cwd=tmp_path)
        args = _demo_args("--database-url", url, speed="40")   # ~15 s of wall time
        run = subprocess.Popen([sys.executable, "-m", "sunarchive", *args], cwd=tmp_path,
                               env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        wait_until(lambda: _rows_in(url) >= 20, "the first rows in PostgreSQL", 120, poll_s=0.1)
        server.stop("immediate")              # down until well after the run has ended
        out, err = run.communicate(timeout=300)
        assert run.returncode == EXIT_SPOOLED, (run.returncode, out, err)
        assert "spool" in err and "Traceback" not in err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["spooled_batches"] > 0
        spool_files = list((tmp_path / "sunarchive-data").glob("*.spool/*.arrow"))
        assert len(spool_files) == summary["spooled_batches"]

        server.start()
        again = cli(*args, cwd=tmp_path)      # the next start: spool first, then the rest
        assert json.loads(again.stdout.strip().splitlines()[-1])["spooled_batches"] == 0
        assert not list((tmp_path / "sunarchive-data").glob("*.spool/*.arrow"))
        with psycopg.connect(url) as con:
            got = con.execute(TOTALS).fetchall()
    assert [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in got] == \
        [(w[0], w[1], w[2], w[3]) for w in want]
    for g, w in zip(got, want, strict=True):
        assert int(g[1]) == int(g[2]) == SECONDS          # one row per second: nothing twice
        assert float(g[4]) == pytest.approx(w[4], rel=1e-9)


def _wait_for_line(stream: object, text: str) -> list[str]:
    """Read ``stream`` line by line until a line holds ``text``; returns the lines read."""
    lines: list[str] = []
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the process ended without saying {text!r}:\n{''.join(lines)}")


@pytest.mark.slow
def test_postgres_down_at_start_up_is_waited_for(tmp_path: Path) -> None:
    """The server is down when the command starts: the command says so, retries with a
    capped backoff and, once the server is back, collects the whole span."""
    with throwaway_postgres() as server:
        url = fresh_database(server.url)
        cli("setup", "--database-url", url, cwd=tmp_path)
        server.stop("immediate")
        args = _demo_args("--database-url", url, speed="0")
        run = subprocess.Popen([sys.executable, "-m", "sunarchive", *args], cwd=tmp_path,
                               env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        seen = _wait_for_line(run.stderr, "retrying in")
        assert "Traceback" not in "".join(seen)
        server.start()
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, (out, "".join(seen) + err)
        with psycopg.connect(url) as con:
            row = con.execute("SELECT COUNT(*), COUNT(DISTINCT (time, series_id)) "
                              "FROM ps100_readings_1s").fetchone()
    assert row is not None and int(row[0]) == int(row[1]) == SECONDS * PANELS


def test_a_server_that_refuses_for_good_fails_at_once(pg_server_url: str,
                                                      tmp_path: Path) -> None:
    """Waiting does not help a database that does not exist: one line, exit 2, no retry."""
    url = pg_server_url.rsplit("/", 1)[0] + "/no_such_database"
    result = cli(*_demo_args("--database-url", url, speed="0"), cwd=tmp_path, check=False,
                 timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'database "no_such_database" does not exist' in result.stderr
    assert "retrying" not in result.stderr and "Traceback" not in result.stderr


def _collect(store: object, spool_dir: Path, panels: int, seconds: int) -> Agent:
    agent = Agent(store, Accumulator(), lateness_s=1.0, commit_interval_s=0.2,  # type: ignore
                  spool=Spool(spool_dir))
    agent.add_source(SimulatorSource(SimulatorConfig(panels=panels, seed=7),
                                     start=datetime.fromisoformat(START), speed=float("inf"),
                                     duration_s=seconds))
    return agent


@pytest.mark.slow
def test_postgres_lost_before_the_writer_starts_collects_into_the_spool(
        tmp_path: Path) -> None:
    """The store was opened, then the server went away before the agent started (a restart
    3 s into the run): sources run and batches spool to disk; once the server is back the
    spool is written and the result equals an undisturbed run."""
    profiles = load_profiles()
    reference = DuckDBStore(tmp_path / "ref.duckdb", profiles)
    reference.setup()
    undisturbed = _collect(reference, tmp_path / "ref.spool", PANELS, SECONDS)
    undisturbed.start()
    wait_until(undisturbed.sources_done, "the reference run", 120, poll_s=0.1)
    undisturbed.stop()
    want = reference.sql(TOTALS).rows()
    reference.close()

    with throwaway_postgres() as server:
        store = PostgresStore(fresh_database(server.url), profiles)
        store.setup()
        agent = _collect(store, tmp_path / "pg.spool", PANELS, SECONDS)
        server.stop("immediate")
        starting = threading.Thread(target=agent.start, daemon=True)
        starting.start()
        wait_until(lambda: len(agent.spool) > 0 and agent.sources_done(),
                   "the whole span collected into the spool while the server is down", 120,
                   poll_s=0.1)
        assert list((tmp_path / "pg.spool").glob("*.arrow"))
        server.start()
        wait_until(lambda: len(agent.spool) == 0, "the spool written once the server is back",
                   120, poll_s=0.1)
        agent.stop()
        assert agent.writer_error is None
        got = store.sql(TOTALS).rows()
        store.close()
    assert [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in got] == \
        [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in want]
    for g, w in zip(got, want, strict=True):
        assert int(g[1]) == int(g[2]) == SECONDS
        assert float(g[4]) == pytest.approx(float(w[4]), rel=1e-9)
