"""``sunarchive serve`` in a subprocess on a free port, and reading its store once stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.cli import cli
from tests.support.ports import free_port

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
"""The instant the write tests' points start at."""
T0_NS = int(T0.timestamp()) * 10**9


@dataclass
class Served:
    url: str
    db: Path
    process: subprocess.Popen[str]


def serve(db: Path, *extra: str, env: dict[str, str] | None = None) -> Served:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUNARCHIVE_")}
    clean.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", "--db", str(db), "--http-port", str(port),
         *extra], cwd=db.parent, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    served = Served(f"http://127.0.0.1:{port}", db, process)
    try:
        wait_serving(served.url, process)
    except AssertionError:
        process.kill()
        raise
    return served


def wait_serving(url: str, process: subprocess.Popen[str], log: Path | None = None,
                 within_s: float = 60.0) -> None:
    """Return once the server at ``url`` answers ``/api/v1/health`` (200, or 401 where it
    wants a token). AssertionError with its output (``log``, else its stderr pipe) when the
    process exits first, or when it does not answer within ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        if process.poll() is not None:
            output = log.read_text() if log else process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the server of {url} exited:\n{output}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {within_s} s"
        time.sleep(0.1)


def get(api: Served, path: str, **params: object) -> httpx.Response:
    """A GET on the served API (30 s timeout)."""
    return httpx.get(api.url + path, params=params, timeout=30)  # type: ignore[arg-type]


def stop(served: Served) -> None:
    served.process.terminate()
    served.process.wait(30)


def sql(served: Served, statement: str) -> list[dict[str, object]]:
    """Stop the server (flushing every open second) and read the store with the CLI."""
    if served.process.poll() is None:
        stop(served)
    out = cli("sql", statement, "--db", str(served.db), "--format", "json",
              cwd=served.db.parent).stdout
    rows: list[dict[str, object]] = json.loads(out)
    return rows
