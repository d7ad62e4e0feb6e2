"""PostgreSQL engine: 1 s rows through the writer (binary COPY), dashboard queries from the
rollups, and on TimescaleDB the compression of the 1 s tier.

Prints one JSON object. Plain PostgreSQL runs on a throwaway server started here (or
``--url``); TimescaleDB runs when ``--timescale-url`` or ``SUNARCHIVE_TEST_TIMESCALE_URL`` is
set, and is reported as skipped otherwise.

Rows are ``--days`` simulated days of ``--panels`` PS100 panels: the simulator at 10 Hz through
the reducer, as the collector makes them (statistics rounded to the profile's resolution;
nights are genuine zero-power rows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests.support
from tests.support.pg_server import drop_database, fresh_database, throwaway_postgres

from _common import emit, log, machine_facts
from sunarchive.app import simulator_config
from sunarchive.model import NS_PER_S, SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.profiles.spec import Profile
from sunarchive.reducer import Reducer
from sunarchive.resolution import GRIDS, ValueGrid, round_to_grid
from sunarchive.settings import load_settings
from sunarchive.sources.simulator import PanelSimulator
from sunarchive.storage.postgres.store import PostgresStore

PS100 = "ps100_readings"
DURABLE_SERVER = {"fsync": "on", "full_page_writes": "on", "shared_buffers": "'1GB'",
                  "max_wal_size": "'4GB'"}
"""The throwaway server of this benchmark: durable as a production server (the test suite's
runs without fsync), with the memory and WAL sizes a tuned server for bulk writes has."""
SERVER_SETTINGS = ["server_version", "fsync", "full_page_writes", "synchronous_commit",
                   "shared_buffers", "max_wal_size", "wal_compression", "autovacuum"]
FIRST_DAY = datetime(2026, 5, 1, tzinfo=UTC)
GOALS = {"ingest_rows_per_s": 400_000, "query_p50_ms": 5.0, "compression_saved_percent": 90.0}


def simulated_days(days: int, panels: int, cache: Path, grid: ValueGrid) -> Iterator[StatsRows]:
    """``days`` UTC days of 1 s rows, one day at a time, made the real way: the PS100
    simulator at 10 Hz (nights are genuine zero-power rows) through the ``Reducer``, then
    rounded to the profile's resolution on the store's ``grid``, as the collector's reducer
    rounds them. Days are cached unrounded in ``cache`` (npz), so the second engine gets the
    same rows without simulating them again."""
    profile = load_profiles(None)[PS100]
    exact = replace(profile, fields=tuple(replace(f, decimals=None) for f in profile.fields))
    settings = load_settings(config_file=None, env={}, dotenv_file=None, overrides={
        "timezone": "Europe/Berlin", "simulator": {"panels": panels, "sample_rate_hz": 10}})
    simulator = PanelSimulator(simulator_config(settings.simulator))
    reducer = Reducer(exact, settings.lateness_s)
    first = int(FIRST_DAY.timestamp())
    for day in range(days):
        path = cache / f"day{day}-exact.npz"
        if not path.exists():
            _simulate_day(simulator, reducer, first + day * 86400, last=day == days - 1,
                          path=path)
        yield _rounded(_load_day(path), profile, grid)


def _rounded(rows: StatsRows, profile: Profile, grid: ValueGrid) -> StatsRows:
    for spec in profile.fields:
        for name, decimals in spec.rounded_columns().items():
            rows.columns[name] = round_to_grid(rows.columns[name], decimals, grid)
    return rows


def _simulate_day(simulator: PanelSimulator, reducer: Reducer, start_s: int, last: bool,
                  path: Path) -> None:
    parts = []
    for hour in range(24):
        lo = (start_s + hour * 3600) * NS_PER_S
        batch = simulator.generate(lo, lo + 3600 * NS_PER_S)
        ids = np.array([int(t[0].rsplit("_", 1)[1]) for t in batch.tag_sets],
                       dtype=np.int32)[batch.tag_index]
        reducer.add(ids, batch.time_ns, batch.fields)
        parts.append((reducer.flush() if last and hour == 23 else reducer.close()).fresh)
    columns = {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns}
    np.savez(path, time_s=np.concatenate([p.time_s for p in parts]),
             series_id=np.concatenate([p.series_id for p in parts]), **columns)


def _load_day(path: Path) -> StatsRows:
    data = np.load(path)
    columns = {k: data[k] for k in data.files if k not in ("time_s", "series_id")}
    return StatsRows(PS100, data["time_s"], data["series_id"], columns)


def slices(rows: StatsRows, size: int) -> list[StatsRows]:
    return [StatsRows(PS100, rows.time_s[i:i + size], rows.series_id[i:i + size],
                      {k: v[i:i + size] for k, v in rows.columns.items()})
            for i in range(0, len(rows), size)]


def open_store(url: str, panels: int, copy_streams: int,
               timescale_grid: ValueGrid) -> PostgresStore:
    store = PostgresStore(url, {PS100: load_profiles(None)[PS100]}, timezone="Europe/Berlin",
                          copy_streams=copy_streams, timescale_grid=timescale_grid)
    store.setup()
    for i in range(1, panels + 1):
        store.add_series(SeriesKey(PS100, (f"panel_{i}",)), i)
    return store


def ingest(store: PostgresStore, args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    """Write the simulated days through ``store.write`` (the writer's call); time only that."""
    days, panels, batch_rows = args.days, args.panels, args.batch_rows
    tags = {i: (f"panel_{i}",) for i in range(1, panels + 1)}
    empty = StatsRows.empty(PS100)
    written, write_s, batch = 0, 0.0, 0
    for day, rows in enumerate(simulated_days(days, panels, cache, store.value_grid)):
        for part in slices(rows, batch_rows):
            batch += 1
            began = time.perf_counter()
            store.write(part, empty, tags, batch_id=batch)
            write_s += time.perf_counter() - began
            written += len(part)
        log(f"  day {day + 1}/{days}: {written:,} rows, {written / write_s:,.0f} rows/s")
    began = time.perf_counter()
    end = int((FIRST_DAY + timedelta(days=days)).timestamp())
    rollup_rows = store.rollup(PS100, end)
    return {"rows": written, "value_grid": store.value_grid, "write_s": round(write_s, 2),
            "rows_per_s": round(written / write_s), "batch_rows": batch_rows,
            "copy_streams": store.copy_streams,
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


DASHBOARD_5MIN_FIELDS = ["power_avg", "power_max", "covered_s", "sample_count"]
"""What the dashboard's power curve asks for (as in bench/api.py)."""


def queries(store: PostgresStore, days: int, reps: int) -> dict[str, Any]:
    """The dashboard's reads (the goal) and two wider reads for reference."""
    last = int((FIRST_DAY + timedelta(days=days)).timestamp())
    day = last - 86400
    dashboard = {
        "today_5min_curve": timed(
            lambda: store.query_tier(PS100, "5min", day, last, {}, DASHBOARD_5MIN_FIELDS),
            reps),
        "daily_energy_30_days": timed(
            lambda: store.query_tier(PS100, "daily", last - 30 * 86400, last, {},
                                     ["energy_wh"]), reps),
        "latest": timed(lambda: store.latest_rows(PS100), reps),
    }
    reference = {
        "today_5min_every_column": timed(
            lambda: store.query_tier(PS100, "5min", day, last, {}, None), reps),
        "last_hour_1s_one_panel": timed(
            lambda: store.query_tier(PS100, "1s", last - 3600, last,
                                     {"panel_id": "panel_1"}, ["power_avg"]), reps),
    }
    worst = max(q["p50_ms"] for q in dashboard.values())
    return {"dashboard": dashboard, "reference_no_goal": reference, "worst_p50_ms": worst,
            "meets_goal": worst <= GOALS["query_p50_ms"]}


def compression(store: PostgresStore) -> dict[str, Any]:
    began = time.perf_counter()
    chunks = store.compress(0)
    ts = store.status()["timescaledb"]
    entry = next(h for h in ts["hypertables"] if h["hypertable"] == "ps100_readings_1s")
    saved = entry.get("saved_percent")
    return {"chunks_compressed": len(chunks), "compress_s": round(time.perf_counter() - began, 1),
            "before_bytes": entry.get("before_bytes"), "after_bytes": entry.get("after_bytes"),
            "ratio": entry.get("ratio"), "saved_percent": saved,
            "compressed_bytes_per_row_by_column": compressed_column_bytes(store),
            "meets_goal": saved is not None and saved >= GOALS["compression_saved_percent"]}


def compressed_column_bytes(store: PostgresStore) -> dict[str, float]:
    """Bytes per 1 s row each column takes in the compressed chunks, largest first."""
    con = store._con
    chunks = [str(r[0]) for r in con.execute(
        "SELECT format('%I.%I', c2.schema_name, c2.table_name) FROM "
        "_timescaledb_catalog.chunk c JOIN _timescaledb_catalog.chunk c2 "
        "ON c.compressed_chunk_id = c2.id").fetchall()]
    rows = int(str(con.execute("SELECT COUNT(*) FROM ps100_readings_1s").fetchone()[0]))
    if not chunks or not rows:
        return {}
    columns = [str(r[0]) for r in con.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped", [chunks[0]]).fetchall()]
    sizes = dict.fromkeys(columns, 0)
    for chunk in chunks:
        total = ", ".join(f'COALESCE(SUM(pg_column_size("{c}")), 0)' for c in columns)
        for column, size in zip(columns, con.execute(f"SELECT {total} FROM {chunk}").fetchone()
                                or [], strict=True):
            sizes[column] += int(size)
    ordered = sorted(sizes.items(), key=lambda kv: -kv[1])
    return {name: round(size / rows, 2) for name, size in ordered if size / rows >= 0.05}


def run_engine(url: str, args: argparse.Namespace, timescale: bool,
               cache: Path) -> dict[str, Any]:
    """``--repeat`` ingests into fresh databases (the median is the figure), then queries
    and, on TimescaleDB, compression on the last one."""
    runs = [repeat_ingest(url, args, cache, run) for run in range(args.repeat - 1)]
    database = fresh_database(url)
    store = open_store(database, args.panels, args.copy_streams, args.timescale_grid)
    try:
        log(f"{store.layout}: ingest {args.days} days × {args.panels} panels "
            f"(run {args.repeat}/{args.repeat})")
        result: dict[str, Any] = {"layout": store.layout, "server": {
            name: store._fetch(f"SHOW {name}")[0][0] for name in SERVER_SETTINGS}}
        last = ingest(store, args, cache)
        rates = [r["rows_per_s"] for r in runs] + [last["rows_per_s"]]
        result["ingest"] = last | {"rows_per_s": round(statistics.median(rates)),
                                   "rows_per_s_all_runs": rates, "last_run_rows_per_s": rates[-1]}
        result["ingest"]["meets_goal"] = \
            result["ingest"]["rows_per_s"] >= GOALS["ingest_rows_per_s"]
        # what autovacuum does on a live server after this much new data: planner statistics
        # and BRIN summaries (a freshly bulk-loaded table has neither)
        began = time.perf_counter()
        store._execute("VACUUM ANALYZE")
        result["vacuum_analyze_s"] = round(time.perf_counter() - began, 1)
        result["queries"] = queries(store, args.days, args.reps)
        if timescale:
            result["compression"] = compression(store)
        return result
    finally:
        store.close()
        drop_database(database)


def repeat_ingest(url: str, args: argparse.Namespace, cache: Path,
                  run: int) -> dict[str, Any]:
    """One extra ingest run into a database of its own, dropped afterwards."""
    database = fresh_database(url)
    store = open_store(database, args.panels, args.copy_streams, args.timescale_grid)
    try:
        log(f"{store.layout}: ingest {args.days} days × {args.panels} panels "
            f"(run {run + 1}/{args.repeat})")
        return ingest(store, args, cache)
    finally:
        store.close()
        drop_database(database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--panels", type=int, default=8, help="panels (default 8)")
    parser.add_argument("--batch-rows", type=int, default=50_000,
                        help="rows per writer commit (default 50 000)")
    parser.add_argument("--copy-streams", type=int, default=2,
                        help="parallel COPY connections per batch (default 2, the setting's "
                             "default)")
    parser.add_argument("--reps", type=int, default=50, help="query repetitions (default 50)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="ingest runs per engine, each into a fresh database; the median "
                             "is the figure (default 3)")
    parser.add_argument("--url", help="PostgreSQL server URL (default: a throwaway server)")
    parser.add_argument("--timescale-url", default=os.environ.get(
        "SUNARCHIVE_TEST_TIMESCALE_URL"), help="TimescaleDB server URL (default: "
        "$SUNARCHIVE_TEST_TIMESCALE_URL; without one that part is skipped)")
    parser.add_argument("--timescale-grid", choices=GRIDS, default="binary",
                        help="grid of the stored statistics on TimescaleDB (the "
                             "timescaledb_value_grid setting; default binary)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--cache", type=Path, help="keep the simulated days here and reuse "
                        "them on the next run (default: a temporary directory)")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "pg_engine", "machine": machine_facts(),
                              "parameters": vars(args) | {"output": None,
                                                          "timescale_url": None},
                              "goals": GOALS}
    with tempfile.TemporaryDirectory(prefix="sunarchive-pg-bench-") as folder:
        cache = args.cache or Path(folder)
        cache.mkdir(parents=True, exist_ok=True)
        if args.url:
            report["plain"] = run_engine(args.url, args, timescale=False, cache=cache)
        else:
            with throwaway_postgres(**DURABLE_SERVER) as server:
                report["plain"] = run_engine(server.url, args, timescale=False, cache=cache)
        if args.timescale_url:
            report["timescaledb"] = run_engine(args.timescale_url, args, timescale=True,
                                               cache=cache)
        else:
            report["timescaledb"] = {"skipped": "no TimescaleDB server: set "
                                                "SUNARCHIVE_TEST_TIMESCALE_URL or "
                                                "--timescale-url"}
    checks = [report["plain"]["ingest"]["meets_goal"], report["plain"]["queries"]["meets_goal"]]
    if "compression" in report["timescaledb"]:
        checks.append(report["timescaledb"]["compression"]["meets_goal"])
    report["meets_goal"] = all(checks)
    emit(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
