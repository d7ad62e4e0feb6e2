"""Benchmark: ``sunarchive import`` of a CSV file into a fresh DuckDB file (in process).

Generates a CSV of ``--panels`` panels at ``--rate-hz`` for enough seconds to make ``--rows``
rows (4 fields: voltage, current, power, temperature; ISO 8601 times with offset) in a temp
directory, then times :func:`sunarchive.importing.import_files` end to end: reading (pyarrow),
mapping, sorting, reducing, writing the 1 s tier and the rollups, the final flush and the
import record. Goal: ≥ 1 M field values/s. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, peak_rss_mb, quiet_library_logs
from sunarchive.importing import ImportOptions, import_files
from sunarchive.model import NS_PER_S
from sunarchive.profiles import load_profiles
from sunarchive.storage.duckdb.store import DuckDBStore

GOAL_VALUES_PER_S = 1_000_000
START = 1_782_036_000  # 2026-06-21T10:00:00Z


def make_csv(path: Path, rows: int, panels: int, rate_hz: float, seed: int = 1) -> int:
    steps = -(-rows // panels)
    rng = np.random.default_rng(seed)
    t = START * NS_PER_S + (np.arange(steps, dtype=np.int64) * round(NS_PER_S / rate_hz))
    time_ns = np.repeat(t, panels)[:rows]
    panel = np.tile(np.array([f"p{i + 1}" for i in range(panels)]), steps)[:rows]
    voltage = np.round(20 + rng.normal(0, 0.2, rows), 3)
    current = np.round(2 + rng.normal(0, 0.05, rows), 4)
    table = pa.table({
        "time": pa.array(time_ns, pa.timestamp("ns", "UTC")),
        "panel_id": panel,
        "voltage": voltage, "current": current, "power": np.round(voltage * current, 2),
        "temperature": np.round(30 + rng.normal(0, 0.1, rows), 2)})
    pacsv.write_csv(table, path)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--panels", type=int, default=8)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    quiet_library_logs()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "history.csv"
        log(f"writing {args.rows:,} rows to {csv_path}")
        rows = make_csv(csv_path, args.rows, args.panels, args.rate_hz)
        store = DuckDBStore(Path(tmp) / "bench.duckdb", load_profiles())
        store.setup()
        log("importing")
        started = time.perf_counter()
        report = import_files(store, [csv_path], dict(store.profiles), ImportOptions())
        seconds = time.perf_counter() - started
        store.close()
        size_mb = csv_path.stat().st_size / 2**20
    values = report.imported * 4
    rate = values / seconds
    result = {
        "benchmark": "import_csv",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows, "panels": args.panels, "rate_hz": args.rate_hz,
        "csv_mb": round(size_mb, 1), "imported": report.imported,
        "rejected": report.rejected, "rows_written": report.rows_written,
        "rollup_rows": report.rollup_rows, "seconds": round(seconds, 3),
        "field_values_per_s": round(rate), "rows_per_s": round(report.imported / seconds),
        "goal_values_per_s": GOAL_VALUES_PER_S, "meets_goal": rate >= GOAL_VALUES_PER_S,
        "peak_rss_mb": round(peak_rss_mb(), 1), "machine": machine_facts()}
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
