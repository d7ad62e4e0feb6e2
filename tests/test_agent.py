"""The writer agent with a real DuckDB file: bad fields are dropped without losing the good
ones, unknown measurements are reported, and stop flushes everything."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from sunarchive.model import NS_PER_S, SampleBatch
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.storage.duckdb.store import DuckDBStore

pytestmark = pytest.mark.engine

T0 = 1_782_036_000  # 2026-06-21 10:00 UTC


def _batch(measurement: str, fields: dict[str, float], seconds: int = 5) -> SampleBatch:
    n = seconds * 10
    times = T0 * NS_PER_S + np.arange(n, dtype=np.int64) * (NS_PER_S // 10)
    return SampleBatch(measurement, [("p1",)], np.zeros(n, np.int32), times,
                       {k: np.full(n, v) for k, v in fields.items()})


def test_unknown_field_is_dropped_and_good_fields_kept(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    store = DuckDBStore(db, load_profiles())
    store.setup()
    accumulator = Accumulator()
    agent = Agent(store, accumulator, lateness_s=0.5, commit_interval_s=0.1)
    agent.start()
    accumulator.put(_batch("ps100_readings", {"voltage": 20.0, "power": 40.0, "volts": 1.0}))
    accumulator.put(_batch("no_such_measurement", {"x": 1.0}))
    agent.stop()
    assert agent.stats.rejected_fields == 1
    assert agent.stats.rejected_batches == 1
    assert agent.stats.last_error is not None and "no_such_measurement" in agent.stats.last_error
    store.close()
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute("SELECT COUNT(*), SUM(sample_count), AVG(voltage_avg), SUM(energy_wh) "
                      "FROM ps100_readings_1s").fetchone()
    assert row is not None
    count, samples, volts, energy = row
    assert (count, samples, volts) == (5, 50, 20.0)
    # 50 holds of 0.1 s at 40 W, the last one ends with the data: 4.9 s × 40 W
    assert abs(energy - 40.0 * 4.9 / 3600) < 1e-5
