"""Shared fixtures: a demo store made by the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import DEMO_PANELS, DEMO_SECONDS, DEMO_START, cli
from tests.support.pg_server import drop_database, fresh_database, throwaway_postgres


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated hours of four panels, made by `sunarchive demo` as fast as it goes."""
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    result = cli("demo", "--db", str(db), "--panels", str(DEMO_PANELS), "--speed", "0",
                 "--duration", str(DEMO_SECONDS), "--start", DEMO_START, "--no-console",
                 "--timezone", "Europe/Berlin")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["write_errors"] == 0
    return db


# -- PostgreSQL: a throwaway server per session, a fresh database per test --------------------
@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server: SUNARCHIVE_TEST_PG_URL, else one started here on a free port."""
    given = os.environ.get("SUNARCHIVE_TEST_PG_URL")
    if given:
        yield given
        return
    with throwaway_postgres() as server:
        yield server.url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """URL of a new, empty database (plain PostgreSQL), dropped afterwards."""
    url = fresh_database(pg_server_url)
    yield url
    drop_database(url)


@pytest.fixture
def timescale_url() -> Iterator[str]:
    """URL of a new, empty database on a TimescaleDB server, or skip saying why."""
    given = os.environ.get("SUNARCHIVE_TEST_TIMESCALE_URL")
    if not given:
        pytest.skip("SUNARCHIVE_TEST_TIMESCALE_URL is not set: no TimescaleDB server to test "
                    "against (TimescaleDB is not in the package registries this CI can reach)")
    url = fresh_database(given)
    yield url
    drop_database(url)


# -- TimescaleDB in CI: PGlite (WASM PostgreSQL 17 + TimescaleDB 2.23 from npm) ---------------
@pytest.fixture(scope="session")
def pglite_url() -> Iterator[str]:
    """URL of a PGlite server with TimescaleDB (tests/support/pglite_server.py), started once per
    session; skips only where node/npm are missing (CI has them). One connection at a time."""
    from tests.support.pglite_server import missing_tools, pglite_server

    why = missing_tools()
    if why:
        pytest.skip(f"PGlite TimescaleDB tests need Node.js: {why}")
    with pglite_server() as server:
        yield server.url
