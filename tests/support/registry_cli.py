"""Driving the registries (``sunarchive registry``, ``/api/v1/registry/{kind}``) in tests: the
JSON a command prints, the one error line a refused one prints, REST calls with tokens."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.cli import cli
from tests.support.serving import Served

TOKENS = {"SUNARCHIVE_HTTP_READ_TOKENS": '["reader-1"]',
          "SUNARCHIVE_HTTP_WRITE_TOKENS": '["writer-1"]'}
READ = {"Authorization": "Bearer reader-1"}
WRITE = {"Authorization": "Bearer writer-1"}


def registry(args: list[str], *command: str) -> Any:
    """``sunarchive registry … --json``: the JSON it prints (the command must succeed)."""
    return json.loads(cli("registry", *command, *args, "--json").stdout)


def refused(args: list[str], *command: str) -> str:
    """The one error line a refused ``registry`` command prints (exit 2, no traceback; on
    plain PostgreSQL every open also logs that TimescaleDB is missing; argparse's own
    refusals print their usage first)."""
    result = cli("registry", *command, *args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines()
             if "TimescaleDB is not available" not in line]
    if lines and lines[0].startswith("usage:"):
        lines = [line for line in lines if "error:" in line]
    assert len(lines) == 1 and "error: " in lines[0], result.stderr
    return lines[0]


def call(api: Served, method: str, path: str, token: dict[str, str] = WRITE,
         body: Any = None, **params: Any) -> httpx.Response:
    """A request to the served API (the write token unless another is given)."""
    return httpx.request(method, api.url + path, headers=token, json=body, params=params,
                         timeout=30)


def error(response: httpx.Response, status: int) -> str:
    """The message of an error answer with that status."""
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message
