"""One error tree (sunarchive.errors), the older import names, and the API's one mapping:
an unavailable store answers 503 with Retry-After (it answered 400 before)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sunarchive import errors
from sunarchive.model import ConfigError, InputError, SunarchiveError, TransientStoreError
from sunarchive.pipeline.accumulator import QueueFullError, WriterStoppedError
from sunarchive.sources.running import SourceError
from sunarchive.storage.duckdb.store import StoreLockedError
from sunarchive.storage.user_sql import UserSqlError
from tests.support.cli import clean_env, cli
from tests.support.pg_server import fresh_database, throwaway_postgres
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


def test_older_import_names_are_the_tree() -> None:
    assert (ConfigError, InputError, SunarchiveError) == (
        errors.ConfigError, errors.InputError, errors.SunarchiveError)
    assert TransientStoreError is errors.StoreUnavailableError
    assert (QueueFullError, WriterStoppedError) == (errors.QueueFullError,
                                                    errors.WriterStoppedError)
    assert SourceError is errors.SourceError
    assert StoreLockedError is errors.StoreLockedError
    assert UserSqlError is errors.UserSqlError


def test_every_error_is_a_sunarchive_error_and_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    classes = [v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, SunarchiveError), cls
        assert cls.__name__ in doc, f"{cls.__name__} is not drawn in the tree"


@pytest.mark.parametrize(("exc", "status"), [
    (errors.InputError("line 3: field 'p' is not a number"), 400),
    (errors.UserSqlError("SQL refused"), 400),
    (errors.ConfigError("bad"), 400),
    (errors.StoreUnavailableError("down"), 503),
    (errors.StoreLockedError("locked"), 503),
    (errors.QueueFullError("full"), 503),
    (errors.WriterStoppedError("stopped"), 503),
    (errors.NotSupportedError("no compression on DuckDB"), 501),
])
def test_http_status_of_each_branch(exc: errors.SunarchiveError, status: int) -> None:
    assert errors.http_status(exc) == status


def _serve(url: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", "--database-url", url, "--http-port",
         str(port)], cwd=cwd, env=clean_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise AssertionError("serve did not come up")


def test_an_unavailable_store_answers_503_with_retry_after(tmp_path: Path) -> None:
    with throwaway_postgres() as server:
        url = fresh_database(server.url)
        cli("setup", "--database-url", url, cwd=tmp_path)
        process, base = _serve(url, tmp_path)
        try:
            params = {"start": "2026-06-21T10:00:00Z", "end": "2026-06-21T11:00:00Z"}
            ok = httpx.get(base + "/api/v1/measurements/ps100_readings", params=params, timeout=30)
            assert ok.status_code == 200, ok.text
            server.stop()
            for path, method, body in [
                ("/api/v1/measurements/ps100_readings", "GET", None),
                ("/api/v1/sql", "POST", {"sql": "SELECT 1"}),
            ]:
                answer = httpx.request(method, base + path, params=params if body is None
                                       else None, json=body, timeout=60)
                assert answer.status_code == 503, (path, answer.status_code, answer.text)
                assert answer.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
                message = answer.json()["error"]
                assert "PostgreSQL" in message and "\n" not in message
            new_measurement = httpx.post(base + "/write", content=b"brand_new,site=a p=1.5",
                                         timeout=60)   # creating its tables needs the store
            assert new_measurement.status_code == 503, new_measurement.text
            assert new_measurement.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
        finally:
            process.terminate()
            process.wait(60)
