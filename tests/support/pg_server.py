"""A throwaway PostgreSQL server for the tests, from the installed PostgreSQL binaries.

``SUNARCHIVE_TEST_PG_URL`` points the tests at an existing server instead. Each test gets a
fresh database on it, so no test depends on what another left behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.support.ports import free_port


def postgres_bindir() -> Path | None:
    """Directory with initdb/pg_ctl: the newest Debian PostgreSQL, else one on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class ThrowawayPostgres:
    """initdb into a temporary directory, start on a free loopback port, remove at the end.

    initdb refuses to run as root; as root the server runs as the ``postgres`` user.
    """

    def __init__(self, bindir: Path, extra_conf: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sunarchive-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.extra_conf = extra_conf or {}
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--locale=C")
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                # fsync off is safe for a crash of the server process (the OS keeps the
                # files); synchronous_commit must stay on, or an immediate stop loses commits
                # the writer was told had succeeded
                "unix_socket_directories": f"'{self.root}'", "fsync": "off",
                "full_page_writes": "off",
                "max_connections": "50", **self.extra_conf}
        with (self.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_user, str(self.bindir / tool), *args], check=True,
                       capture_output=True, text=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_s: float = 0.0) -> None:
        self.stop("immediate")
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    """Drop a database made by :func:`fresh_database` (TimescaleDB runs a scheduler per
    database: left behind, they use up the server's background workers)."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_postgres(**extra_conf: str) -> Iterator[ThrowawayPostgres]:
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (initdb); `make test` installs "
                           "Debian's postgresql package, or set SUNARCHIVE_TEST_PG_URL")
    server = ThrowawayPostgres(bindir, extra_conf)
    try:
        yield server
    finally:
        server.destroy()
