"""``sunarchive import`` through the real CLI, and reading the DuckDB file it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from tests.support.cli import cli

T0 = 1_782_036_000  # 2026-06-21T10:00:00Z


def run_import(db: Path, *args: str, check: bool = True) -> dict[str, Any]:
    result = cli("import", "--db", str(db), *args, "--json", check=check)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def one(db: Path, sql: str) -> Any:
    return rows(db, sql)[0][0]


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path
