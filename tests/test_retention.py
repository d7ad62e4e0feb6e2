"""Per-tier retention on a real DuckDB file: old rows go, rollups keep the history, and rows a
rollup has not consumed yet are never dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sunarchive.model import NS_PER_S, SeriesKey
from sunarchive.profiles import load_profiles
from sunarchive.reducer import Reducer
from sunarchive.storage.duckdb.store import DuckDBStore

pytestmark = pytest.mark.engine

NOW = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


def _store(path: Path, days: float | None) -> DuckDBStore:
    store = DuckDBStore(path, load_profiles(), retention_days={"1s": days})
    store.setup()
    return store


def _write_hour(store: DuckDBStore, start_s: int, roll: bool) -> None:
    if not store.load_series():
        store.add_series(SeriesKey("ps100_readings", ("p1",)), 1)
    reducer = Reducer(store.profiles["ps100_readings"], lateness_s=0)
    t = start_s * NS_PER_S + np.arange(3600 * 10, dtype=np.int64) * (NS_PER_S // 10)
    values = {"voltage": np.full(len(t), 20.0), "current": np.full(len(t), 2.0),
              "power": np.full(len(t), 40.0), "temperature": np.full(len(t), 30.0)}
    reducer.add(np.ones(len(t), np.int32), t, values)
    result = reducer.flush()
    store.write(result.fresh, result.merge, {1: ("p1",)})
    if roll:
        store.rollup("ps100_readings", reducer.closed_until_s)


def _count(path: Path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_retention_drops_old_1s_rows_and_keeps_rollups(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    store = _store(db, days=1.0)
    three_days_ago = int(NOW.timestamp()) - 3 * 86400
    _write_hour(store, three_days_ago, roll=False)
    _write_hour(store, int(NOW.timestamp()) - 7200, roll=True)
    deleted = store.apply_retention(NOW)
    again = store.apply_retention(NOW)
    store.close()
    assert deleted == {"ps100_readings_1s": 3600}
    assert again == {}  # idempotent
    assert _count(db, "ps100_readings_1s") == 3600
    assert _count(db, "ps100_readings_5min") == 24  # both hours, 12 buckets each
    assert _count(db, "ps100_readings_1hour") == 2


def test_retention_never_drops_rows_not_yet_rolled_up(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    store = _store(db, days=1.0)
    _write_hour(store, int(NOW.timestamp()) - 3 * 86400, roll=False)
    assert store.apply_retention(NOW) == {}  # no rollup has consumed them yet
    store.rollup("ps100_readings", int(NOW.timestamp()) - 3 * 86400 + 3600)
    assert store.apply_retention(NOW) == {"ps100_readings_1s": 3600}
    store.close()
    assert _count(db, "ps100_readings_5min") == 12


def test_no_retention_by_default(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    store = _store(db, days=None)
    _write_hour(store, int(NOW.timestamp()) - 400 * 86400, roll=True)
    assert store.apply_retention(NOW) == {}
    store.close()
    assert _count(db, "ps100_readings_1s") == 3600
