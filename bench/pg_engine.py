"""PostgreSQL engine: 1 s rows through the writer (binary COPY), dashboard queries from the
rollups, and on TimescaleDB the compression of the 1 s tier.

Prints one JSON object. Plain PostgreSQL runs on a throwaway server started here (or
``--url``); TimescaleDB runs when ``--timescale-url`` or ``SUNARCHIVE_TEST_TIMESCALE_URL`` is
set, and is reported as skipped otherwise.

Rows are what the reducer writes for ``--panels`` PS100 panels: a clear-sky-shaped power
curve with cloud dips and sensor noise, rounded to the profile's declared resolution.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import emit, log, machine_facts
from pg_server import drop_database, fresh_database, throwaway_postgres
from sunarchive.model import SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.storage.postgres.store import PostgresStore

PS100 = "ps100_readings"
FIRST_DAY = datetime(2026, 5, 1, tzinfo=UTC)
GOALS = {"ingest_rows_per_s": 400_000, "query_p50_ms": 5.0, "compression_saved_percent": 90.0}


def day_rows(day: int, panels: int, rng: np.random.Generator) -> StatsRows:
    """One day of 1 s rows for ``panels`` panels, rounded like the reducer stores them."""
    start = int((FIRST_DAY + timedelta(days=day)).timestamp())
    seconds = np.arange(86400)
    sun = np.clip(np.sin((seconds - 5 * 3600) / (14 * 3600) * np.pi), 0, None)
    clouds = 1 - 0.6 * (np.sin(seconds / 900.0 + day) > 0.7)
    n = 86400 * panels
    power = np.repeat(83.0 * sun * clouds, panels) * rng.uniform(0.97, 1.0, n)
    power += rng.normal(0, 0.3, n) * (power > 0)
    power = np.clip(power, 0, None)
    voltage = np.where(power > 0, 23.4 + rng.normal(0, 0.05, n), 0.0)
    current = np.divide(power, voltage, out=np.zeros(n), where=voltage > 0)
    temp = np.repeat(20 + 30 * sun, panels) + rng.normal(0, 0.1, n)
    cols = {"sample_count": np.full(n, 10.0), "covered_s": np.ones(n),
            "energy_wh": np.round(power / 3600, 6)}
    for name, values, decimals, spread in (("voltage", voltage, 3, 0.01),
                                           ("current", current, 4, 0.002),
                                           ("power", power, 2, 0.2),
                                           ("temperature", temp, 2, 0.02)):
        cols |= {f"{name}_avg": values.round(decimals),
                 f"{name}_min": (values - spread).round(decimals),
                 f"{name}_max": (values + spread).round(decimals),
                 f"{name}_stddev": np.full(n, spread / 2).round(decimals),
                 f"{name}_count": np.full(n, 10.0)}
    times = np.repeat(start + seconds, panels).astype(np.int64)
    ids = np.tile(np.arange(1, panels + 1, dtype=np.int32), 86400)
    return StatsRows(PS100, times, ids, cols)


def slices(rows: StatsRows, size: int) -> list[StatsRows]:
    return [StatsRows(PS100, rows.time_s[i:i + size], rows.series_id[i:i + size],
                      {k: v[i:i + size] for k, v in rows.columns.items()})
            for i in range(0, len(rows), size)]


def open_store(url: str, panels: int) -> PostgresStore:
    store = PostgresStore(url, {PS100: load_profiles(None)[PS100]}, timezone="Europe/Berlin")
    store.setup()
    for i in range(1, panels + 1):
        store.add_series(SeriesKey(PS100, (f"panel_{i}",)), i)
    return store


def ingest(store: PostgresStore, days: int, panels: int, batch_rows: int) -> dict[str, Any]:
    """Write ``days`` of rows through ``store.write`` (the writer's call); time only that."""
    tags = {i: (f"panel_{i}",) for i in range(1, panels + 1)}
    rng = np.random.default_rng(7)
    empty = StatsRows.empty(PS100)
    written, write_s, batch = 0, 0.0, 0
    for day in range(days):
        for part in slices(day_rows(day, panels, rng), batch_rows):
            batch += 1
            began = time.perf_counter()
            store.write(part, empty, tags, batch_id=batch)
            write_s += time.perf_counter() - began
            written += len(part)
        log(f"  day {day + 1}/{days}: {written:,} rows, {written / write_s:,.0f} rows/s")
    began = time.perf_counter()
    end = int((FIRST_DAY + timedelta(days=days)).timestamp())
    rollup_rows = store.rollup(PS100, end)
    return {"rows": written, "write_s": round(write_s, 2),
            "rows_per_s": round(written / write_s), "batch_rows": batch_rows,
            "rollup_s": round(time.perf_counter() - began, 2), "rollup_rows": rollup_rows}


def timed(fn: Callable[[], Any], reps: int) -> dict[str, float]:
    fn()
    samples = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2)}


def queries(store: PostgresStore, days: int, reps: int) -> dict[str, Any]:
    last = int((FIRST_DAY + timedelta(days=days)).timestamp())
    day = last - 86400
    out = {
        "today_5min_all_panels": timed(
            lambda: store.query_tier(PS100, "5min", day, last, {}, None), reps),
        "daily_energy_30_days": timed(
            lambda: store.query_tier(PS100, "daily", last - 30 * 86400, last, {},
                                     ["energy_wh"]), reps),
        "last_hour_1s_one_panel": timed(
            lambda: store.query_tier(PS100, "1s", last - 3600, last,
                                     {"panel_id": "panel_1"}, ["power_avg"]), reps),
    }
    worst = max(q["p50_ms"] for q in out.values())
    return {**out, "worst_p50_ms": worst, "meets_goal": worst <= GOALS["query_p50_ms"]}


def compression(store: PostgresStore) -> dict[str, Any]:
    began = time.perf_counter()
    chunks = store.compress(0)
    ts = store.status()["timescaledb"]
    entry = next(h for h in ts["hypertables"] if h["hypertable"] == "ps100_readings_1s")
    saved = entry.get("saved_percent")
    return {"chunks_compressed": len(chunks), "compress_s": round(time.perf_counter() - began, 1),
            "before_bytes": entry.get("before_bytes"), "after_bytes": entry.get("after_bytes"),
            "ratio": entry.get("ratio"), "saved_percent": saved,
            "meets_goal": saved is not None and saved >= GOALS["compression_saved_percent"]}


def run_engine(url: str, args: argparse.Namespace, timescale: bool) -> dict[str, Any]:
    database = fresh_database(url)
    store = open_store(database, args.panels)
    try:
        log(f"{store.layout}: ingest {args.days} days × {args.panels} panels")
        result: dict[str, Any] = {"layout": store.layout, "ingest": ingest(
            store, args.days, args.panels, args.batch_rows)}
        result["ingest"]["meets_goal"] = \
            result["ingest"]["rows_per_s"] >= GOALS["ingest_rows_per_s"]
        result["queries"] = queries(store, args.days, args.reps)
        if timescale:
            result["compression"] = compression(store)
        return result
    finally:
        store.close()
        drop_database(database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--panels", type=int, default=8, help="panels (default 8)")
    parser.add_argument("--batch-rows", type=int, default=50_000,
                        help="rows per writer commit (default 50 000)")
    parser.add_argument("--reps", type=int, default=50, help="query repetitions (default 50)")
    parser.add_argument("--url", help="PostgreSQL server URL (default: a throwaway server)")
    parser.add_argument("--timescale-url", default=os.environ.get(
        "SUNARCHIVE_TEST_TIMESCALE_URL"), help="TimescaleDB server URL (default: "
        "$SUNARCHIVE_TEST_TIMESCALE_URL; without one that part is skipped)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "pg_engine", "machine": machine_facts(),
                              "parameters": vars(args) | {"output": None,
                                                          "timescale_url": None},
                              "goals": GOALS}
    if args.url:
        report["plain"] = run_engine(args.url, args, timescale=False)
    else:
        with throwaway_postgres() as server:
            report["plain"] = run_engine(server.url, args, timescale=False)
    if args.timescale_url:
        report["timescaledb"] = run_engine(args.timescale_url, args, timescale=True)
    else:
        report["timescaledb"] = {"skipped": "no TimescaleDB server: set "
                                            "SUNARCHIVE_TEST_TIMESCALE_URL or --timescale-url"}
    checks = [report["plain"]["ingest"]["meets_goal"], report["plain"]["queries"]["meets_goal"]]
    if "compression" in report["timescaledb"]:
        checks.append(report["timescaledb"]["compression"]["meets_goal"])
    report["meets_goal"] = all(checks)
    emit(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
