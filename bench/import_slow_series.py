"""Benchmark: ``sunarchive import`` of a year of 15-minute PV data (issue 15, point 7).

Generates ``--days`` of 15-minute PV power for ``--series`` sites (a year × 3 ≈ 105 k rows; the
issue's import had 95 k) as CSV in a temp directory, with a profile whose ``max_gap_s`` (1800)
lets a 15-minute hold count, then runs the real CLI (``sunarchive import``, a subprocess) into
a fresh DuckDB file. Reports rows in, 1 s rows stored, rows per sample, peak RSS of the import
process (``/usr/bin/time -v`` when present, else ``RUSAGE_CHILDREN``), wall time, and whether
the stored energy (1 s sum and daily sum) equals the reference integral Σ P_i·(t_{i+1} − t_i).
Goal: peak RSS ≤ 500 MB and ≤ 4 rows per sample (it made 900 rows per sample and 14.5 GB
before). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts
from sunarchive import open_reader

GOAL_PEAK_RSS_MB = 500.0
GOAL_ROWS_PER_SAMPLE = 4.0
STEP_S = 900
START = 1_767_225_600  # 2026-01-01T00:00:00Z
PROFILE = """name: pv_quarter_hour
description: 15-minute PV power (benchmark)
tags: [site]
max_gap_s: 1800
fields:
  power: {unit: W, kind: power, description: AC power}
"""


def make_csv(path: Path, days: int, series: int, seed: int = 1) -> tuple[int, float]:
    """Write the CSV; returns (rows, reference energy in Wh)."""
    steps = days * 86400 // STEP_S
    rng = np.random.default_rng(seed)
    t_s = START + np.arange(steps, dtype=np.int64) * STEP_S
    hour = (t_s % 86400) / 3600.0
    season = 0.6 + 0.4 * np.sin(2 * np.pi * ((t_s - START) / 86400 - 80) / 365)
    sun = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * season
    parts, reference = [], 0.0
    for k in range(series):
        power = np.round(3000 * sun * rng.uniform(0.3, 1.0, steps), 1)
        reference += float(np.sum(power[:-1] * np.diff(t_s))) / 3600.0
        parts.append(pa.table({"time": pa.array(t_s * 1_000_000_000, pa.timestamp("ns", "UTC")),
                               "site": [f"site{k + 1}"] * steps, "power": power}))
    pacsv.write_csv(pa.concat_tables(parts), path)
    return steps * series, reference


def run_import(csv_path: Path, db: Path, profiles: Path) -> tuple[float, float]:
    """Run ``sunarchive import``; returns (wall seconds, peak RSS MiB of the import)."""
    cli = [sys.executable, "-m", "sunarchive", "import", "--db", str(db),
           "--measurement", "pv_quarter_hour", "--quiet", str(csv_path)]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    env = {**os.environ, "SUNARCHIVE_PROFILES_DIR": str(profiles)}
    started = time.perf_counter()
    done = subprocess.run(([timer, "-v"] if timer else []) + cli, capture_output=True,
                          text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if found:
        return seconds, int(found.group(1)) / 1024.0
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def stored_figures(db: Path, profiles: Path, days: int) -> dict[str, float]:
    """1 s rows, samples and energy as stored, and the daily tier's energy as served."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows, energy, samples = con.execute(
            "SELECT count(*), sum(power_energy_wh), sum(sample_count) "
            "FROM pv_quarter_hour_1s").fetchone() or (0, 0.0, 0)
    begin = datetime.fromtimestamp(START - 86400, UTC)
    end = datetime.fromtimestamp(START + (days + 1) * 86400, UTC)
    with open_reader(f"duckdb:///{db}", profiles_dir=profiles) as reader:
        daily = reader.query("pv_quarter_hour", begin, end, tier="daily",
                             fields=["power_energy_wh"])
    daily_wh = sum(v for v in daily.column("power_energy_wh").to_pylist() if v is not None)
    return {"rows": int(rows), "energy_wh": float(energy or 0.0), "samples": int(samples or 0),
            "daily_energy_wh": float(daily_wh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--series", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "profiles").mkdir()
        (folder / "profiles" / "pv_quarter_hour.yaml").write_text(PROFILE, encoding="utf-8")
        csv_path = folder / "pv.csv"
        rows_in, reference = make_csv(csv_path, args.days, args.series)
        log(f"importing {rows_in:,} rows of 15-minute data")
        seconds, peak_mb = run_import(csv_path, folder / "bench.duckdb", folder / "profiles")
        stored = stored_figures(folder / "bench.duckdb", folder / "profiles", args.days)
    per_sample = stored["rows"] / rows_in
    tolerance = 1e-6 * stored["rows"] + 1e-9 * reference  # rows are rounded to µWh
    exact = abs(stored["energy_wh"] - reference) <= tolerance
    daily_exact = abs(stored["daily_energy_wh"] - reference) <= tolerance
    result = {
        "benchmark": "import_slow_series",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "days": args.days, "series": args.series, "step_s": STEP_S,
        "rows_in": rows_in, "samples_stored": stored["samples"],
        "rows_1s_stored": stored["rows"], "rows_per_sample": round(per_sample, 3),
        "peak_rss_mb": round(peak_mb, 1), "seconds": round(seconds, 3),
        "energy_wh": round(stored["energy_wh"], 6), "daily_energy_wh":
        round(stored["daily_energy_wh"], 6), "reference_energy_wh": round(reference, 6),
        "energy_exact": exact and daily_exact,
        "goal_peak_rss_mb": GOAL_PEAK_RSS_MB, "goal_rows_per_sample": GOAL_ROWS_PER_SAMPLE,
        "meets_goal": bool(peak_mb <= GOAL_PEAK_RSS_MB and per_sample <= GOAL_ROWS_PER_SAMPLE
                           and exact and daily_exact),
        "machine": machine_facts()}
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
